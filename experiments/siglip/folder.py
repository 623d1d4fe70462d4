"""Your own data: a folder of images with captions.jsonl or captions.csv (see constellations/siglip/README.md).

    python -m constellations.siglip train --config experiments/siglip/folder.py:/path/to/images --workdir runs/mine

The argument after ':' (or --set data.root=...) is the folder; data.eval_root a held-out folder (by
default the training folder itself is evaluated). Captions are tokenized by a SentencePiece model
trained on them (pip install sentencepiece), or with --set data.tokenizer=word by a word vocabulary.
"""

from constellations.siglip.config import Config


def get_config(arg=None):
    return Config(
        seed=0,
        total_steps=2000,
        batch_size=64,
        log_steps=25,
        data=dict(name="folder", root=arg, image_size=32, max_len=32, tokenizer="sentencepiece",
                  sentencepiece_vocab_size=2000, resize=False),
        model=dict(image_variant="lab-s/4", text_variant="lab-s"),
        optim=dict(lr=5e-4),
        eval=dict(every_steps=500, num_examples=1000),
    )
