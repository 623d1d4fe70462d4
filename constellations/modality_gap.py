"""The modality-gap direction of Theorem 3.6 (theory.md C9), built by its constructive proof.

Claim C9: if N >= d + 2, s_ii > 0 for all i and s_ij < 0 for all i != j (the *sign condition*; e.g. a
constellation with m > |b_rel|), then there is a unit h with <h, U_i> > 0 for all i and
<h, V_j> < 0 for at least N - d indices j.

The construction, step by step (:func:`modality_gap_direction`):

1. Helly / LP: find h0 with <h0, U_i> >= 1 for all i (scipy HiGHS). It exists iff 0 is not in
   conv(U), i.e. the U_i lie in an open hemisphere.
2. Move into the cone of U: an LP over the simplex, max gamma s.t. <sum_k lambda_k U_k, U_i> >= gamma,
   lambda >= 0, sum lambda = 1. Its optimum is positive exactly when step 1 succeeds (the minimum-norm
   point p of conv(U) has <p, U_i> >= |p|^2 > 0), and it writes h = sum_k lambda_k U_k.
3. Caratheodory: while the support of lambda has more than rank(U) <= d points, take mu in the null
   space of the support's vectors (sum mu_k U_k = 0) and move lambda along -mu until a coefficient
   reaches 0; h does not change. At most d support points remain.
4. Every V_j with j outside the support has <h, V_j> = sum_k lambda_k s_kj < 0 (k != j): at least N - d of them.

Prop. 5: for d = 2 and N >= 4 no configuration satisfies the sign condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from ._validation import check_finite, check_matrix, check_scalar, validated_pair
from .geometry import constellation_statistics


@dataclass(frozen=True)
class ModalityGapDirection:
    """A direction separating the U's from most V's (Thm 3.6, C9), with its certificate.

    Attributes:
      h: (d,) unit vector with <h, U_i> > 0 for all i.
      support: indices k of the U_k that h is a positive combination of (at most d of them).
      coefficients: lambda_k > 0 for k in ``support`` (h is proportional to sum_k lambda_k U_k).
      n_separated: number of V_j with <h, V_j> < 0.
      guaranteed: N - d (the theorem's guarantee when the sign condition holds; may be <= 0).
      min_u_projection: min_i <h, U_i> (> 0).
      sign_condition: whether s_ii > 0 and s_ij < 0 (i != j) hold.
    """

    h: np.ndarray
    support: np.ndarray
    coefficients: np.ndarray
    n_separated: int
    guaranteed: int
    min_u_projection: float
    sign_condition: bool


def satisfies_sign_condition(U, V, *, normalize: bool = False) -> bool:
    """Whether <U_i, V_i> > 0 for all i and <U_i, V_j> < 0 for all i != j (C9's hypothesis)."""
    st = constellation_statistics(U, V, normalize=normalize)
    return bool(st.min_positive > 0 and st.max_negative < 0)


def _open_hemisphere_direction(U: np.ndarray) -> np.ndarray | None:
    n, d = U.shape
    res = linprog(np.zeros(d), A_ub=-U, b_ub=-np.ones(n), bounds=[(None, None)] * d, method="highs")
    if res.status == 2:
        return None
    if res.status != 0:
        raise RuntimeError(f"hemisphere LP did not finish: {res.message}")
    return res.x


def _conic_weights(U: np.ndarray) -> tuple[np.ndarray, float]:
    n = len(U)
    G = U @ U.T
    # variables (lambda_1..lambda_n, gamma): maximize gamma s.t. gamma - G lambda <= 0, sum lambda = 1
    c = np.zeros(n + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-G, np.ones((n, 1))])
    A_eq = np.hstack([np.ones((1, n)), np.zeros((1, 1))])
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(n), A_eq=A_eq, b_eq=[1.0],
                  bounds=[(0, None)] * n + [(None, None)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"conic-hull LP did not finish: {res.message}")
    return res.x[:n], float(res.x[-1])


def caratheodory_reduce(points: np.ndarray, weights: np.ndarray, *, tol: float = 1e-12) -> np.ndarray:
    """Rewrite sum_k w_k x_k (w >= 0) with at most rank(points) nonzero weights, same sum.

    Each step takes a null vector mu of the supported points (sum mu_k x_k = 0), scaled to have a
    positive entry, and moves w to w - theta mu with the largest theta keeping w >= 0.

    Args:
      points: (K, d) finite array; weights: (K,) finite, >= 0, not all zero.
    """
    check_matrix(points, "points", min_rows=1)
    points = np.asarray(points, dtype=np.float64)
    check_finite(points, "points")
    weights = np.array(weights, dtype=np.float64)
    if weights.shape != (len(points),):
        raise ValueError(f"weights must have shape ({len(points)},), one per point; got {weights.shape}")
    check_finite(weights, "weights")
    if np.any(weights < -1e-9 * max(weights.max(), 1.0)) or not np.any(weights > 0):
        raise ValueError("weights must be >= 0 (up to solver rounding) and not all zero: a conic combination")
    check_scalar(tol, "tol", low=0.0)
    w = np.where(weights > tol * max(weights.max(), 1.0), weights, 0.0)
    while True:
        S = np.flatnonzero(w > 0)
        X = points[S].T  # (d, |S|)
        _, sv, Vt = np.linalg.svd(X, full_matrices=True)
        rank = int(np.sum(sv > tol * max(sv.max(initial=0.0), 1.0)))
        if len(S) <= rank:
            return w
        mu = Vt[-1]  # X mu = 0
        if mu.max() <= 0:
            mu = -mu
        pos = mu > tol
        theta = np.min(w[S][pos] / mu[pos])
        w_new = w[S] - theta * mu
        w_new[w_new <= tol * w[S].max()] = 0.0
        w[S] = w_new


def modality_gap_direction(U, V, *, normalize: bool = False) -> ModalityGapDirection:
    """Build the direction h of Theorem 3.6 (C9) by its constructive proof (see the module docstring).

    Args:
      U, V: (N, d) arrays of unit rows.

    Returns:
      A :class:`ModalityGapDirection`; ``n_separated >= N - d`` whenever the sign condition holds.

    Raises:
      ValueError: if no h with <h, U_i> > 0 for all i exists (0 lies in conv(U)); under the sign
        condition with N >= d + 2 the theorem says this cannot happen.
    """
    U, V = validated_pair(U, V, normalize=normalize)
    n, d = U.shape
    if _open_hemisphere_direction(U) is None:
        raise ValueError("no direction h has <h, U_i> > 0 for every i: 0 lies in the convex hull of the U_i "
                         "(so the U's are not in an open hemisphere, and C9's sign condition cannot hold)")
    weights, gamma = _conic_weights(U)
    if gamma <= 0:
        raise RuntimeError(f"conic-hull LP gave gamma = {gamma} although the hemisphere LP was feasible")
    weights = caratheodory_reduce(U, weights)
    support = np.flatnonzero(weights > 0)
    h = weights[support] @ U[support]
    h /= np.linalg.norm(h)
    proj_v = V @ h
    return ModalityGapDirection(
        h=h,
        support=support,
        coefficients=weights[support],
        n_separated=int(np.sum(proj_v < 0)),
        guaranteed=n - d,
        min_u_projection=float(np.min(U @ h)),
        sign_condition=satisfies_sign_condition(U, V),
    )
