"""The math of one tile of the tiled sigmoid loss, shared by the XLA sweep (:mod:`.tiled`) and the Pallas
kernels (:mod:`.tiled_pallas`), so neither imports the other. The per-pair terms are
:func:`constellations.loss.softplus` and its derivative (one exponential for both).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..loss import softplus


def tile_terms(s, t, b, rows, cols, n_rows: int, n_cols: int, positives: bool, gradients: bool):
    """The per-pair math of one tile of similarities s (rows x cols), masked by global indices.

    ``rows`` / ``cols`` are the global indices of the tile's rows and columns (broadcastable to s);
    pairs past ``n_rows`` / ``n_cols`` (padding) count for nothing, pairs with rows == cols are the
    positives when ``positives``. Returns ((sum of softplus(-z logit), sum / max / min of the negative
    logits), G) with G = dL/dlogit = -z sigmoid(-z logit) (zero on padding) if ``gradients`` else None.
    Shared by the scan sweep (:mod:`.tiled`) and the Pallas kernels (:mod:`.tiled_pallas`).
    """
    zero = jnp.zeros((), s.dtype)
    valid = (rows < n_rows) & (cols < n_cols)
    pos = (rows == cols) if positives else jnp.zeros((), bool)
    logits = t * s + b
    w = jnp.where(pos, -logits, logits)                          # -z * logit
    if gradients:
        terms, sig = jax.jvp(softplus, (w,), (jnp.ones_like(w),))   # softplus(w), sigmoid(w): one exp
        g = jnp.where(valid, jnp.where(pos, -sig, sig), zero)
    else:
        terms, g = softplus(w), None
    neg = valid & ~pos
    stats = (jnp.sum(jnp.where(valid, terms, zero)), jnp.sum(jnp.where(neg, logits, zero)),
             jnp.max(jnp.where(neg, logits, -jnp.inf)), jnp.min(jnp.where(neg, logits, jnp.inf)))
    return stats, g


def add_stats(acc, part):
    """Combine (loss, neg_sum, neg_max, neg_min) of two sets of tiles."""
    return acc[0] + part[0], acc[1] + part[1], jnp.maximum(acc[2], part[2]), jnp.minimum(acc[3], part[3])
