"""Constructions of (m, b_rel)-constellations and the max-margin search (theory.md C3, C5, C6, C10, C11, C14).

Every construction returns a :class:`Construction` whose ``margin`` and ``relative_bias`` are
*recomputed from the vectors* (:func:`constellations.geometry.constellation_statistics`), next to
the values the paper's formula promises (``formula_margin``, ``formula_relative_bias``); tests check
that the two agree, so a wrong formula or a wrong construction cannot pass unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.optimize import minimize_scalar

from . import codes, loss as _loss
from ._validation import as_unit_rows, check_int, check_matrix, check_scalar, check_threshold, validated_pair
from .dimension import c6_code_inner_product, require_feasible
from .geometry import constellation_statistics
from .reference import log_softplus
from .modality_gap import ModalityGapDirection, modality_gap_direction, satisfies_sign_condition  # noqa: F401 (api.md)


@dataclass(frozen=True)
class Construction:
    """A constructed pair (U, V) with its margin recomputed from the vectors and the formula's promise.

    Attributes:
      U, V: (N, d) float64 arrays of unit rows.
      margin, relative_bias: m*, b*_rel recomputed from U, V.
      formula_margin, formula_relative_bias: what the construction's theorem promises ((m, b_rel) for
        which (U, V) is a constellation; m* >= formula_margin always holds when the inputs are as stated).
      name: which construction.
    """

    U: np.ndarray
    V: np.ndarray
    margin: float
    relative_bias: float
    formula_margin: float
    formula_relative_bias: float
    name: str

    @property
    def dimension(self) -> int:
        return int(self.U.shape[1])

    @property
    def size(self) -> int:
        return int(self.U.shape[0])


def _construction(U, V, m, b, name) -> Construction:
    st = constellation_statistics(U, V)
    return Construction(U, V, st.margin, st.relative_bias, float(m), float(b), name)


def _code_max_inner_product(X: np.ndarray) -> float:
    st = constellation_statistics(X, X)
    return st.max_negative


def from_code(X, *, normalize: bool = False) -> Construction:
    """C3 / theory.md s.3: U = V = X for a spherical code X with max_{i!=j} <X_i, X_j> = alpha gives a
    ((1 - alpha)/2, (1 + alpha)/2)-constellation (exactly the constellations with m + b_rel = 1)."""
    check_matrix(X, "X (code)", min_rows=2)
    X = as_unit_rows(X, "X (code)", normalize=normalize)
    alpha = _code_max_inner_product(X)
    return _construction(X, X.copy(), (1 - alpha) / 2, (1 + alpha) / 2, "code")


def lift(U, V, delta, phi=0.0, *, m=None, b_rel=None) -> Construction:
    """C5 (Construction 1): lift a (d-2)-dimensional (m, b_rel)-constellation to dimension d.

    U'_i = (delta U_i, phi, c), V'_i = (delta V_i, phi, -c), c = sqrt(1 - delta^2 - phi^2), an
    (delta^2 m, delta^2 b_rel + phi^2 - c^2)-constellation. (m, b_rel) default to (m*, b*_rel) of (U, V).
    """
    U, V = validated_pair(U, V)
    check_scalar(delta, "delta", low=0.0, high=1.0, high_open=True)
    check_scalar(phi, "phi", low=0.0, high=1.0, high_open=True)
    if delta**2 + phi**2 > 1:
        raise ValueError(f"C5 needs delta^2 + phi^2 <= 1; got {delta**2 + phi**2:.6g}")
    if m is None or b_rel is None:
        st = constellation_statistics(U, V)
        m, b_rel = st.margin, st.relative_bias
    c = np.sqrt(max(1.0 - delta**2 - phi**2, 0.0))
    n = len(U)
    tail = np.full((n, 1), phi)
    Up = np.hstack([delta * U, tail, np.full((n, 1), c)])
    Vp = np.hstack([delta * V, tail, np.full((n, 1), -c)])
    return _construction(Up, Vp, delta**2 * m, delta**2 * b_rel + phi**2 - c**2, "lift (C5)")


def theorem_3_3(code, m, b_rel, *, normalize: bool = False) -> Construction:
    """C6 (Thm 3.3): an (m, b_rel)-constellation from an alpha-code, alpha = (1 + b_rel - 3m) / (1 + b_rel + m).

    With delta^2 = (1 + b_rel + m) / 2 and phi = 0 in C5, positives are 2 delta^2 - 1 = b_rel + m and
    negatives at most delta^2 alpha - (1 - delta^2) = b_rel - m. Because phi = 0 makes one lifted
    coordinate identically 0, it is dropped: a code in dimension n gives a constellation in n + 1
    (the theorem's count, n + 2, keeps the zero coordinate).

    Raises:
      ValueError: (m, b_rel) outside C6's range, or the code's maximal inner product exceeds alpha.
    """
    require_feasible(m, b_rel)
    alpha = c6_code_inner_product(m, b_rel)
    check_matrix(code, "code", min_rows=2)
    X = as_unit_rows(code, "code", normalize=normalize)
    got = _code_max_inner_product(X)
    if got > alpha + 1e-12:
        raise ValueError(f"Thm 3.3 needs a code with maximal inner product <= alpha = {alpha:.6g} for "
                         f"(m, b_rel) = ({m}, {b_rel}); this code has {got:.6g}")
    delta = np.sqrt((1 + b_rel + m) / 2)
    c = np.sqrt(max(1 - delta**2, 0.0))
    n = len(X)
    U = np.hstack([delta * X, np.full((n, 1), c)])
    V = np.hstack([delta * X, np.full((n, 1), -c)])
    return _construction(U, V, m, b_rel, "Theorem 3.3 (C6)")


def regular_simplex(n_points: int) -> np.ndarray:
    """n_points unit vectors in R^(n_points - 1) with all pairwise inner products -1/(n_points - 1)
    (:func:`constellations.codes.simplex`, indexed by its number of points)."""
    n_points = check_int(n_points, "n_points", low=2)
    return codes.simplex(n_points - 1)


def k_modality_simplex(code, k: int, delta) -> tuple[np.ndarray, Construction]:
    """C11 (Construction 2): U_i^(j) = (delta X_i, sqrt(1 - delta^2) w_j), j = 1..k, w a regular simplex.

    Returns the (k, N, n + k - 1) array of modalities and the Construction of the pair of modalities
    (0, 1) (every pair has the same inner products), with the formula
    m = delta^2 (1 - alpha) / 2, b_rel = delta^2 (1 + alpha) / 2 - (1 - delta^2) / (k - 1).
    """
    k = check_int(k, "k", low=2)
    check_scalar(delta, "delta", low=0.0, high=1.0, low_open=True)
    check_matrix(code, "code", min_rows=2)
    X = as_unit_rows(code, "code")
    alpha = _code_max_inner_product(X)
    W = regular_simplex(k)
    c = np.sqrt(1 - delta**2)
    mods = np.stack([np.hstack([delta * X, np.tile(c * W[j], (len(X), 1))]) for j in range(k)])
    m = delta**2 * (1 - alpha) / 2
    b = delta**2 * (1 + alpha) / 2 - (1 - delta**2) / (k - 1)
    return mods, _construction(mods[0], mods[1], m, b, "k-modality simplex (C11)")


def double_constant(n_points: int, delta) -> Construction:
    """C14 (Lee-Chang-Sohn): u_i = (delta w_i, c), v_i = (delta w_i, -c), c = sqrt(1 - delta^2), w a regular
    simplex of n_points in R^(n_points - 1); d = n_points. delta = 1: aligned simplex; delta = 0: antipodal."""
    check_scalar(delta, "delta", low=0.0, high=1.0)
    W = regular_simplex(n_points)
    c = np.sqrt(1 - delta**2)
    n = len(W)
    U = np.hstack([delta * W, np.full((n, 1), c)])
    V = np.hstack([delta * W, np.full((n, 1), -c)])
    s = -1.0 / (n - 1)
    pos, neg = 2 * delta**2 - 1, delta**2 * s - c**2
    return _construction(U, V, (pos - neg) / 2, (pos + neg) / 2, "double-constant (C14)")


def double_constant_loss(n_points: int, delta, t, b) -> float:
    """Summed sigmoid loss of :func:`double_constant` in closed form (positives 2 delta^2 - 1, negatives
    -delta^2/(N-1) - (1 - delta^2)); equals :func:`constellations.sigmoid_loss` on the vectors."""
    n = n_points
    pos = 2 * delta**2 - 1
    neg = -(delta**2) / (n - 1) - (1 - delta**2)
    return float(n * np.logaddexp(0, -(t * pos + b)) + n * (n - 1) * np.logaddexp(0, t * neg + b))


def double_constant_log_loss(n_points: int, delta, t, b) -> float:
    """log of :func:`double_constant_loss`, finite when the loss underflows (large t)."""
    n = n_points
    pos = 2 * delta**2 - 1
    neg = -(delta**2) / (n - 1) - (1 - delta**2)
    return float(np.logaddexp(np.log(n) + log_softplus(-(t * pos + b)), np.log(n * (n - 1)) + log_softplus(t * neg + b)))


def lee_chang_sohn_optimum(n_points: int, t, b) -> tuple[float, Construction]:
    """C14: the best delta in [0, 1] of the double-constant family for fixed (t, b), and its construction.

    The loss is a function of delta^2 alone; its logarithm (finite at any t) is minimized over delta^2 in
    [0, 1] (bounded scalar search, plus the end points, since the minimum is often at an end: aligned for
    large t, antipodal for small t).
    """
    n_points = check_int(n_points, "n_points", low=2)
    check_scalar(t, "t", low=0.0)
    check_scalar(b, "b")
    f = lambda q: double_constant_log_loss(n_points, np.sqrt(q), t, b)  # noqa: E731
    res = minimize_scalar(f, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-12})
    best_q = min([0.0, 1.0, float(res.x)], key=f)
    return float(np.sqrt(best_q)), double_constant(n_points, float(np.sqrt(best_q)))


def locked_adapter(X, delta) -> np.ndarray:
    """C10: A_locked(X) = (delta X, sqrt(1 - delta^2)) (the adapter on the frozen modality)."""
    check_scalar(delta, "delta", low=0.0, high=1.0, low_open=True)
    X = np.asarray(X, dtype=np.float64)
    return np.hstack([delta * X, np.full((len(X), 1), np.sqrt(1 - delta**2))])


def trainable_adapter(X, delta) -> np.ndarray:
    """C10: A_trainable(X) = (delta X, -sqrt(1 - delta^2))."""
    check_scalar(delta, "delta", low=0.0, high=1.0, low_open=True)
    X = np.asarray(X, dtype=np.float64)
    return np.hstack([delta * X, np.full((len(X), 1), -np.sqrt(1 - delta**2))])


def adapter_equivalent_parameters(t, b_rel, delta) -> tuple[float, float]:
    """C10 (Observation 1): L_rb(A_locked(U), A_trainable(V); t, b_rel) = L_rb(U, V; t', b_rel') with
    t' = delta^2 t and b_rel' = (b_rel + 1 - delta^2) / delta^2."""
    check_scalar(delta, "delta", low=0.0, high=1.0, low_open=True)
    return delta**2 * t, (b_rel + 1 - delta**2) / delta**2


# ----------------------------------------------------------------------------------------------
# Max-margin search.


@dataclass(frozen=True)
class SearchResult:
    """Result of :func:`max_margin_search`: the best verified constellation over the restarts.

    Attributes:
      U, V: (N, d) float64 unit rows of the best restart.
      margin, relative_bias: m*, b*_rel recomputed from U, V in float64 (the verified values).
      margins: (restarts,) m* of every restart (recomputed).
      frozen_relative_bias: the frozen b_rel, or None when b_rel was optimized.
      frozen_margin: with b_rel frozen, the largest m such that (U, V) is an (m, frozen b_rel)-constellation,
        min(min_i s_ii - b_rel, b_rel - max_{i!=j} s_ij) (the quantity the restarts are ranked by); C7
        caps it at 1 - b_rel. None when b_rel was optimized.
    """

    U: np.ndarray
    V: np.ndarray
    margin: float
    relative_bias: float
    margins: np.ndarray
    frozen_relative_bias: float | None
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
        return _loss._log_sigmoid_loss_core(U, V, t, -t * b_rel, normalize=True) / t

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
    check_scalar(t_start, "t_start", low=0.0, low_open=True)
    check_scalar(t_end, "t_end", low=0.0, low_open=True)
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
