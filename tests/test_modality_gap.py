"""Tests of constellations.modality_gap: claim C9 (Thm 3.6) built by its proof, Prop. 5, and C13 (xi)."""

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy.optimize import minimize

import constellations as cs
from constellations import modality_gap as mg
from constellations.search import max_margin_search
from constellations.constructions import regular_simplex
from strategies import random_unit


@st.composite
def sign_condition_configs(draw):
    """(U, V) with N >= d + 2, s_ii > 0 and s_ij < 0 (i != j): a double-constant lift (delta^2 > 1/2) of a greedy
    code whose inner products stay below (1 - delta^2)/delta^2, then each row moved by a small random rotation."""
    d = draw(st.integers(3, 8))
    n = draw(st.integers(d + 2, d + 25))
    delta2 = draw(st.floats(0.55, 0.9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    limit = (1 - delta2) / delta2
    pts = []
    for _ in range(20000):
        x = random_unit(rng, 1, d - 1)[0]
        if all(x @ p < limit for p in pts):
            pts.append(x)
            if len(pts) == n:
                break
    if len(pts) < n:  # too many points for this code: use a looser lift
        n = max(len(pts), 2)
    X = np.array(pts[:n])
    c = np.sqrt(1 - delta2)
    U = np.hstack([np.sqrt(delta2) * X, np.full((n, 1), c)])
    V = np.hstack([np.sqrt(delta2) * X, np.full((n, 1), -c)])
    noise = draw(st.floats(0.0, 0.05))
    U = U + noise * rng.standard_normal(U.shape)
    V = V + noise * rng.standard_normal(V.shape)
    return U / np.linalg.norm(U, axis=1, keepdims=True), V / np.linalg.norm(V, axis=1, keepdims=True)


def check_direction(U, V, r):
    n, d = U.shape
    assert np.linalg.norm(r.h) == pytest.approx(1.0, abs=1e-12)
    assert np.all(U @ r.h > 0) and r.min_u_projection > 0
    assert len(r.support) <= d and np.all(r.coefficients > 0)
    h = r.coefficients @ U[r.support]
    assert np.allclose(h / np.linalg.norm(h), r.h, atol=1e-10)  # h really is a positive combination of the support
    assert r.n_separated == int(np.sum(V @ r.h < 0))


@given(sign_condition_configs())
def test_C9_direction_meets_its_guarantee(pair):
    """C9 (Thm 3.6): whenever N >= d + 2 and the sign condition holds, the constructed unit h has <h, U_i> > 0 for
    all i, is a positive combination of at most d of the U's, and <h, V_j> < 0 for at least N - d indices j."""
    U, V = pair
    n, d = U.shape
    assume(n >= d + 2 and mg.satisfies_sign_condition(U, V))  # about 2 in 3 generated examples qualify
    r = mg.modality_gap_direction(U, V)
    check_direction(U, V, r)
    assert r.sign_condition
    assert r.n_separated >= n - d == r.guaranteed
    # every V outside the support is on the negative side (the proof's last step)
    outside = np.setdiff1d(np.arange(n), r.support)
    assert np.all(V[outside] @ r.h < 0)


def test_C9_on_a_trained_constellation_with_m_above_abs_b_rel():
    """C9 on a max-margin search result at frozen b_rel = 0 (so m > |b_rel| gives the sign condition)."""
    s = max_margin_search(24, 4, b_rel=0.0, restarts=2, steps=1500, seed=3)
    assert s.frozen_margin > 0
    assert mg.satisfies_sign_condition(s.U, s.V)
    r = cs.modality_gap_direction(s.U, s.V)
    check_direction(s.U, s.V, r)
    assert r.n_separated >= 24 - 4


def test_C9_raises_when_no_hemisphere_contains_U():
    U = np.vstack([np.eye(3), -np.eye(3)])
    with pytest.raises(ValueError, match="convex hull"):
        mg.modality_gap_direction(U, U)


@given(st.integers(2, 30), st.integers(1, 8), st.integers(0, 2**31))
def test_caratheodory_reduction_keeps_the_point(n, d, seed):
    """Caratheodory: the reduced weights are >= 0, have at most rank <= d nonzeros, and give the same combination."""
    rng = np.random.default_rng(seed)
    P = rng.standard_normal((n, d))
    w = rng.uniform(0.1, 1.0, n)
    w2 = mg.caratheodory_reduce(P, w.copy())
    assert np.all(w2 >= 0) and np.count_nonzero(w2) <= min(d, n)
    assert np.allclose(w2 @ P, w @ P, atol=1e-9)


def _best_sign_margin(n, seed):
    """max over configurations in d = 2 of min(min_i s_ii, -max_{i!=j} s_ij), by Nelder-Mead over angles."""
    rng = np.random.default_rng(seed)

    def neg_score(ang):
        U = np.stack([np.cos(ang[:n]), np.sin(ang[:n])], 1)
        V = np.stack([np.cos(ang[n:]), np.sin(ang[n:])], 1)
        S = U @ V.T
        off = S - 3 * np.eye(n)
        return -min(np.diag(S).min(), -off.max())

    best = -np.inf
    for _ in range(6):
        res = minimize(neg_score, rng.uniform(0, 2 * np.pi, 2 * n), method="Nelder-Mead",
                       options={"maxiter": 4000, "xatol": 1e-10, "fatol": 1e-12})
        best = max(best, -res.fun)
    return best


@pytest.mark.parametrize("n", [4, 5, 7])
def test_prop5_no_sign_condition_in_the_plane(n):
    """Prop. 5 (C9): for d = 2 and N >= 4 no configuration satisfies the sign condition: an optimizer maximizing
    min(min s_ii, -max s_ij) over all planar configurations stays <= 0."""
    assert _best_sign_margin(n, n) <= 1e-9


def test_prop5_search_can_find_the_condition_when_it_holds():
    """The same search finds the sign condition at N = 3 (three directions 120 deg apart), so the test above can fail."""
    assert _best_sign_margin(3, 0) > 0.4


@given(st.integers(2, 40), st.integers(1, 6), st.floats(0.1, 1.0), st.floats(0.0, 0.5), st.integers(0, 2**31))
def test_C13_xi_is_zero_iff_differences_are_equal(n, d, delta, noise, seed):
    """C13 (App. E): xi = (1/N) sum |x_i|^2 - |mean x|^2 with x_i = U_i - V_i; xi = 0 iff all U_i - V_i are equal."""
    rng = np.random.default_rng(seed)
    X = random_unit(rng, n, d)
    c = np.sqrt(1 - delta**2)
    U = np.hstack([delta * X, np.full((n, 1), c)])
    V = np.hstack([delta * X, np.full((n, 1), -c)])
    assert cs.xi_statistic(U, V) == pytest.approx(0, abs=1e-14)
    if noise > 0:
        V2 = V + noise * rng.standard_normal(V.shape)
        V2 /= np.linalg.norm(V2, axis=1, keepdims=True)
        D = U - V2
        xi = cs.xi_statistic(U, V2)
        assert xi == pytest.approx(np.mean(np.sum(D**2, 1)) - np.sum(D.mean(0) ** 2), abs=1e-12)
        assert (xi > 1e-20) == (not np.allclose(D, D[0], atol=1e-10, rtol=0))


# A configuration (found by a search over d = 3, N = 5) that meets the sign condition with small margins
# (min s_ii = 0.005, max s_ij = -0.005): the construction's support has 2 points and h separates only
# 3 = N - d + 1 of the 5 V's, so the count is not trivially N.
TIGHT_U = np.array([[-0.35, -0.1189, -0.9292], [0.3851, -0.2867, 0.8772], [-0.4912, -0.0051, -0.871],
                    [-0.4243, 0.0547, -0.9039], [-0.5504, -0.1993, -0.8107]])
TIGHT_V = np.array([[0.9063, -0.0306, -0.4216], [0.1607, -0.1559, 0.9746], [-0.7892, 0.4329, 0.4356],
                    [-0.083, 0.9932, 0.0811], [-0.8171, 0.3415, 0.4645]])


def test_C9_guarantee_close_to_tight():
    """C9 (Thm 3.6) on a configuration where the theorem's N - d is nearly attained: 3 of 5 V's separated
    (N - d = 2), the two support V's on the non-negative side, the count exactly that of V @ h < 0."""
    U = TIGHT_U / np.linalg.norm(TIGHT_U, axis=1, keepdims=True)
    V = TIGHT_V / np.linalg.norm(TIGHT_V, axis=1, keepdims=True)
    assert mg.satisfies_sign_condition(U, V)
    r = mg.modality_gap_direction(U, V)
    check_direction(U, V, r)
    assert r.guaranteed == 2 and r.n_separated == 3 and len(r.support) == 2
    assert np.all(V[r.support] @ r.h >= 0)


@given(sign_condition_configs())
@settings(max_examples=8)
def test_C9_caratheodory_step_acts_inside_the_construction(pair):
    """C9's Caratheodory step (Thm 3.6, step 3) on a conic weight vector with full support: the LP's weights
    replaced by uniform ones (h = mean U, valid when <mean U, U_i> > 0), the direction must still come out
    with at most d support points and N - d separated V's, so the reduction really ran."""
    U, V = pair
    n, d = U.shape
    assume(n >= d + 2 and mg.satisfies_sign_condition(U, V) and np.all(U @ U.mean(0) > 0))
    original = mg._conic_weights
    try:
        mg._conic_weights = lambda U_: (np.full(len(U_), 1.0 / len(U_)), float(np.min(U_ @ U_.mean(0))))
        r = mg.modality_gap_direction(U, V)
    finally:
        mg._conic_weights = original
    check_direction(U, V, r)
    assert len(r.support) <= d < n
    assert r.n_separated >= n - d


def test_sign_condition_needs_both_halves_strictly():
    """C9's hypothesis is two strict conditions (s_ii > 0 for all i, s_ij < 0 for all i != j);
    configurations meeting only one of them, or one with equality, do not satisfy it."""
    W = regular_simplex(3)  # s_ii = 1 > 0 and s_ij = -1/2 < 0: both hold
    assert mg.satisfies_sign_condition(W, W)
    Vn = np.tile(-np.ones(3) / np.sqrt(3), (3, 1))  # only the negatives: every s_ij = s_ii = -1/sqrt 3
    assert cs.constellation_statistics(np.eye(3), Vn).max_negative < 0
    assert not mg.satisfies_sign_condition(np.eye(3), Vn)
    Up = np.array([[1.0, 0.0], [np.cos(0.3), np.sin(0.3)], [np.cos(0.6), np.sin(0.6)]])
    assert not mg.satisfies_sign_condition(Up, Up)  # only the positives: s_ii = 1 but s_ij > 0
    assert not mg.satisfies_sign_condition(np.eye(3), np.eye(3))  # s_ij = 0: not strictly negative
    V0 = np.array([[0.0, -1.0, -1.0], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]])
    V0 /= np.linalg.norm(V0, axis=1, keepdims=True)  # with U = I: s_00 = 0 exactly, every s_ij < 0
    S = V0.T
    assert S[0, 0] == 0 and np.all(S[~np.eye(3, dtype=bool)] < 0) and np.all(np.diag(S)[1:] > 0)
    assert not mg.satisfies_sign_condition(np.eye(3), V0)
    V0[0] = np.array([0.1, -1.0, -1.0]) / np.sqrt(2.01)  # s_00 = 0.1 / sqrt 2.01 > 0: now both hold
    assert mg.satisfies_sign_condition(np.eye(3), V0)
