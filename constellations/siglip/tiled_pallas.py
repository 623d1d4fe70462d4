"""Pallas kernels for the tiled sigmoid loss (GPU / TPU), with the math and gradients of :mod:`.tiled`.

Two kernels, as in FlashAttention's backward pass, because a tile's dL/dy belongs to a column
block that many row programs would otherwise have to add into at once:

* the **row kernel**, one program per block of ``tile_rows`` rows x_I: a loop over all column
  blocks y_J computes s = x_I y_J^T, the loss terms and statistics, and (with gradients)
  dL/dx_I = t sum_J G_IJ y_J and the block's parts of dL/dt = sum G s and dL/db = sum G;
* the **column kernel** (gradients only), one program per block of ``tile_cols`` columns y_J:
  a loop over all row blocks recomputes s^T = y_J x_I^T and adds dL/dy_J = t sum_I G_IJ^T x_I.

So a differentiated call costs four GEMMs per tile (the logits twice) and no atomics; memory is
O((R + C) d + tile^2) as for the scan. The per-pair math is :func:`.tiles.tile_terms` (and so
:mod:`constellations.loss`), shared with the scan, with positives and padding masked by global
indices. ``interpret=True`` runs the kernels in Pallas's interpreter on any backend (how the
tests check them on CPU); compiled, they are for GPU (Triton) and TPU (Mosaic), and
``tiled_sigmoid_block``'s default ``kernel="auto"`` selects them there. They have not been run
compiled in this repository's CI (no accelerator was available when they were written);
``experiments/bench_siglip_loss.py --gpu`` is the short script that times them against the XLA
scan, in float32 and bfloat16, when one is.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from .tiles import add_stats, tile_terms

_STATS = 8   # per row block: loss, neg_sum, neg_max, neg_min, dL/dt, dL/db, 2 unused (a lane-friendly width)


def _pad_rows(a, size: int):
    n = -(-a.shape[0] // size)
    return jnp.pad(a, ((0, n * size - a.shape[0]), (0, 0))), n


def _dot_t(a, c):
    """a c^T without materializing the transpose."""
    return jax.lax.dot_general(a, c, (((1,), (1,)), ((), ())), preferred_element_type=a.dtype)


def _row_kernel(tb_ref, x_ref, y_ref, *out_refs, R, C, tile_rows, tile_cols, n_col_blocks, positives, gradients):
    stats_ref = out_refs[0]
    i = pl.program_id(0)
    t, b = tb_ref[0, 0], tb_ref[0, 1]
    x = x_ref[...]
    dtype = x.dtype
    rows = i * tile_rows + jax.lax.broadcasted_iota(jnp.int32, (tile_rows, 1), 0)
    cols0 = jax.lax.broadcasted_iota(jnp.int32, (1, tile_cols), 1)
    zero = jnp.zeros((), dtype)

    def body(j, carry):
        acc, dx, dt, db = carry
        y = y_ref[pl.ds(j * tile_cols, tile_cols), :]
        s = _dot_t(x, y)
        part, g = tile_terms(s, t, b, rows, j * tile_cols + cols0, R, C, positives, gradients)
        if gradients:
            dx = dx + jnp.dot(g, y, preferred_element_type=dtype)
            dt, db = dt + jnp.sum(g * s), db + jnp.sum(g)
        return add_stats(acc, part), dx, dt, db

    init = ((zero, zero, jnp.asarray(-jnp.inf, dtype), jnp.asarray(jnp.inf, dtype)), jnp.zeros_like(x), zero, zero)
    (loss, neg_sum, neg_max, neg_min), dx, dt, db = jax.lax.fori_loop(0, n_col_blocks, body, init)
    stats_ref[...] = jnp.stack([loss, neg_sum, neg_max, neg_min, dt, db, zero, zero]).reshape(1, _STATS)
    if gradients:
        out_refs[1][...] = t * dx


def _col_kernel(tb_ref, x_ref, y_ref, dy_ref, *, R, C, tile_rows, tile_cols, n_row_blocks, positives):
    j = pl.program_id(0)
    t, b = tb_ref[0, 0], tb_ref[0, 1]
    y = y_ref[...]
    cols = j * tile_cols + jax.lax.broadcasted_iota(jnp.int32, (tile_cols, 1), 0)
    rows0 = jax.lax.broadcasted_iota(jnp.int32, (1, tile_rows), 1)

    def body(i, dy):
        x = x_ref[pl.ds(i * tile_rows, tile_rows), :]
        s_t = _dot_t(y, x)                                   # (tile_cols, tile_rows): the tile transposed
        _, g_t = tile_terms(s_t, t, b, cols, i * tile_rows + rows0, C, R, positives, True)
        return dy + jnp.dot(g_t, x, preferred_element_type=y.dtype)

    dy_ref[...] = t * jax.lax.fori_loop(0, n_row_blocks, body, jnp.zeros_like(y))


def _sweep(x, y, t, b, tile_rows, tile_cols, positives, gradients, interpret):
    R, d = x.shape
    C = y.shape[0]
    xp, n_row_blocks = _pad_rows(x, tile_rows)
    yp, n_col_blocks = _pad_rows(y, tile_cols)
    tb = jnp.stack([t, b]).reshape(1, 2)
    whole = lambda a: pl.BlockSpec(a.shape, lambda *_: (0, 0))                      # noqa: E731
    row_kernel = partial(_row_kernel, R=R, C=C, tile_rows=tile_rows, tile_cols=tile_cols,
                         n_col_blocks=n_col_blocks, positives=positives, gradients=gradients)
    out_shape = [jax.ShapeDtypeStruct((n_row_blocks, _STATS), x.dtype)]
    out_specs = [pl.BlockSpec((1, _STATS), lambda i: (i, 0))]
    if gradients:
        out_shape.append(jax.ShapeDtypeStruct(xp.shape, x.dtype))
        out_specs.append(pl.BlockSpec((tile_rows, d), lambda i: (i, 0)))
    outs = pl.pallas_call(row_kernel, out_shape=out_shape, grid=(n_row_blocks,), interpret=interpret,
                          in_specs=[whole(tb), pl.BlockSpec((tile_rows, d), lambda i: (i, 0)), whole(yp)],
                          out_specs=out_specs)(tb, xp, yp)
    per_block = outs[0]
    stats = (jnp.sum(per_block[:, 0]), jnp.sum(per_block[:, 1]), jnp.max(per_block[:, 2]), jnp.min(per_block[:, 3]))
    if not gradients:
        return stats, None
    col_kernel = partial(_col_kernel, R=R, C=C, tile_rows=tile_rows, tile_cols=tile_cols,
                         n_row_blocks=n_row_blocks, positives=positives)
    dy = pl.pallas_call(col_kernel, out_shape=jax.ShapeDtypeStruct(yp.shape, y.dtype), grid=(n_col_blocks,),
                        interpret=interpret,
                        in_specs=[whole(tb), whole(xp), pl.BlockSpec((tile_cols, d), lambda j: (j, 0))],
                        out_specs=pl.BlockSpec((tile_cols, d), lambda j: (j, 0)))(tb, xp, yp)
    return stats, (outs[1][:R], dy[:C], jnp.sum(per_block[:, 4]), jnp.sum(per_block[:, 5]))


@partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6, 7))
def pallas_block(x, y, t, b, tile_rows, tile_cols, positives, interpret):
    """(loss_sum, neg_sum, neg_max, neg_min) of the (R, C) block, as ``tiled._tiled_block``, by the kernels."""
    stats, _ = _sweep(x, y, t, b, tile_rows, tile_cols, positives, False, interpret)
    return stats


def _pallas_block_fwd(x, y, t, b, tile_rows, tile_cols, positives, interpret):
    return _sweep(x, y, t, b, tile_rows, tile_cols, positives, True, interpret)


def _pallas_block_bwd(tile_rows, tile_cols, positives, interpret, grads, cotangents):
    g = cotangents[0]
    dx, dy, dt, db = grads
    return (g * dx).astype(dx.dtype), (g * dy).astype(dy.dtype), g * dt, g * db


pallas_block.defvjp(_pallas_block_fwd, _pallas_block_bwd)
