"""scikit-learn's bundled 8x8 digits (upsampled to 32 px) with templated captions; needs scikit-learn.

    python -m constellations.siglip train --config experiments/siglip/digits.py --workdir runs/digits

1,500 training images (so a batch of 128 cycles through them, permuted every epoch) and 297 held
out for zero-shot digit classification and retrieval.
"""

from constellations.siglip.config import Config


def get_config(arg=None):
    return Config(
        seed=0,
        total_steps=1000,
        batch_size=128,
        log_steps=25,
        data=dict(name="digits", image_size=32, max_len=12),
        model=dict(image_variant="lab-xs/8", text_variant="lab-xs"),
        optim=dict(lr=1e-3),
        eval=dict(every_steps=250, num_examples=297),
    )
