"""Shared helpers of the SigLIP trainer tests: a tiny CPU config and a bit-for-bit tree comparison."""

import jax
import numpy as np

from constellations.siglip.config import Config, default_config, merge


def tiny_config(run: dict, updates: dict) -> Config:
    """mu/4 towers on 16-pixel shapes, batch 16, a log record every step, no evaluation unless asked; then a test
    file's ``run`` fields (its steps, checkpoint frequency) and the test's own ``updates``."""
    base = dict(batch_size=16, log_steps=1, progress=False, data=dict(name="shapes", image_size=16, max_len=8),
                model=dict(image_variant="mu/4"), eval=dict(every_steps=0, num_examples=32, batch_size=32))
    return merge(merge(merge(default_config(), base), run), updates)


def leaves_equal(a, b) -> bool:
    """Same tree of arrays, bit for bit."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))
