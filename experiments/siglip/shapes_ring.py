"""The shapes run with the ring-chunked loss over every device (emulated CPU devices or several hosts).

    XLA_FLAGS=--xla_force_host_platform_device_count=4 \
      python -m constellations.siglip train --config experiments/siglip/shapes_ring.py --workdir runs/ring

``get_config("bidirectional")`` sends the text blocks both ways; ``get_config("all_gather")`` gathers.
"""

from constellations.siglip.config import Config


def get_config(arg=None):
    implementation = {None: "ring", "bidirectional": "ring_bidirectional", "all_gather": "all_gather"}[arg]
    return Config(
        seed=0,
        total_steps=1500,
        batch_size=128,
        log_steps=25,
        checkpoint_steps=250,
        data=dict(name="shapes", image_size=32, max_len=16),
        model=dict(image_variant="lab-xs/4", text_variant="lab-xs"),
        loss=dict(parameterization="standard", implementation=implementation),
        eval=dict(every_steps=500, num_examples=512),
    )
