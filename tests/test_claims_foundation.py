"""Property tests of the claims C1, C2, C3 of theory.md section 4 (each test names its claim)."""

import numpy as np
from hypothesis import given, strategies as st
from scipy.optimize import minimize, minimize_scalar

import constellations as cs
from constellations import reference as ref
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


@given(non_constellations(max_n=60), st.floats(0, 1e4), st.floats(-1e4, 1e4))
def test_C2_no_zero_loss_without_separation(pair, t, b):
    """C2 (Thm 3.1): m* <= 0 implies L_sig(sum) >= log 2 for every t >= 0 and every b."""
    U, V = pair
    m, _ = cs.margin_and_relative_bias(U, V)
    assert m <= 0
    assert float(cs.sigmoid_loss(U, V, t, b)) >= np.log(2) * (1 - 1e-12)


@given(non_constellations(max_n=30))
def test_C2_even_an_optimizer_cannot_go_below_log_2(pair):
    """C2 (Thm 3.1): minimizing L_sig over (log t, b) from several starts never beats log 2."""
    U, V = pair
    best = np.inf
    for log_t, b in [(0.0, 0.0), (np.log(10), -10.0), (np.log(1000), 0.0), (np.log(1e4), -5e3)]:
        res = minimize(lambda p: ref.sigmoid_loss(U, V, np.exp(p[0]), p[1]), x0=[log_t, b], method="Nelder-Mead",
                       options={"maxiter": 400, "xatol": 1e-8, "fatol": 1e-12})
        best = min(best, res.fun)
    assert best >= np.log(2) * (1 - 1e-12)


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
    """C2 at the boundary m* = 0 (a duplicated point): the loss stays >= log 2 even at huge t."""
    X = np.eye(3)
    U = np.vstack([X, X[:1]])
    assert cs.margin_and_relative_bias(U, U)[0] == 0
    for t in (1.0, 1e2, 1e4):
        assert float(cs.sigmoid_loss(U, U, t, -t * 0.5)) >= np.log(2)
