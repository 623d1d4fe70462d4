"""Synthetic training engine: free unit vectors trained by full-batch Adam, compiled and batched.

The model of ``theory.md`` section 5. Each run holds k >= 2 modalities X^(0..k-1) of N free vectors
in R^d (row i of every modality belongs to pair i; X^(0) is called U, X^(1) is V), the log inverse
temperature t' (t = exp(t')), a bias and, optionally, an explicit adapter x. Its loss is the mean
sigmoid loss over the edges of a synchronization graph G on the k modalities:

    L = (1 / |G|) sum_{(a, c) in G} (1 / N^2) sum_{i, j} softplus(-z_ij * logit_ij^(a, c))
    logit_ij^(a, c) = t * <Y^(a)_i, Y^(c)_j> + b,        b = -t * b_rel  (relative-bias form)

(reduction "mean", the paper's experiment code; SigLIP's sign convention, so the paper's b is our -b).
Y are the vectors the loss sees: with ``normalize=True`` (the paper's, and the default) the rows are
divided by their norms inside the loss, so the gradient Adam sees is tangent to the sphere; with
``normalize=False`` the raw parameters enter the inner products. With the explicit adapter of claim
C10 (k = 2 only), delta = sigmoid(x) and Y^(0)_i = (delta U_i, sqrt(1 - delta^2)),
Y^(1)_i = (delta V_i, -sqrt(1 - delta^2)) in dimension d + 1 (then normalized, as the paper's code).

One training step: value and gradient of L; the gradient of every frozen parameter is set to 0;
Adam (optax.scale_by_adam: b1 0.9, b2 0.999, eps 1e-8, the PyTorch defaults) gives a direction, the
trainable parameters move by -lr times it, and the rows of every trainable modality are re-projected
onto the unit sphere. Frozen parameters are carried through ``jnp.where`` and never move, bit for bit.

Everything that may differ between runs of one sweep is data, not code: the seed (as its raw PRNG
key) and seed index, t0, the initial bias, lr, the adapter's x0, the parameterization and which
parameters train. So a sweep over seeds, initial or frozen values, parameterizations and trainable
sets is one compiled function, ``vmap``-ed over runs, with the steps in ``lax.scan``, and a second
call with the same shapes and options compiles nothing. Runs are fed to it in chunks (same compiled
code) so the display can show progress and the two halves of a batch can run on two cores.

Precision: training is float32 (as the paper's PyTorch code); ``dtype="float64"`` exists for tests.
Final margins are recomputed in float64 by :mod:`constellations.geometry`.

The loss terms are the package's sigmoid loss, :func:`constellations.loss.sigmoid_terms_from_logits`
(``loss="exact"``, the default). In training, each (N, N) block's value and gradient are taken by
hand (:func:`logit_value_and_grad`: the float operations of the custom JVP of
:func:`constellations.loss.softplus`, one exponential per pair shared by the value and the slope),
so a step is three matrix products and about one elementwise pass per block, plus O(N d) work; on a
CPU a large block is visited in row tiles that stay in the cache (:func:`_tiled_edge_value_and_grad`).
With ``loss="epsilon"``, the authors' float32 form
-log(sigmoid(x) + 1e-8) (:func:`constellations.loss.epsilon_sigmoid_terms`; opt-in, for exact
comparison with the paper's numbers; see theory.md s.5: pairs with logits beyond ~16.6 saturate at
18.42 and get no gradient).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import threading
import time
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import geometry
from ..loss import epsilon_sigmoid_terms, normalize_rows, sigmoid_terms_from_logits, synchronization_graph

PARAMETERIZATIONS = ("relative_bias", "standard")
TRAINABLE_NAMES = ("U", "V", "t", "bias")
LOSS_VARIANTS = ("exact", "epsilon")
#: Metric names recorded every ``metric_every`` steps (see :func:`run_metrics`).
METRICS = ("loss", "t", "b_rel", "margin", "relative_bias", "xi", "retrieval")


class DivergenceError(FloatingPointError):
    """A run produced a non-finite loss or parameter; the message names the runs and the step."""


# ----------------------------------------------------------------------------------------------
# Loss terms.


def sigmoid_terms(logits, variant: str = "exact"):
    """Per-pair sigmoid-loss terms of a stack of (N, N) logit blocks (positives on each diagonal)."""
    if variant == "exact":
        # Small blocks, many steps: trade one (N, N) buffer for the faster custom-JVP gradient.
        return sigmoid_terms_from_logits(logits, store_sigmoid=True)
    if variant == "epsilon":
        return epsilon_sigmoid_terms(logits)
    raise ValueError(f"loss must be one of {LOSS_VARIANTS}; got {variant!r}")


# ----------------------------------------------------------------------------------------------
# Static configuration (one compiled function per value) and per-run inputs (vmapped data).


@dataclass(frozen=True)
class EngineConfig:
    """What fixes the compiled code: sizes, graph, loss variant, adapter, precision, metric interval.

    Attributes:
      N, d, k: pairs, dimension, modalities.
      edges: the synchronization graph as a tuple of (a, c) pairs.
      normalize: in-loss row normalization (the paper's; False: raw inner products).
      loss: "exact" (default) or "epsilon" (see the module docstring).
      adapter: the explicit adapter of C10 (k = 2).
      dtype: "float32" (training precision of the paper) or "float64" (needs jax x64).
      steps: training steps; metric_every: steps between two metric records (divides steps).
      loss_every: steps between two records of the training loss (divides metric_every). The loss
        value (one log1p per pair) is computed only at the recorded steps; the other steps take the
        gradient alone, which is all Adam needs (about a quarter of a step's time at N = 100).
    """

    N: int
    d: int
    k: int
    edges: tuple[tuple[int, int], ...]
    normalize: bool
    loss: str
    adapter: bool
    dtype: str
    steps: int
    metric_every: int
    loss_every: int = 1

    @property
    def loss_steps(self) -> np.ndarray:
        """Steps whose loss (before the step) is recorded: the last of every ``loss_every``."""
        return np.arange(self.loss_every - 1, self.steps, self.loss_every)

    @property
    def n_metric_points(self) -> int:
        return self.steps // self.metric_every + 1

    @property
    def embedding_dim(self) -> int:
        return self.d + 1 if self.adapter else self.d


@dataclass(frozen=True)
class RunInputs:
    """Per-run data, arrays with one leading run axis R (all vmapped).

    Attributes:
      seed_index: (R,) int, the run's initial vectors are :func:`initial_embeddings` (seed, seed_index).
      t0: (R,) initial inverse temperature (t' = log t0).
      bias0: (R,) initial bias in the run's own coordinate: b_rel0, or b0 = -t0 b_rel0 (standard).
      lr: (R,) Adam learning rate.
      adapter_x0: (R,) initial adapter parameter x (delta = sigmoid(x)); unused without adapter.
      relative_bias: (R,) bool, True for the relative-bias parameterization.
      trainable: (R, k + 3) bool: modalities 0..k-1, then t, bias, adapter.
    """

    seed_index: np.ndarray
    t0: np.ndarray
    bias0: np.ndarray
    lr: np.ndarray
    adapter_x0: np.ndarray
    relative_bias: np.ndarray
    trainable: np.ndarray

    def __len__(self) -> int:
        return len(self.seed_index)

    def take(self, idx) -> "RunInputs":
        return RunInputs(*(np.asarray(getattr(self, f.name))[idx] for f in dataclasses.fields(self)))


def initial_embeddings(seed, seed_index, k: int, N: int, d: int, dtype=jnp.float32):
    """The initial vectors of a run: k x N independent uniform points on S^{d-1} (normalized Gaussians).

    They depend only on (seed, seed_index), so every variant of a sweep starts from the same
    configurations (common random numbers) and a locked modality is the same across variants.
    ``seed`` is an int or the raw key ``jax.random.PRNGKey(seed)`` (how the compiled engine takes
    it: as data, so a new seed does not compile a new program).
    """
    base = jax.random.PRNGKey(seed) if np.ndim(seed) == 0 else seed
    key = jax.random.fold_in(base, seed_index)
    return normalize_rows(jax.random.normal(key, (k, N, d), dtype))


# ----------------------------------------------------------------------------------------------
# The model of one run (pure functions; vmapped over runs below).


def _dtype(cfg: EngineConfig):
    return jnp.float32 if cfg.dtype == "float32" else jnp.float64


def effective_embeddings(cfg: EngineConfig, X, scalars):
    """The (k, N, d') vectors the loss sees: adapter applied, rows normalized when cfg.normalize."""
    if cfg.adapter:
        delta = jax.nn.sigmoid(scalars[2])
        lift = jnp.sqrt(1 - delta**2)
        sign = jnp.where(jnp.arange(cfg.k) == 0, 1.0, -1.0).astype(X.dtype)[:, None, None]
        extra = jnp.broadcast_to(sign * lift, X.shape[:-1] + (1,))
        X = jnp.concatenate([delta * X, extra], axis=-1)
    return normalize_rows(X) if cfg.normalize else X


def _edge_blocks(cfg: EngineConfig, Y):
    """Inner-product blocks S^(a, c) = Y^(a) Y^(c)T of every edge, shape (|G|, N, N)."""
    if cfg.edges == ((0, 1),):
        return (Y[0] @ Y[1].T)[None]
    src = np.array([a for a, _ in cfg.edges])
    dst = np.array([c for _, c in cfg.edges])
    return jnp.einsum("eid,ejd->eij", Y[src], Y[dst])


def _temperature_and_bias(scalars, relative_bias):
    t = jnp.exp(scalars[0])
    b = jnp.where(relative_bias, -t * scalars[1], scalars[1])
    return t, b


def loss_value(cfg: EngineConfig, params, relative_bias):
    """L of theory.md s.5 for one run: mean over edges and pairs of the sigmoid-loss terms."""
    X, scalars = params
    t, b = _temperature_and_bias(scalars, relative_bias)
    S = _edge_blocks(cfg, effective_embeddings(cfg, X, scalars))
    return jnp.mean(sigmoid_terms(t * S + b, cfg.loss))


def logit_value_and_grad(logits, variant: str = "exact", *, positives=None, size: int | None = None,
                         value: bool = True):
    """Mean sigmoid-loss term of one (N, N) logit block and its gradient G = d mean / d logits.

    "exact": with x = -z * logit (z = +1 on the diagonal), the terms are softplus(x) =
    max(x, 0) + log1p(e^{-|x|}) and their slopes sigmoid(x), both from one exponential per pair, as
    the custom JVP of :func:`constellations.loss.softplus` (the same float operations, so the same
    values and gradients as autodiff of :func:`sigmoid_terms`), but by hand: no stored residuals and no
    transposed pass, one fused loop over the block. "epsilon": autodiff of the authors' terms.

    ``positives`` (a bool mask, default the diagonal) and ``size`` (the divisor of the mean, default
    ``logits.size``) let a row tile of a larger block be handled ("exact" only): its share of the sum.
    ``value=False`` skips the loss value (returned as 0; the gradient is unchanged): the log1p pass.
    """
    n = logits.size if size is None else size
    if variant == "epsilon" and positives is None and size is None:
        return jax.value_and_grad(lambda l: jnp.mean(sigmoid_terms(l, "epsilon")))(logits)
    if variant != "exact":
        raise ValueError(f"loss must be 'exact' for a tile, one of {LOSS_VARIANTS} for a block; got {variant!r}")
    eye = jnp.eye(logits.shape[-2], logits.shape[-1], dtype=bool) if positives is None else positives
    x = jnp.where(eye, -logits, logits)
    e = jnp.exp(-jnp.abs(logits))
    inv = 1 / (1 + e)
    slope = jnp.where(x >= 0, inv, e * inv)
    total = jnp.sum(jnp.maximum(x, 0) + jnp.log1p(e)) / n if value else jnp.zeros((), logits.dtype)
    return total, jnp.where(eye, -slope, slope) * (1 / n)


def _edge_value_and_grad(Ya, Yc, t, b, variant, value: bool = True):
    """Mean loss of the edge (a, c) and its gradient w.r.t. Y^(a), Y^(c), t and b.

    With S = Y^(a) Y^(c)T, logits t S + b and G = d mean / d logits: dY^(a) = t G Y^(c),
    dY^(c) = t G^T Y^(a), dt = sum(G * S) = sum(Y^(a) * G Y^(c)) (no second pass over the block) and
    db = sum(G). The block is touched by three matrix products and one elementwise loop; large
    blocks on a CPU ("exact") one row tile at a time (:func:`_tiled_edge_value_and_grad`).
    """
    rows = _tile_rows(Ya.shape[0]) if variant == "exact" else None
    if rows is not None:
        return _tiled_edge_value_and_grad(Ya, Yc, t, b, rows, value)
    S = Ya @ Yc.T
    if variant == "exact":
        total, G = logit_value_and_grad(t * S + b, variant, value=value)
    else:
        total, G = logit_value_and_grad(t * S + b, variant)
    GYc = G @ Yc
    return total, t * GYc, t * (Ya.T @ G).T, jnp.sum(Ya * GYc), jnp.sum(G)


#: Pair terms per row tile of a large block on a CPU: a tile's few (rows, N) arrays stay in the L2 cache.
CPU_TILE_PAIRS = 2**17


def _tile_rows(N: int) -> int | None:
    """Rows per tile for an (N, N) block (a divisor of N, at least 8), or None to take the block whole
    (small N, N without such a divisor, or an accelerator)."""
    if jax.default_backend() != "cpu" or N < 2 * max(8, CPU_TILE_PAIRS // N):
        return None
    rows = _divisor_near(N, max(8, CPU_TILE_PAIRS // N))
    return rows if rows >= 8 else None


def _tiled_edge_value_and_grad(Ya, Yc, t, b, rows: int, value: bool = True):
    """:func:`_edge_value_and_grad` ("exact") one tile of ``rows`` rows of the block at a time.

    A ``lax.scan`` over row tiles of Y^(a) (``rows`` divides N): each tile's logits, slopes and G live
    only in the cache, so memory is a few (rows, N) buffers instead of (N, N) ones, and no (N, N) array passes
    through main memory. The sums over tiles differ from the whole block's only by float rounding.
    """
    N, d = Ya.shape
    n_tiles = N // rows
    columns = jnp.arange(Yc.shape[0])

    def tile(carry, inputs):
        total, gYc, db = carry
        Ya_t, i = inputs
        row = i * rows + jnp.arange(rows)
        L = t * (Ya_t @ Yc.T) + b
        v, G = logit_value_and_grad(L, "exact", positives=row[:, None] == columns[None, :], size=N * Yc.shape[0],
                                    value=value)
        return (total + v, gYc + (Ya_t.T @ G).T, db + jnp.sum(G)), G @ Yc

    zero = jnp.zeros((), Ya.dtype)
    (total, gYc, db), GYc = jax.lax.scan(tile, (zero, jnp.zeros_like(Yc), zero),
                                         (Ya.reshape(n_tiles, rows, d), jnp.arange(n_tiles)))
    GYc = GYc.reshape(N, -1)
    return total, t * GYc, t * gYc, jnp.sum(Ya * GYc), db


def loss_and_grad(cfg: EngineConfig, params, relative_bias, value: bool = True):
    """(L, dL/dparams) for one run: :func:`loss_value` and its gradient.

    The pairwise blocks are differentiated by hand (:func:`_edge_value_and_grad`); the gradients of
    the vectors and of (t, b) are then chained back through the normalization / adapter and through
    t = exp(t'), b = -t b_rel by autodiff (O(N d) work). With several edges, a ``lax.scan`` visits one
    (N, N) block at a time and accumulates, so each block stays in the cache instead of materializing
    |G| blocks at once (about twice as fast on a CPU). Equal to ``jax.value_and_grad(loss_value)`` up
    to float rounding (tests/test_engine.py). ``value=False``: the loss is returned as 0 (gradient only).
    """
    X, scalars = params
    Y, vjp_embed = jax.vjp(lambda X, s: effective_embeddings(cfg, X, s), X, scalars)
    (t, b), vjp_tb = jax.vjp(lambda s: _temperature_and_bias(s, relative_bias), scalars)
    n = len(cfg.edges)
    if cfg.edges == ((0, 1),):
        total, ga, gc, gt, gb = _edge_value_and_grad(Y[0], Y[1], t, b, cfg.loss, value)
        gY = jnp.stack([ga, gc])
    else:
        def edge(carry, ac):
            total, gY, gt, gb = carry
            a, c = ac[0], ac[1]
            v, ga, gc, dt, db = _edge_value_and_grad(Y[a], Y[c], t, b, cfg.loss, value)
            gY = gY.at[a].add(ga).at[c].add(gc)
            return (total + v, gY, gt + dt, gb + db), None

        zero = jnp.zeros((), Y.dtype)
        edges = jnp.asarray(cfg.edges, jnp.int32)
        (total, gY, gt, gb), _ = jax.lax.scan(edge, (zero, jnp.zeros_like(Y), zero, zero), edges)
        total, gY, gt, gb = total / n, gY / n, gt / n, gb / n
    gX, gs_embed = vjp_embed(gY)
    (gs_tb,) = vjp_tb((gt, gb))
    return total, (gX, gs_embed + gs_tb)


def run_metrics(cfg: EngineConfig, params, relative_bias):
    """In-graph diagnostics of one run (float32 logging; final numbers come from geometry).

    loss; t; b_rel (= -b / t in the standard form); the joint m* and b*_rel over all edges
    ((min positive - max negative) / 2 and their mean, the largest margin with one threshold for
    every edge); xi (claim C13) and the U->V retrieval accuracy, averaged over edges.
    """
    X, scalars = params
    t, b = _temperature_and_bias(scalars, relative_bias)
    Y = effective_embeddings(cfg, X, scalars)
    rows = _tile_rows(cfg.N) if cfg.loss == "exact" and cfg.edges == ((0, 1),) else None
    if rows is not None:
        loss, min_pos, max_neg, retrieval = _tiled_edge_metrics(Y[0], Y[1], t, b, rows)
    else:
        S = _edge_blocks(cfg, Y)
        eye = jnp.eye(cfg.N, dtype=bool)
        positives = jnp.diagonal(S, axis1=1, axis2=2)                       # (E, N)
        negatives = jnp.where(eye, -jnp.inf, S)
        min_pos, max_neg = jnp.min(positives), jnp.max(negatives)
        retrieval = jnp.mean(positives > jnp.max(negatives, axis=2))
        loss = jnp.mean(sigmoid_terms(t * S + b, cfg.loss))
    src = np.array([a for a, _ in cfg.edges])
    dst = np.array([c for _, c in cfg.edges])
    diff = Y[src] - Y[dst]                                                  # (E, N, d')
    xi = jnp.mean(jnp.sum(jnp.mean(diff**2, axis=1), -1) - jnp.sum(jnp.mean(diff, axis=1) ** 2, -1))
    return {
        "loss": loss,
        "t": t,
        "b_rel": -b / t,
        "margin": (min_pos - max_neg) / 2,
        "relative_bias": (min_pos + max_neg) / 2,
        "xi": xi,
        "retrieval": retrieval,
    }


def _tiled_edge_metrics(Ya, Yc, t, b, rows: int):
    """Loss, min positive, max negative and U->V retrieval of one large block, one row tile at a time
    (as :func:`_tiled_edge_value_and_grad`: no (N, N) array)."""
    N = Ya.shape[0]
    columns = jnp.arange(N)

    def tile(carry, inputs):
        value, min_pos, max_neg = carry
        Ya_t, i = inputs
        S = Ya_t @ Yc.T
        eye = (i * rows + jnp.arange(rows))[:, None] == columns[None, :]
        v, _ = logit_value_and_grad(t * S + b, "exact", positives=eye, size=N * N)
        positive = jnp.sum(jnp.where(eye, S, 0), axis=1)                    # one positive per row
        negative = jnp.max(jnp.where(eye, -jnp.inf, S), axis=1)
        return (value + v, jnp.minimum(min_pos, jnp.min(positive)), jnp.maximum(max_neg, jnp.max(negative))), \
            positive > negative

    inf = jnp.asarray(jnp.inf, Ya.dtype)
    (value, min_pos, max_neg), hits = jax.lax.scan(tile, (jnp.zeros((), Ya.dtype), inf, -inf),
                                                   (Ya.reshape(N // rows, rows, -1), jnp.arange(N // rows)))
    return value, min_pos, max_neg, jnp.mean(hits)


_adam = optax.scale_by_adam()  # b1 = 0.9, b2 = 0.999, eps = 1e-8 (PyTorch's defaults)


def _init_state(cfg: EngineConfig, X, run):
    dtype = _dtype(cfg)
    scalars = jnp.stack([jnp.log(run["t0"]), run["bias0"], run["adapter_x0"]]).astype(dtype)
    params = (X, scalars)
    return params, _adam.init(params)


def train_step(cfg: EngineConfig, state, run, value: bool = True):
    """One full-batch Adam step of one run; returns (new state, loss before the step: 0 if not ``value``)."""
    params, opt_state = state
    loss, (gX, gs) = loss_and_grad(cfg, params, run["relative_bias"], value)
    train_X = run["trainable"][: cfg.k][:, None, None]
    train_s = run["trainable"][cfg.k:]
    grads = (jnp.where(train_X, gX, 0), jnp.where(train_s, gs, 0))
    (dX, ds), opt_state = _adam.update(grads, opt_state)
    X, scalars = params
    lr = run["lr"].astype(X.dtype)
    X = jnp.where(train_X, normalize_rows(X - lr * dX), X)
    scalars = jnp.where(train_s, scalars - lr * ds, scalars)
    return ((X, scalars), opt_state), loss


#: One run's :func:`initial_embeddings` from the raw key, compiled once per shape. Outside the chunk
#: program on purpose: the random-number program is slow to compile (seconds), and a vmapped copy
#: inside every chunk program would compile again for each chunk size.
_initial_embeddings_jit = jax.jit(initial_embeddings, static_argnums=(2, 3, 4, 5))


def _chunk_initial_embeddings(cfg: EngineConfig, key, seed_index) -> np.ndarray:
    """(R, k, N, d) initial vectors of the runs of a chunk (see :func:`initial_embeddings`), on the host."""
    dtype = _dtype(cfg)
    return np.stack([np.asarray(_initial_embeddings_jit(key, np.int32(i), cfg.k, cfg.N, cfg.d, dtype)) for i in seed_index])


@partial(jax.jit, static_argnames=("cfg",))
def _init_chunk(cfg: EngineConfig, X0, runs):
    """Initial states and metrics of a chunk from its initial vectors X0 (R, k, N, d)."""
    def one(X, run):
        state = _init_state(cfg, X, run)
        return state, run_metrics(cfg, state[0], run["relative_bias"])
    return jax.vmap(one)(X0, runs)


@partial(jax.jit, static_argnames=("cfg", "n_blocks"))
def _advance_chunk(cfg: EngineConfig, n_blocks: int, states, runs):
    """n_blocks x metric_every steps of every run of a chunk: vmap over runs, lax.scan over steps."""
    def one(state, run):
        def recorded(state, _):
            """loss_every steps; the last one computes the loss value (the record)."""
            if cfg.loss_every > 1:
                state, _ = jax.lax.scan(lambda s, _: (train_step(cfg, s, run, value=False)[0], None), state, None,
                                        length=cfg.loss_every - 1)
            return train_step(cfg, state, run)

        def block(state, _):
            state, losses = jax.lax.scan(recorded, state, None, length=cfg.metric_every // cfg.loss_every)
            return state, (losses, run_metrics(cfg, state[0], run["relative_bias"]))
        state, (losses, metrics) = jax.lax.scan(block, state, None, length=n_blocks)
        return state, losses.reshape(-1), metrics
    return _map_runs(one, states, runs)


def _map_runs(f, *args):
    """``jax.vmap(f)(*args)``; a chunk of one run calls f on it directly (no batch-of-one products)."""
    if jax.tree.leaves(args)[0].shape[0] == 1:
        out = f(*jax.tree.map(lambda a: a[0], args))
        return jax.tree.map(lambda a: a[None], out)
    return jax.vmap(f)(*args)


def chunk_program_memory(cfg: EngineConfig, chunk_size: int = 1, n_blocks: int = 1) -> dict:
    """XLA's memory analysis of the compiled training program of one chunk (compiles it; no run).

    Returns bytes: ``temp_bytes`` (buffers live inside the program: the (N, N) blocks of a step and
    the scan's records), ``argument_bytes``, ``output_bytes`` and ``total_bytes`` (their sum less the
    arguments the outputs reuse).
    """
    runs = RunInputs(np.zeros(chunk_size, np.int32), *(np.ones(chunk_size) for _ in range(4)),
                     np.ones(chunk_size, bool), np.ones((chunk_size, cfg.k + 3), bool))
    data = _chunk_data(runs, np.float32 if cfg.dtype == "float32" else np.float64)
    X0 = jax.ShapeDtypeStruct((chunk_size, cfg.k, cfg.N, cfg.d), _dtype(cfg))
    states = jax.eval_shape(lambda X, d: _init_chunk(cfg, X, d)[0], X0, data)
    m = _advance_chunk.lower(cfg, n_blocks, states, data).compile().memory_analysis()
    out = {"temp_bytes": m.temp_size_in_bytes, "argument_bytes": m.argument_size_in_bytes,
           "output_bytes": m.output_size_in_bytes}
    out["total_bytes"] = out["temp_bytes"] + out["argument_bytes"] + out["output_bytes"] - m.alias_size_in_bytes
    return out


@partial(jax.jit, static_argnames=("cfg",))
def _final_embeddings(cfg: EngineConfig, params):
    return jax.vmap(lambda X, s: effective_embeddings(cfg, X, s))(*params)


# ----------------------------------------------------------------------------------------------
# Driving a batch: chunks, segments, two workers, progress, divergence checks.


@dataclass(frozen=True)
class BatchOutput:
    """Raw engine output for R runs (host NumPy arrays)."""

    embeddings: np.ndarray      # (R, k, N, d') final vectors the loss sees
    scalars: np.ndarray         # (R, 3): t', bias, adapter x
    loss: np.ndarray            # (R, steps // loss_every): the loss before each step of cfg.loss_steps
    history: dict               # name -> (R, n_metric_points)
    history_steps: np.ndarray   # (n_metric_points,)
    wall_time_s: float


def _chunk_data(runs: RunInputs, dtype) -> dict:
    """The per-run inputs as device arrays, real numbers in the training dtype (converted on the host)."""
    real = ("t0", "bias0", "lr", "adapter_x0")
    return {f.name: jnp.asarray(np.asarray(getattr(runs, f.name), dtype if f.name in real else None))
            for f in dataclasses.fields(runs)}


def _divisor_near(n: int, target: int) -> int:
    """The largest divisor of n that is <= max(target, 1)."""
    target = max(1, min(n, target))
    return max(q for q in range(1, target + 1) if n % q == 0)


def default_workers() -> int:
    """Threads feeding chunks: 2, or 1 when this process may use only one core (taskset, cgroup)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, usable))


#: Pair terms per compiled call on a CPU (all runs of a chunk, all edges): about 10 runs at N = 100.
CPU_CHUNK_PAIRS = 2**17


def default_chunk_size(cfg: EngineConfig, n_runs: int, workers: int) -> int:
    """Runs per compiled call.

    On a CPU, a step of one small run is a few dozen short kernels; a vmapped chunk of runs shares
    them (at N = 100, the compiled step of a chunk of 10 runs took 20-25% less per run-step than one
    run per call, measured on a loaded 2-core machine), up to about 2^17 pair terms per chunk,
    beyond which the blocks leave the cache. Large N gives one run per chunk. The
    chunk is picked near that cap so that the runs split evenly over the workers with the least
    padding. On an accelerator, wide chunks (up to 256 runs, or ~64 MiB of blocks) amortize the
    launch cost.
    """
    per_run = len(cfg.edges) * cfg.N * cfg.N
    if jax.default_backend() != "cpu":
        return max(1, min(256, (64 * 2**20) // (4 * per_run), math.ceil(n_runs / workers)))
    cap = max(1, min(CPU_CHUNK_PAIRS // per_run, math.ceil(n_runs / workers)))
    waste = lambda c: math.ceil(n_runs / c) * c - n_runs  # noqa: E731
    return min(range(max(1, cap // 2), cap + 1), key=lambda c: (waste(c), -c))


def run_batch(cfg: EngineConfig, runs: RunInputs, *, seed: int = 0, chunk_size: int | None = None,
              workers: int | None = None, progress=None, calls_per_run: int = 10,
              describe=None) -> BatchOutput:
    """Train every run of ``runs`` (one compiled function) and return their final states and records.

    Args:
      chunk_size: runs per compiled call (the last chunk is padded with copies of its first run).
      workers: threads feeding chunks to the compiled function (default :func:`default_workers`).
      progress: a tqdm-like object with ``update(n)`` (counts run-steps), or None.
      calls_per_run: each chunk's steps are split into about this many calls, so progress shows
        and a diverging run stops the batch early.
      describe: callable(run index) -> str used in divergence messages.

    Raises:
      DivergenceError: a run's loss or parameters became NaN or infinite.
    """
    R = len(runs)
    workers = workers or default_workers()
    chunk_size = chunk_size or default_chunk_size(cfg, R, workers)
    n_blocks_total = cfg.steps // cfg.metric_every
    n_blocks = _divisor_near(n_blocks_total, math.ceil(n_blocks_total / max(1, calls_per_run)))
    n_calls = n_blocks_total // n_blocks
    k, N, dp = cfg.k, cfg.N, cfg.embedding_dim
    dtype = np.float32 if cfg.dtype == "float32" else np.float64
    out_emb = np.empty((R, k, N, dp), dtype)
    out_scalars = np.empty((R, 3), dtype)
    out_loss = np.empty((R, cfg.steps // cfg.loss_every), dtype)
    out_hist = {m: np.empty((R, cfg.n_metric_points), dtype) for m in METRICS}
    stop = threading.Event()
    describe = describe or (lambda i: f"run {i}")
    key = jax.random.PRNGKey(seed)

    def check(values, idx, where):
        bad = ~np.all(np.isfinite(values.reshape(len(values), -1)), axis=1)
        if bad.any():
            stop.set()
            first = [describe(int(i)) for i in idx[bad][:5]]
            raise DivergenceError(
                f"training diverged {where}: non-finite loss or parameters in {int(bad.sum())} run(s), e.g. "
                f"{'; '.join(first)}. Lower lr or t0, or use loss='exact' (the stable form).")

    def do_chunk(start):
        idx = np.arange(start, min(start + chunk_size, R))
        padded = np.concatenate([idx, np.full(chunk_size - len(idx), idx[0])])
        data = _chunk_data(runs.take(padded), dtype)
        X0 = _chunk_initial_embeddings(cfg, key, runs.seed_index[padded])
        state, metrics0 = _init_chunk(cfg, X0, data)
        for m in METRICS:
            out_hist[m][idx, 0] = np.asarray(metrics0[m])[: len(idx)]
        for call in range(n_calls):
            if stop.is_set():
                return
            state, losses, metrics = _advance_chunk(cfg, n_blocks, state, data)
            losses = np.asarray(losses)[: len(idx)]
            step0 = call * n_blocks * cfg.metric_every
            check(losses, idx, f"between steps {step0} and {step0 + losses.shape[1] * cfg.loss_every}")
            r0 = step0 // cfg.loss_every
            out_loss[idx, r0:r0 + losses.shape[1]] = losses
            p0 = 1 + call * n_blocks
            for m in METRICS:
                out_hist[m][idx, p0:p0 + n_blocks] = np.asarray(metrics[m])[: len(idx)]
            if progress is not None:
                progress.update(len(idx) * losses.shape[1] * cfg.loss_every)
        params = state[0]
        check(np.asarray(params[0])[: len(idx)], idx, "at the end")
        out_emb[idx] = np.asarray(_final_embeddings(cfg, params))[: len(idx)]
        out_scalars[idx] = np.asarray(params[1])[: len(idx)]

    t_start = time.perf_counter()
    starts = list(range(0, R, chunk_size))
    if workers == 1 or len(starts) == 1:
        for s in starts:
            do_chunk(s)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(do_chunk, s) for s in starts]
            for f in concurrent.futures.as_completed(futures):
                f.result()
    history_steps = np.arange(cfg.n_metric_points) * cfg.metric_every
    return BatchOutput(out_emb, out_scalars, out_loss, out_hist, history_steps, time.perf_counter() - t_start)


# ----------------------------------------------------------------------------------------------
# Final geometry in float64.


def final_geometry(embeddings: np.ndarray, edges) -> tuple[np.ndarray, np.ndarray]:
    """m* and b*_rel of each run's final vectors, from :mod:`constellations.geometry` in float64.

    For k = 2 this is :func:`geometry.margin_and_relative_bias` (U, V). For k modalities it is the
    joint separation over the edges with one threshold: (min_e min positive - max_e max negative) / 2
    and their mean, from :func:`geometry.constellation_statistics` of each edge.
    """
    R = embeddings.shape[0]
    margin, rel = np.empty(R), np.empty(R)
    for r in range(R):
        Y = np.asarray(embeddings[r], np.float64)
        if tuple(edges) == ((0, 1),):
            margin[r], rel[r] = geometry.margin_and_relative_bias(Y[0], Y[1], normalize=True)
            continue
        stats = [geometry.constellation_statistics(Y[a], Y[c], normalize=True) for a, c in edges]
        lo = min(s.min_positive for s in stats)
        hi = max(s.max_negative for s in stats)
        margin[r], rel[r] = (lo - hi) / 2, (lo + hi) / 2
    return margin, rel


def make_config(N: int, d: int, *, steps: int, k: int = 2, graph="complete", normalize: bool = True,
                loss: str = "exact", adapter: bool = False, dtype: str = "float32",
                metric_every: int | None = None, loss_every: int = 1) -> EngineConfig:
    """Validate the static options and build an :class:`EngineConfig`."""
    from .._validation import check_int

    N = check_int(N, "N (number of pairs)", low=2)
    d = check_int(d, "d (dimension)", low=1)
    steps = check_int(steps, "steps", low=1)
    k = check_int(k, "k (number of modalities)", low=2)
    edges = synchronization_graph(k, graph)
    if loss not in LOSS_VARIANTS:
        raise ValueError(f"loss must be one of {LOSS_VARIANTS}; got {loss!r}")
    if adapter and k != 2:
        raise ValueError(f"the explicit adapter (claim C10) pairs one locked and one trained modality: k must be 2; got k = {k}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype='float64' needs jax.config.update('jax_enable_x64', True) first")
    if metric_every is None:
        metric_every = _divisor_near(steps, max(1, steps // 100))
    metric_every = check_int(metric_every, "metric_every", low=1)
    if steps % metric_every:
        raise ValueError(f"metric_every must divide steps; got steps = {steps}, metric_every = {metric_every}")
    loss_every = check_int(loss_every, "loss_every", low=1)
    if metric_every % loss_every:
        raise ValueError(f"loss_every must divide metric_every; got metric_every = {metric_every}, "
                         f"loss_every = {loss_every}")
    return EngineConfig(N=N, d=d, k=k, edges=edges, normalize=bool(normalize), loss=loss, adapter=bool(adapter),
                        dtype=dtype, steps=steps, metric_every=metric_every, loss_every=loss_every)
