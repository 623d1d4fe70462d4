"""Constructions of (m, b_rel)-constellations (theory.md C3, C5, C6, C10, C11, C14).

Every construction returns a :class:`Construction` whose ``margin`` and ``relative_bias`` are
*recomputed from the vectors* (:func:`constellations.geometry.constellation_statistics`), next to
the values the paper's formula promises (``formula_margin``, ``formula_relative_bias``); tests check
that the two agree, so a wrong formula or a wrong construction cannot pass unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from . import codes
from ._validation import as_unit_rows, check_int, check_matrix, check_scalar, validated_pair
from .geometry import constellation_statistics
from .reference import log_softplus
from .regions import c6_code_inner_product, require_feasible


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
    else:
        check_scalar(m, "m (margin)")
        check_scalar(b_rel, "b_rel (relative bias)")
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


def _check_double_constant(n_points, delta, t, b) -> int:
    n_points = check_int(n_points, "n_points", low=2)
    check_scalar(delta, "delta", low=0.0, high=1.0)
    check_scalar(t, "t (inverse temperature)", low=0.0)
    check_scalar(b, "b (bias)")
    return n_points


def double_constant_loss(n_points: int, delta, t, b) -> float:
    """Summed sigmoid loss of :func:`double_constant` in closed form (positives 2 delta^2 - 1, negatives
    -delta^2/(N-1) - (1 - delta^2)); equals :func:`constellations.sigmoid_loss` on the vectors.

    Raises ValueError for NaN or out-of-range arguments, and when the loss overflows float64 (then
    :func:`double_constant_log_loss` is the finite form).
    """
    n = _check_double_constant(n_points, delta, t, b)
    pos = 2 * delta**2 - 1
    neg = -(delta**2) / (n - 1) - (1 - delta**2)
    with np.errstate(over="ignore"):
        value = float(n * np.logaddexp(0, -(t * pos + b)) + n * (n - 1) * np.logaddexp(0, t * neg + b))
    if not np.isfinite(value):
        raise ValueError(f"the double-constant loss overflows float64 at t = {t:g}, b = {b:g}; "
                         "use double_constant_log_loss")
    return value


def double_constant_log_loss(n_points: int, delta, t, b) -> float:
    """log of :func:`double_constant_loss`, finite when the loss underflows (large t)."""
    n = _check_double_constant(n_points, delta, t, b)
    pos = 2 * delta**2 - 1
    neg = -(delta**2) / (n - 1) - (1 - delta**2)
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.logaddexp(np.log(n) + log_softplus(-(t * pos + b)),
                                   np.log(n * (n - 1)) + log_softplus(t * neg + b)))
    if not np.isfinite(value):
        raise ValueError(f"the double-constant log loss overflows float64 at t = {t:g}, b = {b:g}")
    return value


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


def _adapter_input(X) -> np.ndarray:
    check_matrix(X, "X", min_rows=1)
    return as_unit_rows(X, "X")


def locked_adapter(X, delta) -> np.ndarray:
    """C10: A_locked(X) = (delta X, sqrt(1 - delta^2)) (the adapter on the frozen modality; X of unit rows)."""
    check_scalar(delta, "delta", low=0.0, high=1.0, low_open=True)
    X = _adapter_input(X)
    return np.hstack([delta * X, np.full((len(X), 1), np.sqrt(1 - delta**2))])


def trainable_adapter(X, delta) -> np.ndarray:
    """C10: A_trainable(X) = (delta X, -sqrt(1 - delta^2)) (X of unit rows)."""
    check_scalar(delta, "delta", low=0.0, high=1.0, low_open=True)
    X = _adapter_input(X)
    return np.hstack([delta * X, np.full((len(X), 1), -np.sqrt(1 - delta**2))])


def adapter_equivalent_parameters(t, b_rel, delta) -> tuple[float, float]:
    """C10 (Observation 1): L_rb(A_locked(U), A_trainable(V); t, b_rel) = L_rb(U, V; t', b_rel') with
    t' = delta^2 t and b_rel' = (b_rel + 1 - delta^2) / delta^2."""
    check_scalar(t, "t (inverse temperature)", low=0.0)
    check_scalar(b_rel, "b_rel (relative bias)")
    check_scalar(delta, "delta", low=0.0, high=1.0, low_open=True)
    return delta**2 * t, (b_rel + 1 - delta**2) / delta**2
