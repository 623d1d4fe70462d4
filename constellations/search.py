"""The max-margin search: free unit vectors, the sigmoid loss annealed to its large-t limit (theory.md C1).

:func:`max_margin_search` returns a :class:`SearchResult` with the margin recomputed from the final
vectors; :func:`find_constellation` is the same search returning just (U, V) (api.md; also exported
at the top level, ``constellations.find_constellation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._validation import check_int, check_scalar, check_threshold
from .geometry import constellation_statistics
from .loss import log_sigmoid_loss


@dataclass(frozen=True)
class SearchResult:
    """Result of :func:`max_margin_search`: the best verified constellation over the restarts.

    Attributes:
      U, V: (N, d) float64 unit rows of the best restart.
      margin, relative_bias: m*, b*_rel recomputed from U, V in float64 (the verified values).
      margins: (restarts,) m* of every restart (recomputed).
      frozen_b_rel: the loss's relative-bias parameter b_rel when it was frozen, or None when it was optimized.
      frozen_margin: with b_rel frozen, the largest m such that (U, V) is an (m, frozen b_rel)-constellation,
        min(min_i s_ii - b_rel, b_rel - max_{i!=j} s_ij) (the quantity the restarts are ranked by); C7
        caps it at 1 - b_rel. None when b_rel was optimized.
    """

    U: np.ndarray
    V: np.ndarray
    margin: float
    relative_bias: float
    margins: np.ndarray
    frozen_b_rel: float | None
    frozen_margin: float | None = None

    @property
    def is_constellation(self) -> bool:
        return self.margin > 0


@partial(jax.jit, static_argnames=("steps", "freeze_b_rel"))
def _search(U0, V0, b0, t_schedule, lr_schedule, steps, freeze_b_rel):
    """Minimize log L_rb(U, V; t, b_rel) / t, which tends to -m* as t grows (C1), with t annealed.

    Adam on the raw rows with the loss's in-graph normalization, re-projection after every step.
    """

    def objective(params, t):
        U, V, b_rel = params
        return log_sigmoid_loss(U, V, t, -t * b_rel, normalize=True) / t

    opt = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)

    def run_one(U, V, b):
        params = (U, V, b)
        state = opt.init(params)

        def step(carry, inputs):
            params, state = carry
            t, lr = inputs
            g = jax.grad(objective)(params, t)
            if freeze_b_rel:
                g = (g[0], g[1], jnp.zeros_like(g[2]))
            state.hyperparams["learning_rate"] = lr
            updates, state = opt.update(g, state, params)
            U, V, b = optax.apply_updates(params, updates)
            U = U / jnp.linalg.norm(U, axis=1, keepdims=True)
            V = V / jnp.linalg.norm(V, axis=1, keepdims=True)
            return ((U, V, b), state), None

        (params, _), _ = jax.lax.scan(step, (params, state), (t_schedule, lr_schedule), length=steps)
        return params

    return jax.vmap(run_one)(U0, V0, b0)


def max_margin_search(N: int, d: int, *, b_rel=None, seed: int = 0, restarts: int = 8, steps: int = 4000,
                      t_start: float = 10.0, t_end: float = 2000.0, lr: float = 1e-2) -> SearchResult:
    """Search for an (N, d) constellation with the largest margin m* (optionally at a frozen b_rel).

    The objective is log L_rb / t (C1: it tends to -m* as t -> infinity), minimized by Adam over free
    unit vectors (and b_rel unless frozen) while t grows geometrically from ``t_start`` to ``t_end``;
    all restarts run in one compiled, vmapped call (float64 when x64 is enabled, else float32). The
    returned margin is recomputed from the final vectors in float64, never taken from the optimizer.
    With b_rel frozen, the loss uses that threshold throughout and restarts are ranked by the margin
    at it (``frozen_margin``); ``margin``/``relative_bias`` are still the vectors' own m*, b*_rel.
    """
    N = check_int(N, "N", low=2)
    d = check_int(d, "d", low=1)
    restarts = check_int(restarts, "restarts", low=1)
    steps = check_int(steps, "steps", low=1)
    seed = check_int(seed, "seed", low=0)
    check_scalar(t_start, "t_start", low=0.0, low_open=True)
    check_scalar(t_end, "t_end", low=0.0, low_open=True)
    check_scalar(lr, "lr (learning rate)", low=0.0, low_open=True)
    if b_rel is not None:
        check_threshold(b_rel, "b_rel (relative bias)")
    rng = np.random.default_rng(seed)
    dtype = jnp.result_type(float)
    U0 = rng.standard_normal((restarts, N, d))
    V0 = U0 + 0.1 * rng.standard_normal((restarts, N, d))
    U0 /= np.linalg.norm(U0, axis=-1, keepdims=True)
    V0 /= np.linalg.norm(V0, axis=-1, keepdims=True)
    b0 = np.full(restarts, 0.5 if b_rel is None else b_rel)
    frac = np.linspace(0.0, 1.0, steps)
    t_schedule = t_start * (t_end / t_start) ** frac
    lr_schedule = lr * (0.5 * (1 + np.cos(np.pi * frac)) * 0.9 + 0.1)
    U, V, _ = _search(jnp.asarray(U0, dtype), jnp.asarray(V0, dtype), jnp.asarray(b0, dtype),
                      jnp.asarray(t_schedule, dtype), jnp.asarray(lr_schedule, dtype), steps, b_rel is not None)
    U = np.array(U, np.float64)
    V = np.array(V, np.float64)
    U /= np.linalg.norm(U, axis=-1, keepdims=True)
    V /= np.linalg.norm(V, axis=-1, keepdims=True)
    stats = [constellation_statistics(U[r], V[r]) for r in range(restarts)]
    if b_rel is None:
        score = np.array([s.margin for s in stats])
    else:  # the margin available at the frozen threshold
        score = np.array([min(s.min_positive - b_rel, b_rel - s.max_negative) for s in stats])
    best = int(np.argmax(score))
    if not np.all(np.isfinite(score)):
        raise FloatingPointError("max-margin search diverged (non-finite vectors); lower lr or t_end")
    return SearchResult(U[best], V[best], stats[best].margin, stats[best].relative_bias,
                        np.array([s.margin for s in stats]), b_rel, None if b_rel is None else float(score[best]))


def find_constellation(N: int, d: int, *, b_rel=None, seed: int = 0, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """The max-margin search of :func:`max_margin_search`, returning just (U, V) (api.md).

    With ``b_rel`` given, the search keeps the threshold frozen there and maximizes the margin at it.
    """
    res = max_margin_search(N, d, b_rel=b_rel, seed=seed, **kwargs)
    return res.U, res.V
