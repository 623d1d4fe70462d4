"""The sigmoid loss over tiles of the logit matrix: memory linear in the batch, exact gradients.

For rows x_i (i < R) and columns y_j (j < C) of width d, inverse temperature t and bias b,

    logit_ij = t <x_i, y_j> + b,     z_ij = +1 if (positives and i == j) else -1,
    L = sum_{i < R, j < C} softplus(-z_ij logit_ij)            (= -sum log sigmoid(z_ij logit_ij))

and, with G_ij = dL/dlogit_ij = -z_ij sigmoid(-z_ij logit_ij),

    dL/dx = t G y,   dL/dy = t G^T x,   dL/dt = sum_ij G_ij <x_i, y_j>,   dL/db = sum_ij G_ij.

The (R, C) matrices logit and G are never formed. The rows are cut into blocks of ``tile_rows``
and the columns into blocks of ``tile_cols`` (the last block of each padded with zero rows, which
are masked out by their global index); a ``lax.scan`` over row blocks holds a ``lax.scan`` over
column blocks, so the compiled program has one tile body whatever R, C and the tile sizes, and
the memory is O((R + C) d + tile_rows * tile_cols). Positives are the pairs with equal *global*
indices, so only tiles whose row and column ranges overlap contain any.

Gradients (``jax.custom_vjp``): L is a scalar, so its gradient is the cotangent g times the
gradient of L. By default (``recompute=False``) the forward pass of a differentiated call computes
dL/dx, dL/dy, dL/dt, dL/db in the same sweep as L, from the same tile of logits and the same
exponential per pair (one GEMM for the logits, two for the gradients: the three GEMMs of the
dense loss and its gradient), and the backward pass only scales them by g; the residuals are
O((R + C) d). With ``recompute=True`` the forward pass computes L alone and the backward pass
sweeps the tiles again, recomputing each tile's logits (four GEMMs in all; residuals are the
inputs themselves). Either way no logit is stored between the passes. Undifferentiated calls
(evaluation) compute L only. Second derivatives (``jax.grad`` of a gradient) come out right, since
JAX differentiates the sweep that computed the residuals, but without the memory savings.

Per-pair math is :mod:`constellations.loss`: the terms are its ``softplus`` (exact and finite for
logits in the thousands) and G comes from that function's JVP, sigmoid from the same e^{-|x|}.
Beside L the sweep returns the sum, max and min of the negative logits (the trainer's logged
statistics); they carry no gradient, like the dense loss's ``stop_gradient`` statistics.
"""

from __future__ import annotations

import operator
from functools import partial

import jax
import jax.numpy as jnp

from .tiles import add_stats, tile_terms

#: How the tiles are swept: "auto" (the default: :func:`resolve_kernel` picks by backend), a ``lax.scan``
#: compiled by XLA (every backend), the Pallas kernels of :mod:`.tiled_pallas` compiled for GPU/TPU, or
#: the same kernels in Pallas's interpreter (any backend).
KERNELS = ("auto", "xla", "pallas", "pallas_interpret")

#: Backends on which "auto" picks the Pallas kernels (names as ``jax.default_backend()`` gives them).
PALLAS_BACKENDS = ("gpu", "tpu")

#: Default tile edge (rows = columns), chosen by ``experiments/bench_siglip_loss.py --tiles``.
DEFAULT_TILE = 1024
#: The largest tile edge "auto" hands the Pallas kernels on a GPU: a Triton block holds a tile's logits
#: in registers and shared memory, which the CPU-tuned 1024 x 1024 overflows. A tile changes speed and
#: memory, never values, so "auto" caps it there (an explicit ``kernel="pallas"`` takes the tile as given).
PALLAS_GPU_MAX_TILE = 128


def check_tile(tile, name: str = "tile") -> tuple[int, int]:
    """(tile_rows, tile_cols) from an int (square tiles) or a pair of ints, each >= 1; ValueError otherwise."""
    sizes = tuple(tile) if isinstance(tile, (tuple, list)) else (tile, tile)
    if len(sizes) != 2:
        raise ValueError(f"{name} must be an int or a pair (tile_rows, tile_cols); got {tile!r}")
    out = []
    for size in sizes:
        if isinstance(size, bool):
            raise ValueError(f"{name} must be a positive int (or a pair of them); got {tile!r}")
        try:
            value = operator.index(size)
        except TypeError:
            raise ValueError(f"{name} must be a positive int (or a pair of them); got {tile!r}") from None
        if value < 1:
            raise ValueError(f"{name} must be >= 1; got {tile!r}")
        out.append(value)
    return out[0], out[1]


def resolve_kernel(kernel: str = "auto") -> str:
    """The kernel a call runs: ``kernel`` itself, or for "auto" "pallas" when ``jax.default_backend()``
    is one of PALLAS_BACKENDS (GPU, TPU) and "xla" otherwise (CPU). ValueError names a bad ``kernel``."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    if kernel != "auto":
        return kernel
    return "pallas" if jax.default_backend() in PALLAS_BACKENDS else "xla"


# ----------------------------------------------------------------------------------------------
# The sweep over tiles.


def _blocks(a, size: int):
    """(n_blocks, size, d) view of the rows of ``a``, zero-padded to a multiple of ``size``."""
    n = -(-a.shape[0] // size)
    a = jnp.pad(a, ((0, n * size - a.shape[0]), (0, 0)))
    return a.reshape(n, size, a.shape[1])


def _sweep(x, y, t, b, tile_rows: int, tile_cols: int, positives: bool, gradients: bool):
    """One pass over all tiles: (L, neg_sum, neg_max, neg_min) and, if ``gradients``, (dx, dy, dt, db)."""
    R, d = x.shape
    C = y.shape[0]
    dtype = x.dtype
    xb, yb = _blocks(x, tile_rows), _blocks(y, tile_cols)
    row_ids = jnp.arange(tile_rows)[:, None]
    col_ids = jnp.arange(tile_cols)[None, :]
    # Under shard_map the scan carries must vary over the same devices as what the tiles add into
    # them; zeros_like of an expression in all four inputs has that type (and costs nothing).
    zero = jnp.zeros_like(x[0, 0] + y[0, 0] + t + b)

    def varying(v):
        return v + zero

    def tile(I, J, xi, yj):
        s = xi @ yj.T
        stats, g = tile_terms(s, t, b, I * tile_rows + row_ids, J * tile_cols + col_ids, R, C, positives, gradients)
        return stats, s, g

    init_stats = (zero, zero, varying(jnp.asarray(-jnp.inf, dtype)), varying(jnp.asarray(jnp.inf, dtype)))

    if not gradients:
        def row_step(acc, I):
            def col_step(acc, J):
                stats, _, _ = tile(I, J, xb[I], yb[J])
                return add_stats(acc, stats), None
            acc, _ = jax.lax.scan(col_step, acc, jnp.arange(yb.shape[0]))
            return acc, None

        stats, _ = jax.lax.scan(row_step, init_stats, jnp.arange(xb.shape[0]))
        return stats, None

    def row_step(carry, I):
        acc, dy, dt, db = carry
        xi = xb[I]

        def col_step(carry, J):
            acc, dxi, dy, dt, db = carry
            yj = yb[J]
            stats, s, g = tile(I, J, xi, yj)
            dxi = dxi + g @ yj
            dy = dy.at[J].add(g.T @ xi)
            return (add_stats(acc, stats), dxi, dy, dt + jnp.sum(g * s), db + jnp.sum(g)), None

        (acc, dxi, dy, dt, db), _ = jax.lax.scan(col_step, (acc, varying(jnp.zeros_like(xi)), dy, dt, db),
                                                 jnp.arange(yb.shape[0]))
        return (acc, dy, dt, db), dxi

    (stats, dy, dt, db), dx = jax.lax.scan(row_step, (init_stats, varying(jnp.zeros_like(yb)), zero, zero),
                                           jnp.arange(xb.shape[0]))
    dx = t * dx.reshape(-1, d)[:R]
    dy = t * dy.reshape(-1, d)[:C]
    return stats, (dx, dy, dt, db)


def sweep_tiles(x, y, t, b, *, tile=DEFAULT_TILE, positives: bool = True, gradients: bool = False):
    """One sweep over the tiles of the (R, C) block, no custom VJP: for callers that define their own
    (the ring of :mod:`.losses`, whose VJP spans all its hops).

    Returns ((L, neg_sum, neg_max, neg_min), (dL/dx, dL/dy, dL/dt, dL/db) if ``gradients`` else None);
    x, y, t, b must share one floating dtype.
    """
    tile_rows, tile_cols = check_tile(tile)
    return _sweep(x, y, t, b, min(tile_rows, x.shape[0]), min(tile_cols, y.shape[0]), bool(positives),
                  bool(gradients))


# ----------------------------------------------------------------------------------------------
# custom_vjp: the gradient computed in the sweep (or a second sweep), never through stored logits.


@partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7))
def _tiled_block(x, y, t, b, tile_rows, tile_cols, positives, recompute):
    stats, _ = _sweep(x, y, t, b, tile_rows, tile_cols, positives, gradients=False)
    return stats


def _tiled_block_fwd(x, y, t, b, tile_rows, tile_cols, positives, recompute):
    if recompute:
        stats, _ = _sweep(x, y, t, b, tile_rows, tile_cols, positives, gradients=False)
        return stats, (x, y, t, b)
    stats, grads = _sweep(x, y, t, b, tile_rows, tile_cols, positives, gradients=True)
    return stats, grads


def _tiled_block_bwd(tile_rows, tile_cols, positives, recompute, residuals, cotangents):
    g = cotangents[0]                       # the statistics (outputs 1-3) carry no gradient
    if recompute:
        _, residuals = _sweep(*residuals, tile_rows, tile_cols, positives, gradients=True)
    dx, dy, dt, db = residuals
    return (g * dx).astype(dx.dtype), (g * dy).astype(dy.dtype), g * dt, g * db


_tiled_block.defvjp(_tiled_block_fwd, _tiled_block_bwd)


def tiled_sigmoid_block(x, y, t, b, *, tile=DEFAULT_TILE, positives: bool = True, recompute: bool = False,
                        kernel: str = "auto"):
    """Summed sigmoid loss of one (R, C) block of logits t <x_i, y_j> + b, tile by tile.

    L = sum_{i<R, j<C} softplus(-z_ij (t <x_i, y_j> + b)), z_ij = +1 where ``positives`` and i == j,
    else -1 (see the module docstring for the gradients and the memory).

    Args:
      x: (R, d) rows; y: (C, d) columns, same dtype (float32 or float64; not required to be unit).
      t, b: scalars, the inverse temperature itself (not its log) and the bias.
      tile: edge of the square tiles, or (tile_rows, tile_cols); any sizes >= 1 (the blocks need not
        divide R or C; a tile larger than the block is cut down to it).
      positives: whether pairs (i, i) are positives (the block of a batch against itself) or the
        block is all negatives (two different shards of a batch, as in the ring).
      recompute: take gradients by a second sweep that recomputes the logits (less residual memory,
        one more GEMM) instead of computing them in the forward sweep (the XLA kernel; the Pallas
        kernels always recompute the logits for dL/dy, in their column kernel).
      kernel: one of KERNELS; "auto" (:func:`resolve_kernel`) runs the Pallas kernels on GPU and TPU
        (on a GPU with tile edges capped at PALLAS_GPU_MAX_TILE) and the XLA scan on CPU; any other
        value is run as asked. The Pallas kernels pass the same
        tests as the scan in interpret mode; on GPU the tile must suit a kernel block (the default
        1024 is tuned for CPU caches; ``experiments/bench_siglip_loss.py --gpu`` times the choices).
    Returns:
      (loss_sum, neg_sum, neg_max, neg_min): L, and the sum / max / min of the negative logits
      (-inf / inf when there are none). Differentiable in x, y, t, b through L only.

    Example:
      >>> x = y = jnp.eye(3)
      >>> float(tiled_sigmoid_block(x, y, 10.0, -5.0, tile=2)[0])   # doctest: +ELLIPSIS
      0.0...
    """
    tile_rows, tile_cols = check_tile(tile)
    chosen = resolve_kernel(kernel)
    if kernel == "auto" and chosen == "pallas" and jax.default_backend() == "gpu":
        tile_rows, tile_cols = min(tile_rows, PALLAS_GPU_MAX_TILE), min(tile_cols, PALLAS_GPU_MAX_TILE)
    kernel = chosen
    if jnp.ndim(x) != 2 or jnp.ndim(y) != 2 or jnp.shape(x)[1] != jnp.shape(y)[1]:
        raise ValueError(f"x and y must be (R, d) and (C, d) arrays; got shapes {jnp.shape(x)} and {jnp.shape(y)}")
    if jnp.shape(x)[0] == 0 or jnp.shape(y)[0] == 0:
        raise ValueError(f"x and y need at least one row; got shapes {jnp.shape(x)} and {jnp.shape(y)}")
    dtype = jnp.result_type(x, y, jnp.float32)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    t, b = jnp.asarray(t, dtype), jnp.asarray(b, dtype)
    tile_rows, tile_cols = min(tile_rows, x.shape[0]), min(tile_cols, y.shape[0])
    if kernel == "xla":
        loss_sum, *stats = _tiled_block(x, y, t, b, tile_rows, tile_cols, bool(positives), bool(recompute))
    else:
        from .tiled_pallas import pallas_block     # imports Pallas only when asked for

        loss_sum, *stats = pallas_block(x, y, t, b, tile_rows, tile_cols, bool(positives), kernel == "pallas_interpret")
    return (loss_sum, *(jax.lax.stop_gradient(v) for v in stats))


def tiled_sigmoid_loss(zimg, ztxt, t, b, *, tile=DEFAULT_TILE, recompute: bool = False, kernel: str = "auto"):
    """The per-example sigmoid loss -(1/B) sum_ij log sigmoid(z_ij (t <x_i, y_j> + b)), tiled, with stats.

    The same function, reduction (per example: the sum over all B^2 pairs divided by B) and
    statistics as ``dense_sigmoid_loss`` of :mod:`.losses`, in memory O(B d + tile^2) instead of
    O(B^2); the dtype of the embeddings is kept (the trainer casts to float32 first).

    Args:
      zimg, ztxt: (B, d) image and text embeddings (row i of each is a positive pair).
      t, b: scalars, the inverse temperature itself and the bias.
      tile, recompute, kernel: as in :func:`tiled_sigmoid_block`.
    Returns:
      (loss, stats): the scalar loss and the dict pos_mean/min/max, neg_mean/min/max of the logits.
    """
    loss_sum, neg_sum, neg_max, neg_min = tiled_sigmoid_block(zimg, ztxt, t, b, tile=tile, positives=True,
                                                              recompute=recompute, kernel=kernel)
    B = zimg.shape[0]
    dtype = loss_sum.dtype
    pos = jax.lax.stop_gradient(jnp.asarray(t, dtype) * jnp.sum(jnp.asarray(zimg, dtype) * jnp.asarray(ztxt, dtype),
                                                                  axis=-1) + jnp.asarray(b, dtype))
    stats = {"pos_mean": jnp.mean(pos), "pos_min": jnp.min(pos), "pos_max": jnp.max(pos),
             "neg_mean": neg_sum / float(max(B * (B - 1), 1)), "neg_min": neg_min, "neg_max": neg_max}
    return loss_sum / B, stats


__all__ = ["DEFAULT_TILE", "KERNELS", "PALLAS_BACKENDS", "add_stats", "resolve_kernel", "check_tile", "sweep_tiles", "tile_terms", "tiled_sigmoid_block", "tiled_sigmoid_loss"]
