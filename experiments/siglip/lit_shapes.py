"""LiT on shapes: the image tower of an earlier run, frozen; only the text tower, t and b train.

    python -m constellations.siglip train --config experiments/siglip/lit_shapes.py:runs/shapes --workdir runs/lit

The argument after ':' is the earlier run's workdir (or a checkpoint file). The training pool is a
finite set of 20,000 shapes, so the frozen image embeddings are computed once and cached.
"""

from constellations.siglip.config import Config


def get_config(arg=None):
    if not arg:
        raise ValueError("lit_shapes.py needs the run to take the image tower from: lit_shapes.py:WORKDIR")
    return Config(
        seed=0,
        total_steps=800,
        batch_size=128,
        log_steps=25,
        checkpoint_steps=200,
        data=dict(name="shapes", image_size=32, max_len=16, num_examples=20_000),
        model=dict(image_variant="lab-xs/4", text_variant="lab-xs"),
        model_init=arg,
        model_load=("img",),
        lit=dict(enabled=True, cache_image_embeddings=True),
        optim=dict(lr=1e-3, warmup_fraction=0.05),
        eval=dict(every_steps=400, num_examples=512),
    )
