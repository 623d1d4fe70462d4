"""Tests of constellations.constructions: claims C3 (codes), C5, C6, C10, C11, C12, C14 and the max-margin search.

Every construction is verified by recomputing m*, b*_rel from its vectors, never by trusting its formula.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, strategies as st

import constellations as cs
from constellations import constructions as con
from constellations import loss, regions
from strategies import constellations, embedding_pairs, random_unit


def greedy_code(rng, n_points, dim, alpha, tries=20000):
    """Random greedy code: keep a random point if its inner products with the kept ones are <= alpha."""
    pts = []
    for _ in range(tries):
        x = random_unit(rng, 1, dim)[0]
        if all(x @ p <= alpha for p in pts):
            pts.append(x)
            if len(pts) == n_points:
                return np.array(pts)
    return None


@given(constellations(max_n=50))
def test_C3_code_construction(pair):
    """theory.md s.3 (C3): U = V = X with max inner product alpha is a ((1-alpha)/2, (1+alpha)/2)-constellation."""
    X, _ = pair
    c = con.from_code(X)
    G = X @ X.T
    np.fill_diagonal(G, -np.inf)
    alpha = G.max()
    assert c.margin == pytest.approx((1 - alpha) / 2, abs=1e-12) == pytest.approx(c.formula_margin, abs=1e-12)
    assert c.relative_bias == pytest.approx((1 + alpha) / 2, abs=1e-12)
    assert c.margin + c.relative_bias == pytest.approx(1.0, abs=1e-12)


@given(constellations(max_n=40, max_d=8), st.floats(0.05, 0.99), st.floats(0.0, 0.99))
def test_C5_lift(pair, delta, phi_frac):
    """C5 (Construction 1): the lift is a (delta^2 m, delta^2 b_rel + phi^2 - (1 - delta^2 - phi^2))-constellation,
    checked on the recomputed m*, b*_rel of the lifted vectors (d -> d + 2)."""
    U, V = pair
    m, b = cs.margin_and_relative_bias(U, V)
    phi = phi_frac * np.sqrt(1 - delta**2)
    c = con.lift(U, V, delta, phi)
    assert c.dimension == U.shape[1] + 2
    assert c.margin == pytest.approx(delta**2 * m, abs=1e-12)
    assert c.relative_bias == pytest.approx(delta**2 * b + phi**2 - (1 - delta**2 - phi**2), abs=1e-12)
    assert cs.is_constellation(c.U, c.V, max(c.formula_margin, 0.0), np.clip(c.formula_relative_bias, -1, 1), atol=1e-12) or m <= 0


@given(st.floats(0.01, 0.49), st.floats(-0.95, 0.97), st.integers(2, 24), st.integers(0, 2**31))
def test_C6_theorem_3_3_construction(m, b, n_points, seed):
    """C6 (Thm 3.3): an alpha-code, alpha = (1 + b_rel - 3m)/(1 + b_rel + m), lifted with delta^2 = (1 + b_rel + m)/2
    is an (m, b_rel)-constellation: verified on the recomputed inner products, for simplex, cross-polytope and
    greedy random codes; a code with too large an inner product is refused."""
    if not (m + b < 1 and 3 * m < 1 + b):
        with pytest.raises(ValueError):
            con.theorem_3_3(np.eye(3), m, b)
        return
    alpha = regions.c6_code_inner_product(m, b)
    rng = np.random.default_rng(seed)
    codes = []
    if alpha >= -1 / (n_points - 1):
        codes.append(con.regular_simplex(n_points))
    if alpha >= 0:
        codes.append(np.vstack([np.eye(n_points), -np.eye(n_points)])[:n_points])
    if alpha > 0.3:
        g = greedy_code(rng, n_points, 6, alpha)
        if g is not None:
            codes.append(g)
    for X in codes:
        c = con.theorem_3_3(X, m, b)
        assert cs.is_constellation(c.U, c.V, m, b, atol=1e-12)
        assert c.margin >= m - 1e-12
        assert c.dimension == X.shape[1] + 1
    if alpha < 0.99:
        bad = np.array([[1.0, 0.0], [np.cos(0.01), np.sin(0.01)]])
        with pytest.raises(ValueError, match="alpha"):
            con.theorem_3_3(bad, m, b)


def test_C6_refuses_points_in_the_impossible_region():
    with pytest.raises(ValueError, match="C7"):
        con.theorem_3_3(np.eye(3), 0.4, 0.9)


@given(embedding_pairs(max_n=30), st.floats(0.05, 1.0), st.floats(0.01, 100), st.floats(-1, 1),
       st.sampled_from(["sum", "mean"]))
def test_C10_locked_modality_adapters_are_a_reparameterization(pair, delta, t, b_rel, reduction):
    """C10 (Observation 1): L_rb(A_locked(U), A_trainable(V); t, b_rel) = L_rb(U, V; delta^2 t, (b_rel + 1 - delta^2)/delta^2),
    an identity to 1e-10 in float64."""
    U, V = pair
    lhs = float(cs.relative_bias_loss(con.locked_adapter(U, delta), con.trainable_adapter(V, delta), t, b_rel, reduction=reduction))
    t2, b2 = con.adapter_equivalent_parameters(t, b_rel, delta)
    rhs = float(cs.relative_bias_loss(U, V, t2, b2, reduction=reduction))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@given(constellations(max_n=20, max_d=6), st.integers(2, 6), st.floats(0.1, 0.99))
def test_C11_k_modality_simplex(pair, k, delta):
    """C11 (Construction 2): every pair of modalities is an (m, b_rel)-constellation with m = delta^2 (1 - alpha)/2,
    b_rel = delta^2 (1 + alpha)/2 - (1 - delta^2)/(k - 1); and the k-modality loss at b_rel goes to 0 (C1 bound)
    for the complete and the star graph."""
    X, _ = pair
    mods, c = con.k_modality_simplex(X, k, delta)
    G = X @ X.T
    np.fill_diagonal(G, -np.inf)
    alpha = G.max()
    m = delta**2 * (1 - alpha) / 2
    b = delta**2 * (1 + alpha) / 2 - (1 - delta**2) / (k - 1)
    # the construction's own promise is the theorem's formula, and the vectors achieve it
    assert c.formula_margin == pytest.approx(m, abs=1e-12) and c.formula_relative_bias == pytest.approx(b, abs=1e-12)
    assert c.margin == pytest.approx(c.formula_margin, abs=1e-12)
    assert c.relative_bias == pytest.approx(c.formula_relative_bias, abs=1e-12)
    assert mods.shape == (k, len(X), X.shape[1] + k - 1)
    for a in range(k):
        for e in range(k):
            if a != e:
                ma, ba = cs.margin_and_relative_bias(mods[a], mods[e])
                assert ma == pytest.approx(m, abs=1e-12) and ba == pytest.approx(b, abs=1e-12)
    n = len(X)
    for graph in ("complete", "star"):
        n_edges = len(loss.synchronization_graph(k, graph))
        t = 60.0 / m
        val = float(cs.multimodal_sigmoid_loss(mods, t, b, graph=graph, parameterization="relative_bias"))
        # each logit carries a float64 rounding error of about 1e-15 t (t is ~1e9 for tiny margins)
        assert val <= n_edges * n * n * np.logaddexp(0, -t * m) * np.exp(1e-14 * t) * (1 + 1e-9)
        assert val < 1e-20


@given(constellations(max_n=30))
def test_C12_triplet_loss_vanishes_up_to_4m(pair):
    """C12 (Observation 4): an (m, b_rel)-constellation has zero triplet loss for alpha <= 4m. The exact threshold
    is 2 min_i (s_ii - max_{j != i} s_ij) (twice the smallest U->V retrieval gap, >= 4 m* by C3): zero up to it,
    positive just above it."""
    U, V = pair
    m, _ = cs.margin_and_relative_bias(U, V)
    assert float(cs.triplet_loss(U, V, 4 * m)) <= 1e-12
    assert float(cs.triplet_loss(U, V, 0.5 * 4 * m)) == 0.0
    threshold = 2 * cs.retrieval(U, V).u_to_v_gap.min()
    assert threshold >= 4 * m - 1e-12
    assert float(cs.triplet_loss(U, V, threshold)) <= 1e-12
    assert float(cs.triplet_loss(U, V, threshold + 1e-6)) > 0


@pytest.mark.parametrize("n", [3, 5, 12])
def test_C14_double_constant_family_values(n):
    """C14: the double-constant family's recomputed (m*, b*_rel) and loss match the closed form."""
    for delta in (0.0, 0.3, 0.8, 1.0):
        c = con.double_constant(n, delta)
        assert c.dimension == n
        assert c.margin == pytest.approx(c.formula_margin, abs=1e-12)
        assert c.relative_bias == pytest.approx(c.formula_relative_bias, abs=1e-12)
        assert float(cs.sigmoid_loss(c.U, c.V, 7.0, -2.0)) == pytest.approx(con.double_constant_loss(n, delta, 7.0, -2.0), rel=1e-12)


@pytest.mark.parametrize("n", [5, 10])
@pytest.mark.parametrize("b_rel", [-0.5, 0.0, 0.5])
def test_C14_antipodal_for_small_t_and_max_margin_member_for_large_t(n, b_rel):
    """C14: at fixed b_rel the family's optimum is antipodal (delta = 0) for small t and tends, as t grows, to its
    max-margin member delta^2 = min(1, (2 + 2 b_rel)/(3 - 1/(N-1))): the aligned simplex when b_rel >= (N-2)/(2N-2)."""
    assert con.lee_chang_sohn_optimum(n, 0.05, -0.05 * b_rel)[0] == 0.0
    q = min(1.0, (2 + 2 * b_rel) / (3 - 1 / (n - 1)))
    assert con.lee_chang_sohn_optimum(n, 2000.0, -2000.0 * b_rel)[0] ** 2 == pytest.approx(q, abs=2e-3)


@pytest.mark.parametrize("t,b", [(1.0, 0.0), (5.0, -2.0), (20.0, -10.0), (20.0, 0.0), (50.0, -25.0)])
def test_C14_gradient_descent_does_not_beat_the_family(t, b):
    """C14 (Lee-Chang-Sohn): for d >= N the optimum over all configurations lies in the double-constant family,
    so Adam from random starts (free unit vectors, d = N) never ends below the family's best loss."""
    n = 5
    best_delta, c = con.lee_chang_sohn_optimum(n, t, b)
    family = con.double_constant_loss(n, best_delta, t, b)
    opt = optax.adam(2e-2)
    f = lambda p: loss._sigmoid_loss_core(p[0], p[1], t, b, normalize=True)  # noqa: E731

    @jax.jit
    def train(p):
        def step(carry, _):
            p, s = carry
            g = jax.grad(f)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), None, length=3000)
        return f(p)

    rng = np.random.default_rng(0)
    for _ in range(3):
        p = (jnp.asarray(rng.standard_normal((n, n))), jnp.asarray(rng.standard_normal((n, n))))
        assert float(train(p)) >= family * (1 - 1e-7) - 1e-9


def test_construction_bad_input():
    with pytest.raises(ValueError, match="delta"):
        con.lift(np.eye(3), np.eye(3), 1.5)
    with pytest.raises(ValueError, match="delta\\^2 \\+ phi\\^2"):
        con.lift(np.eye(3), np.eye(3), 0.9, 0.9)
    with pytest.raises(ValueError, match="k"):
        con.k_modality_simplex(np.eye(3), 1, 0.5)
