"""Property tests of the claims C1, C2, C3 of theory.md section 4 (each test names its claim)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.optimize import minimize, minimize_scalar

import constellations as cs
from constellations import reference as ref
from constellations.constructions import regular_simplex
from strategies import constellations, non_constellations


def rounding(t, value):
    """Float64 allowance on a log-loss: each logit t s + b carries an error of about 1e-15 t."""
    return 1e-14 * t + 1e-9 * max(1.0, abs(value))


def log_softplus(x):
    return float(ref.log_softplus(x))


@given(constellations(max_n=60), st.floats(0.5, 1e5))
def test_C1_loss_along_b_star_is_within_the_closed_form_bound(pair, t):
    """C1 (Thm 3.2): m* > 0 and b = -t b*_rel give L_sig(sum) <= N^2 log(1 + exp(-t m*)), in the log domain."""
    U, V = pair
    m, b_rel = cs.margin_and_relative_bias(U, V)
    assert m > 0
    n = len(U)
    log_loss = float(cs.log_sigmoid_loss(U, V, t, -t * b_rel))
    bound = 2 * np.log(n) + log_softplus(-t * m)
    assert log_loss <= bound + rounding(t, bound)


@given(constellations(max_n=40))
def test_C1_loss_goes_to_zero_and_rate_is_the_margin(pair):
    """C1 (Thm 3.2): inf_b L(t, b) = exp(-t m* + o(t)). For every b, the worst positive and worst
    negative terms give L >= log(1 + e^{-t m*}); at b = -t b*_rel, L <= N^2 log(1 + e^{-t m*}).
    So -log(inf_b L)/t lies in [m* - 2 ln N / t, m* + O(e^{-t m*})/t]: checked at growing t, with the
    infimum over b found numerically."""
    U, V = pair
    m, b_rel = cs.margin_and_relative_bias(U, V)
    n = len(U)
    errors = []
    for t in (10.0 / m, 100.0 / m, 1000.0 / m):
        res = minimize_scalar(lambda b: ref.log_sigmoid_loss(U, V, t, b), bracket=(-t * b_rel - 1, -t * b_rel + 1))
        log_inf = min(res.fun, ref.log_sigmoid_loss(U, V, t, -t * b_rel))
        lower = log_softplus(-t * m)
        tol = rounding(t, lower)
        assert lower - tol <= log_inf <= 2 * np.log(n) + lower + tol
        rate = -log_inf / t
        errors.append(abs(rate - m))
        assert abs(rate - m) <= (2 * np.log(n) + 1 + tol) / t
    assert errors[-1] <= errors[0] + 1e-12
    # and the loss itself goes to zero along b = -t b*_rel
    assert ref.sigmoid_loss(U, V, 50.0 / m, -50.0 / m * b_rel) < n * n * np.exp(-50.0) * 1.01


TWO_LOG_2 = 2 * np.log(2)


def near_boundary(n, eta):
    """U = V = the regular simplex of n points, except V_0 moved along the geodesic from U_0 to U_1 to a
    fraction 1/2 + eta of the way: one violating pair (s_00 < s_10 by about eta), every other pair with
    a margin near 0.4, so m* is slightly below 0 and inf over (t, b) of the loss is close to 2 log 2."""
    X = regular_simplex(n)
    theta = np.arccos(np.clip(X[0] @ X[1], -1, 1))
    w = X[1] - (X[0] @ X[1]) * X[0]
    w /= np.linalg.norm(w)
    V = X.copy()
    phi = (0.5 + eta) * theta
    V[0] = np.cos(phi) * X[0] + np.sin(phi) * w
    return X, V


@given(non_constellations(max_n=60), st.floats(-3, 5), st.floats(-0.05, 0.05), st.booleans(), st.floats(-1e4, 1e4))
def test_C2_no_zero_loss_without_separation(pair, log10_t, shift, at_threshold, b_free):
    """C2 (Thm 3.1), exact form: m* <= 0 implies L_sig(sum) >= 2 log 2 for every t > 0 and every b (the worst
    positive pair and the worst negative pair are two distinct terms, one with a non-positive margin; the
    sum softplus(-x) + softplus(x + t(q - p)) is at least 2 log 2). t is log-uniform in [1e-3, 1e5] and b is
    either free or within 0.05 t of the best threshold -t b*_rel, where the bound is nearly attained."""
    U, V = pair
    m, b_rel = cs.margin_and_relative_bias(U, V)
    assert m <= 0
    t = 10.0**log10_t
    b = -t * (b_rel + shift) if at_threshold else b_free
    assert float(cs.sigmoid_loss(U, V, t, b)) >= TWO_LOG_2 * (1 - 1e-12)


@given(st.integers(3, 8), st.floats(1e-9, 1e-3), st.floats(1.0, 4.0))
def test_C2_near_the_boundary_the_bound_is_tight(n, eta, log10_t):
    """C2 (Thm 3.1) at its hard case: m* slightly below 0, t large and b = -t b*_rel. The loss stays >= 2 log 2
    and, where t m* is small but t times every other margin is large, comes within 1e-3 of it (so the
    test would see a loss that is off by more than that)."""
    U, V = near_boundary(n, eta)
    m, b_rel = cs.margin_and_relative_bias(U, V)
    assert -2 * eta <= m < 0
    t = 10.0**log10_t
    loss = float(cs.sigmoid_loss(U, V, t, -t * b_rel))
    assert loss >= TWO_LOG_2 * (1 - 1e-12)
    assert loss == pytest.approx(ref.sigmoid_loss(U, V, t, -t * b_rel), rel=1e-10)
    if t * abs(m) < 1e-3 and t >= 200:
        assert loss <= TWO_LOG_2 + 2e-3


@given(non_constellations(max_n=30))
def test_C2_even_an_optimizer_cannot_go_below_2_log_2(pair):
    """C2 (Thm 3.1): minimizing L_sig over (log t, b) from several starts never beats 2 log 2."""
    U, V = pair
    best = np.inf
    for log_t, b in [(0.0, 0.0), (np.log(10), -10.0), (np.log(1000), 0.0), (np.log(1e4), -5e3)]:
        res = minimize(lambda p: ref.sigmoid_loss(U, V, np.exp(p[0]), p[1]), x0=[log_t, b], method="Nelder-Mead",
                       options={"maxiter": 400, "xatol": 1e-8, "fatol": 1e-12})
        best = min(best, res.fun)
    assert best >= TWO_LOG_2 * (1 - 1e-12)


def test_C2_optimizer_reaches_the_bound_near_the_boundary():
    """C2 (Thm 3.1): on a configuration with m* = -1e-7 the optimizer over (log t, b) gets within 1e-3 of
    2 log 2 but never below it: the bound is the infimum there, not a loose floor."""
    U, V = near_boundary(4, 1e-7)
    m, b_rel = cs.margin_and_relative_bias(U, V)
    assert m < 0
    t0 = 300.0
    res = minimize(lambda p: ref.sigmoid_loss(U, V, np.exp(p[0]), -np.exp(p[0]) * p[1]), x0=[np.log(t0), b_rel + 0.01],
                   method="Nelder-Mead", options={"maxiter": 600, "xatol": 1e-10, "fatol": 1e-14})
    assert TWO_LOG_2 * (1 - 1e-12) <= res.fun <= TWO_LOG_2 + 1e-3


@given(constellations(max_n=80))
def test_C3_positive_margin_gives_unique_correct_retrieval(pair):
    """C3 (Cor. 1): m* > 0 implies V_i is the unique nearest neighbour of U_i (and symmetrically),
    with every retrieval gap at least 2 m*."""
    U, V = pair
    m, _ = cs.margin_and_relative_bias(U, V)
    r = cs.retrieval(U, V)
    assert r.all_correct and r.u_to_v_accuracy == 1.0 and r.v_to_u_accuracy == 1.0
    assert r.min_gap >= 2 * m - 1e-12
    S = U @ V.T
    assert np.array_equal(S.argmax(axis=1), np.arange(len(U))) and np.array_equal(S.argmax(axis=0), np.arange(len(U)))


def test_C2_boundary_m_star_zero_cannot_reach_zero():
    """C2 at the boundary m* = 0 (a duplicated point): the loss stays >= 2 log 2 even at huge t."""
    X = np.eye(3)
    U = np.vstack([X, X[:1]])
    assert cs.margin_and_relative_bias(U, U)[0] == 0
    for t in (1.0, 1e2, 1e4):
        assert float(cs.sigmoid_loss(U, U, t, -t * 0.5)) >= TWO_LOG_2 * (1 - 1e-12)
