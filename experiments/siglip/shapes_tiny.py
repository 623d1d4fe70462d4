"""The small CPU config: the lab-xs towers (8-pixel patches) on procedural shapes, ~5 minutes on 2 cores.

    python -m constellations.siglip train --config experiments/siglip/shapes_tiny.py --workdir /tmp/siglip_tiny

``get_config("relative_bias")`` trains the same model in the relative-bias parameterization and
``get_config("softmax")`` with the CLIP loss (the baseline).
"""

from constellations.siglip.config import Config


def get_config(arg=None):
    parameterization = arg or "standard"
    return Config(
        seed=0,
        total_steps=2000,
        batch_size=128,
        log_steps=25,
        checkpoint_steps=250,
        data=dict(name="shapes", image_size=32, max_len=16, tokenizer="word"),
        model=dict(image_variant="lab-xs/8", text_variant="lab-xs"),
        loss=dict(parameterization=parameterization, implementation="dense", temperature_init=10.0, bias_init=-10.0),
        optim=dict(lr=1e-3, b2=0.95, weight_decay=1e-4, grad_clip_norm=1.0, schedule="cosine", warmup_fraction=0.05),
        eval=dict(every_steps=500, num_examples=512, batch_size=256),
    )
