"""The trainer's contrastive losses: parameterizations and multi-device implementations.

The per-pair math is :mod:`constellations.loss` (``sigmoid_loss_from_logits`` and the softmax core);
this module only decides *where* each block of the logit matrix is computed. For a global batch of
B pairs split over D devices (n = B / D rows each; device k holds rows [k n, (k + 1) n)):

    L = -(1/B) sum_{i,j} log sigmoid(z_ij (t <x_i, y_j> + b)),   z_ii = +1, z_ij = -1 (i != j)

(row sums averaged over the global batch, big_vision's normalization), with

* ``dense``: the whole (B, B) logit matrix under ``jit`` on the global arrays (XLA inserts the
  all-gather); the single-device reference.
* ``all_gather``: under ``jax.shard_map``, each device gathers all B text embeddings and computes its
  (n, B) row block.
* ``tiled``: one device, the (B, B) logits swept tile by tile (:mod:`.tiled`, a custom VJP that
  never stores logits): memory O(B d + tile^2) instead of O(B^2).
* ``ring``: each device starts with its own (n, n) block (positives on the diagonal) and then passes
  its text block to the next device D - 1 times with ``lax.ppermute``, adding the all-negative block
  of whatever texts it holds (SigLIP paper, section 3.3). Each block is computed tile by tile
  (:mod:`.tiled`) and the whole ring is one custom VJP: each text block travels with the gradient
  of the loss w.r.t. it, accumulated on every device it visits and sent home after the last hop, so
  per-device memory is O(n d + tile^2). With ``tile=None`` each block is instead one dense (n, n)
  matrix wrapped in ``jax.checkpoint`` so the backward pass recomputes its logits (one (n, n) block
  alive at a time plus every received (n, d) text block; the older ring, kept for comparison).
* ``ring_bidirectional``: the same, sending text blocks both ways at once; ceil((D - 1) / 2) rounds.

Parameterizations (``theory.md`` section 2): ``standard`` (t = exp(t'), b; init t' = log 10, b = -10),
``relative_bias`` (t = exp(t'), b = -t b_rel, the paper's Definition 1) and ``softmax`` (CLIP's loss
with inverse temperature t, the baseline; dense only since every row and column needs a
normalizer). There is no clamp on t here; the trainer clamps t' only when its config asks.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from ..loss import sigmoid_loss_from_logits, softmax_loss_from_logits
from .tiled import DEFAULT_TILE, check_tile, resolve_kernel, sweep_tiles, tiled_sigmoid_loss
from .tiles import add_stats

PARAMETERIZATIONS = ("standard", "relative_bias", "softmax")
IMPLEMENTATIONS = ("dense", "tiled", "all_gather", "ring", "ring_bidirectional")
STAT_NAMES = ("pos_mean", "pos_min", "pos_max", "neg_mean", "neg_min", "neg_max")


def check_loss_choice(parameterization: str, implementation: str) -> None:
    """Raise ValueError for an unknown parameterization or implementation, or softmax off dense."""
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"loss parameterization must be one of {PARAMETERIZATIONS}; got {parameterization!r}")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"loss implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    if parameterization == "softmax" and implementation != "dense":
        raise ValueError("the softmax baseline normalizes every row and column of the (B, B) logit matrix; "
                         f"use implementation='dense' (got {implementation!r})")


def init_loss_params(parameterization: str = "standard", *, temperature_init: float = 10.0,
                     bias_init: float = -10.0, relative_bias_init: float | None = None) -> dict:
    """The loss's own trainable scalars, float32.

    standard: {t_prime = log t0, b = b0}; relative_bias: {t_prime = log t0, b_rel} with b_rel
    defaulting to -b0 / t0 (the same starting logits as the standard form); softmax: {t_prime}.
    """
    check_loss_choice(parameterization, "dense")
    if not (temperature_init > 0 and math.isfinite(temperature_init)):
        raise ValueError(f"temperature_init must be a finite t0 > 0; got {temperature_init!r}")
    t_prime = jnp.asarray(math.log(temperature_init), jnp.float32)
    if parameterization == "standard":
        return {"t_prime": t_prime, "b": jnp.asarray(bias_init, jnp.float32)}
    if parameterization == "relative_bias":
        b_rel = -bias_init / temperature_init if relative_bias_init is None else relative_bias_init
        return {"t_prime": t_prime, "b_rel": jnp.asarray(b_rel, jnp.float32)}
    return {"t_prime": t_prime}


def temperature_and_bias(loss_params: dict, parameterization: str):
    """(t, b) from the loss parameters: t = exp(t'); b as stored, -t * b_rel, or 0 for softmax."""
    t = jnp.exp(loss_params["t_prime"])
    if parameterization == "standard":
        return t, loss_params["b"]
    if parameterization == "relative_bias":
        return t, -t * loss_params["b_rel"]
    if parameterization == "softmax":
        return t, jnp.zeros_like(t)
    raise ValueError(f"loss parameterization must be one of {PARAMETERIZATIONS}; got {parameterization!r}")


# ----------------------------------------------------------------------------------------------
# Blocks.


def _block(zimg, ztxt, t, b, positives: bool):
    """One logit block: (sum of its sigmoid-loss terms, sum / max / min of its negative logits).

    The diagnostics are taken under ``stop_gradient``; only the loss sum is differentiated.
    """
    logits = t * (zimg @ ztxt.T) + b
    loss_sum = sigmoid_loss_from_logits(logits, positives_on_diagonal=positives, reduction="sum")
    lg = jax.lax.stop_gradient(logits)
    if positives:
        off = ~jnp.eye(lg.shape[0], lg.shape[1], dtype=bool)
        neg_sum = jnp.sum(jnp.where(off, lg, 0.0))
        neg_max = jnp.max(jnp.where(off, lg, -jnp.inf))
        neg_min = jnp.min(jnp.where(off, lg, jnp.inf))
    else:
        neg_sum, neg_max, neg_min = jnp.sum(lg), jnp.max(lg), jnp.min(lg)
    return loss_sum, neg_sum, neg_max, neg_min


def _positive_logits(zimg, ztxt, t, b):
    return jax.lax.stop_gradient(t * jnp.sum(zimg * ztxt, axis=-1) + b)


def _stats_from_logits(logits):
    B = logits.shape[0]
    lg = jax.lax.stop_gradient(logits)
    pos = jnp.diagonal(lg)
    off = ~jnp.eye(B, dtype=bool)
    return {
        "pos_mean": jnp.mean(pos), "pos_min": jnp.min(pos), "pos_max": jnp.max(pos),
        "neg_mean": (jnp.sum(lg) - jnp.sum(pos)) / float(max(B * (B - 1), 1)),
        "neg_min": jnp.min(jnp.where(off, lg, jnp.inf)), "neg_max": jnp.max(jnp.where(off, lg, -jnp.inf)),
    }


def _as_f32(*xs):
    return tuple(jnp.asarray(x, jnp.float32) for x in xs)


# ----------------------------------------------------------------------------------------------
# Dense (also the reference for every other implementation).


def dense_sigmoid_loss(zimg, ztxt, t, b):
    """-(1/B) sum_ij log sigmoid(z_ij (t x_i.y_j + b)) on the full (B, B) logits, plus logit stats.

    Args:
      zimg, ztxt: (B, d) image and text embeddings (row i of each is a positive pair).
      t, b: scalars, the inverse temperature itself and the bias.
    Returns:
      (loss, stats): the per-example loss (float32) and a dict of positive/negative logit statistics.
    """
    zimg, ztxt, t, b = _as_f32(zimg, ztxt, t, b)
    logits = t * (zimg @ ztxt.T) + b
    return sigmoid_loss_from_logits(logits, reduction="per_example"), _stats_from_logits(logits)


def dense_softmax_loss(zimg, ztxt, t):
    """CLIP's loss: mean over i of (CE of row i + CE of column i) / 2 on logits t x_i.y_j, plus stats."""
    zimg, ztxt, t = _as_f32(zimg, ztxt, t)
    logits = t * (zimg @ ztxt.T)
    return softmax_loss_from_logits(logits, reduction="per_example"), _stats_from_logits(logits)


# ----------------------------------------------------------------------------------------------
# shard_map bodies (one device's view: n local rows, axis of size D).


def _finish(loss_sum, neg_sum, neg_max, neg_min, pos, axis, n, D):
    B = n * D
    loss = jax.lax.psum(loss_sum, axis) / B
    stats = {
        "pos_mean": jax.lax.psum(jnp.sum(pos), axis) / B,
        "pos_min": jax.lax.pmin(jnp.min(pos), axis),
        "pos_max": jax.lax.pmax(jnp.max(pos), axis),
        "neg_mean": jax.lax.psum(neg_sum, axis) / float(max(B * (B - 1), 1)),
        "neg_min": jax.lax.pmin(neg_min, axis),
        "neg_max": jax.lax.pmax(neg_max, axis),
    }
    return loss, stats


def _all_gather_body(zimg, ztxt, t, b, *, axis, D):
    n = zimg.shape[0]
    every_txt = jax.lax.all_gather(ztxt, axis, tiled=True)                     # (B, d)
    # Roll so this device's own texts come first: its positives are then on the block's diagonal.
    k = jax.lax.axis_index(axis)
    every_txt = jnp.roll(every_txt, -k * n, axis=0)
    parts = _block(zimg, every_txt, t, b, True)
    return _finish(*parts, _positive_logits(zimg, ztxt, t, b), axis, n, D)


def _ring_body(zimg, ztxt, t, b, *, axis, D, bidirectional, remat, tile=None):
    """One device's ring: own block, then the D - 1 text blocks passed around by ``ppermute``.

    The hops run in a ``lax.scan``: its iterations (and their transposes in the backward pass) run
    one after another, so with each block under ``jax.checkpoint`` only one (n, n) block is alive at
    a time; the scan saves just the received (n, d) text blocks for the backward pass. With ``tile``
    the whole ring is :func:`_tiled_ring` instead.
    """
    n = zimg.shape[0]
    if tile is not None:
        return _tiled_ring(zimg, ztxt, t, b, axis=axis, D=D, bidirectional=bidirectional, tile=tile)
    own = partial(_block, positives=True)
    other = partial(_block, positives=False)
    if remat:
        own, other = jax.checkpoint(own), jax.checkpoint(other)

    def add(acc, part):
        return acc[0] + part[0], acc[1] + part[1], jnp.maximum(acc[2], part[2]), jnp.minimum(acc[3], part[3])

    acc = own(zimg, ztxt, t, b)
    right = [(i, (i + 1) % D) for i in range(D)]
    left = [(i, (i - 1) % D) for i in range(D)]
    rounds, remainder = divmod(D - 1, 2) if bidirectional else (0, D - 1)

    def two_way(carry, _):           # texts from distance +r and -r arrive together
        acc, from_left, from_right = carry
        from_left = jax.lax.ppermute(from_left, axis, right)
        from_right = jax.lax.ppermute(from_right, axis, left)
        acc = add(add(acc, other(zimg, from_left, t, b)), other(zimg, from_right, t, b))
        return (acc, from_left, from_right), None

    def one_way(carry, _):
        acc, from_left = carry
        from_left = jax.lax.ppermute(from_left, axis, right)
        return (add(acc, other(zimg, from_left, t, b)), from_left), None

    from_left = ztxt
    if rounds:
        (acc, from_left, _), _ = jax.lax.scan(two_way, (acc, ztxt, ztxt), length=rounds)
    if remainder:
        (acc, _), _ = jax.lax.scan(one_way, (acc, from_left), length=remainder)
    return _finish(*acc, _positive_logits(zimg, ztxt, t, b), axis, n, D)


def _tiled_ring_sweep(zimg, ztxt, t, b, *, axis, D, bidirectional, tile, gradients):
    """The ring's hops over tiled blocks; with ``gradients`` each text block carries its dL/dy home.

    A text block travels with an accumulator of dL/d(that block): every device it visits adds the
    dL/dy of its own rows against it (from the same tiles as the loss), and after the last hop the
    accumulator is sent back to the block's owner in one ``ppermute``. So the device keeps O(n d)
    residuals (its dL/dx, dL/dy), not one per hop.
    """
    right = [(i, (i + 1) % D) for i in range(D)]
    left = [(i, (i - 1) % D) for i in range(D)]
    rounds, remainder = divmod(D - 1, 2) if bidirectional else (0, D - 1)

    def visit(state, stream, positives):
        text, acc = stream
        stats, grads = sweep_tiles(zimg, text, t, b, tile=tile, positives=positives, gradients=gradients)
        state = dict(state, stats=add_stats(state["stats"], stats))
        if gradients:
            dx, dy, dt, db = grads
            state.update(dx=state["dx"] + dx, dt=state["dt"] + dt, db=state["db"] + db)
            acc = acc + dy
        return state, (text, acc)

    stats, grads = sweep_tiles(zimg, ztxt, t, b, tile=tile, positives=True, gradients=gradients)
    state = {"stats": stats}
    if gradients:
        state.update(dx=grads[0], dt=grads[2], db=grads[3])
    start = (ztxt, jnp.zeros_like(ztxt) if gradients else None)

    def two_way(carry, _):           # texts from distance +r and -r arrive together
        state, from_left, from_right = carry
        state, from_left = visit(state, jax.lax.ppermute(from_left, axis, right), False)
        state, from_right = visit(state, jax.lax.ppermute(from_right, axis, left), False)
        return (state, from_left, from_right), None

    def one_way(carry, _):
        state, from_left = carry
        state, from_left = visit(state, jax.lax.ppermute(from_left, axis, right), False)
        return (state, from_left), None

    from_left = from_right = start
    if rounds:
        (state, from_left, from_right), _ = jax.lax.scan(two_way, (state, start, start), length=rounds)
    if remainder:
        (state, from_left), _ = jax.lax.scan(one_way, (state, from_left), length=remainder)
    loss_sum, neg_sum, neg_max, neg_min = state["stats"]
    totals = (jax.lax.psum(loss_sum, axis), jax.lax.psum(neg_sum, axis), jax.lax.pmax(neg_max, axis),
              jax.lax.pmin(neg_min, axis))
    if not gradients:
        return totals, None
    dy = grads[1]
    if rounds + remainder:           # the accumulators return to the texts' owners
        dy = dy + jax.lax.ppermute(from_left[1], axis, [(i, (i - rounds - remainder) % D) for i in range(D)])
    if rounds:
        dy = dy + jax.lax.ppermute(from_right[1], axis, [(i, (i + rounds) % D) for i in range(D)])
    return totals, (state["dx"], dy, jax.lax.psum(state["dt"], axis), jax.lax.psum(state["db"], axis))


def _tiled_ring(zimg, ztxt, t, b, *, axis, D, bidirectional, tile):
    """The ring over tiled blocks, one custom VJP for all hops (the gradients ride the forward ring).

    The function differentiated is the psum over devices of the loss sums, so its cotangent is one
    scalar g shared by every device, and dL/dy of a text block gathered on every device it visited
    is exactly g times the accumulated sum. Memory per device: O(n d + tile^2).
    """
    sweep = partial(_tiled_ring_sweep, axis=axis, D=D, bidirectional=bidirectional, tile=tile)

    @jax.custom_vjp
    def ring(zimg, ztxt, t, b):
        return sweep(zimg, ztxt, t, b, gradients=False)[0]

    def ring_fwd(zimg, ztxt, t, b):
        return sweep(zimg, ztxt, t, b, gradients=True)

    def ring_bwd(grads, cotangents):
        g = cotangents[0]            # the statistics carry no gradient
        return tuple(g * v for v in grads)

    ring.defvjp(ring_fwd, ring_bwd)
    loss_sum, neg_sum, neg_max, neg_min = ring(zimg, ztxt, t, b)
    n = zimg.shape[0]
    B = n * D
    pos = _positive_logits(zimg, ztxt, t, b)
    stats = {
        "pos_mean": jax.lax.psum(jnp.sum(pos), axis) / B,
        "pos_min": jax.lax.pmin(jnp.min(pos), axis),
        "pos_max": jax.lax.pmax(jnp.max(pos), axis),
        "neg_mean": jax.lax.stop_gradient(neg_sum) / float(max(B * (B - 1), 1)),
        "neg_min": jax.lax.stop_gradient(neg_min),
        "neg_max": jax.lax.stop_gradient(neg_max),
    }
    return loss_sum / B, stats


def make_sigmoid_loss(implementation: str = "dense", mesh=None, *, axis_name: str = "data", remat: bool = True,
                      tile=DEFAULT_TILE, kernel: str = "auto"):
    """A function (zimg, ztxt, t, b) -> (loss, stats) computing the per-example sigmoid loss.

    Args:
      implementation: one of IMPLEMENTATIONS (see the module docstring).
      mesh: a ``jax.sharding.Mesh`` with axis ``axis_name`` (needed for all but ``dense``). The
        embeddings must be sharded ``P(axis_name)`` over it (rows in global order), t and b
        replicated. With one device every implementation reduces to the dense loss.
      remat: rematerialize each dense ring block in the backward pass (the point of the dense-block
        ring; False only to measure what it saves). Tiled blocks never store logits.
      tile: tile edge (int) or (rows, cols) for ``tiled`` and the rings (:mod:`.tiled`); None makes
        the rings use one dense (n, n) block per hop (the older ring). Ignored by dense/all_gather.
      kernel: how ``tiled`` sweeps its tiles (:data:`.tiled.KERNELS`): "auto" = Pallas on GPU/TPU, the
        XLA scan on CPU. The rings' blocks are always swept by the XLA scan.
    Returns:
      f(zimg, ztxt, t, b) -> (loss, stats): scalar float32 loss = -(1/B) sum_ij log sigmoid(...) and
      the dict of positive/negative logit statistics (STAT_NAMES). Differentiable in all four inputs.
    """
    check_loss_choice("standard", implementation)
    if tile is not None:
        check_tile(tile)
    resolve_kernel(kernel)
    if implementation == "dense":
        return dense_sigmoid_loss
    if implementation == "tiled":
        if tile is None:
            raise ValueError("implementation 'tiled' needs a tile size (an int >= 1 or a pair); got tile=None")

        def tiled_loss(zimg, ztxt, t, b):
            return tiled_sigmoid_loss(*_as_f32(zimg, ztxt, t, b), tile=tile, kernel=kernel)

        return tiled_loss
    if mesh is None or axis_name not in mesh.shape:
        raise ValueError(f"implementation {implementation!r} needs a mesh with an axis named {axis_name!r}")
    D = int(mesh.shape[axis_name])
    if implementation == "all_gather":
        body = partial(_all_gather_body, axis=axis_name, D=D)
    else:
        body = partial(_ring_body, axis=axis_name, D=D, bidirectional=implementation == "ring_bidirectional",
                       remat=remat, tile=tile)
    sharded = jax.shard_map(body, mesh=mesh, in_specs=(P(axis_name), P(axis_name), P(), P()),
                            out_specs=(P(), {k: P() for k in STAT_NAMES}), check_vma=True)

    def loss_fn(zimg, ztxt, t, b):
        zimg, ztxt, t, b = _as_f32(zimg, ztxt, t, b)
        if zimg.shape[0] % D:
            raise ValueError(f"global batch {zimg.shape[0]} must be divisible by the {D} devices of the mesh")
        return sharded(zimg, ztxt, t, b)

    return loss_fn


def make_contrastive_loss(parameterization: str = "standard", implementation: str = "dense", mesh=None, *,
                          axis_name: str = "data", remat: bool = True, tile=DEFAULT_TILE, kernel: str = "auto"):
    """A function (zimg, ztxt, loss_params) -> (loss, stats) for one parameterization.

    ``loss_params`` is the dict of :func:`init_loss_params`; gradients flow to t' and b (or b_rel).
    ``stats`` also holds t, b and the loss's relative bias b_rel = -b/t. ``tile`` and ``kernel`` as in
    :func:`make_sigmoid_loss`.
    """
    check_loss_choice(parameterization, implementation)
    sigmoid = None if parameterization == "softmax" else make_sigmoid_loss(implementation, mesh, axis_name=axis_name,
                                                                           remat=remat, tile=tile, kernel=kernel)

    def loss_fn(zimg, ztxt, loss_params):
        t, b = temperature_and_bias(loss_params, parameterization)
        if sigmoid is None:
            loss, stats = dense_softmax_loss(zimg, ztxt, t)
        else:
            loss, stats = sigmoid(zimg, ztxt, t, b)
        stats = dict(stats, t=t, b=b, b_rel=-b / t)
        return loss, stats

    return loss_fn
