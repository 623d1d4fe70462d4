"""Tests of constellations.geometry: definitions of theory.md section 3, blocked computation, gap statistics."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, strategies as st

import constellations as cs
from constellations import geometry
from strategies import constellations, embedding_pairs, random_unit


def dense_stats(U, V):
    S = U @ V.T
    pos = np.diag(S).copy()
    np.fill_diagonal(S, -np.inf)
    return pos.min(), S.max()


@given(embedding_pairs(max_n=80))
def test_margin_is_the_definition(pair):
    """theory.md s.3: m* = (min s_ii - max_{i!=j} s_ij)/2, b*_rel = (min s_ii + max s_ij)/2, vs a dense computation."""
    U, V = pair
    mn, mx = dense_stats(U, V)
    m, b = cs.margin_and_relative_bias(U, V)
    assert m == pytest.approx((mn - mx) / 2, abs=1e-14)
    assert b == pytest.approx((mn + mx) / 2, abs=1e-14)


@given(embedding_pairs(max_n=80), st.integers(1, 64))
def test_blocked_equals_dense_for_any_block_size(pair, rows):
    """Row blocks of any size (down to one row) give the same statistics as the dense matrix."""
    U, V = pair
    stats = geometry.constellation_statistics(U, V, block_bytes=8 * len(V) * rows)
    mn, mx = dense_stats(U, V)
    # equal up to float64 rounding (a one-row block is a gemv, the dense matrix a gemm)
    assert stats.min_positive == pytest.approx(mn, abs=1e-14) and stats.max_negative == pytest.approx(mx, abs=1e-14)
    i, j = stats.worst_negative
    assert i != j and U[i] @ V[j] == pytest.approx(mx, abs=1e-14)
    assert U[stats.worst_positive] @ V[stats.worst_positive] == pytest.approx(mn, abs=1e-14)


@given(embedding_pairs(max_n=60), st.floats(1e-9, 1e-3), st.floats(-1, 1))
def test_margin_and_relative_bias_are_exact(pair, eps, b_any):
    """(m*, b*_rel) is attained and nothing better is: the worst positive sits exactly at b*+m*, the
    worst negative at b*-m*, and any larger margin (at any b_rel) or shifted threshold fails."""
    U, V = pair
    st_ = geometry.constellation_statistics(U, V)
    m, b = st_.margin, st_.relative_bias
    assert st_.min_positive == pytest.approx(b + m, abs=1e-15)
    assert st_.max_negative == pytest.approx(b - m, abs=1e-15)
    if m >= 0 and abs(b) <= 1 - eps:
        assert cs.is_constellation(U, V, m, b)
        assert not cs.is_constellation(U, V, m, b + eps)
        assert not cs.is_constellation(U, V, m, b - eps)
    if 0 <= m + eps <= 1:
        assert not cs.is_constellation(U, V, m + eps, b_any)


@given(constellations())
def test_is_constellation_accepts_any_smaller_margin(pair):
    """A (m*, b*)-constellation is an (m, b)-constellation for every m <= m* and |b - b*| <= m* - m."""
    U, V = pair
    m, b = cs.margin_and_relative_bias(U, V)
    assert m > 0
    for frac in (0.0, 0.5, 0.99):
        mm = frac * m
        slack = (m - mm) * 0.9
        for bb in (b - slack, b, b + slack):
            if -1 <= bb <= 1:
                assert cs.is_constellation(U, V, mm, bb)


def test_orthonormal_simplex_and_antipodal_values():
    """Hand-computed values: orthonormal code (1/2, 1/2); regular simplex of N points (s = -1/(N-1))."""
    assert cs.margin_and_relative_bias(np.eye(4), np.eye(4)) == (0.5, 0.5)
    n = 5
    X = np.eye(n) - 1.0 / n
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    m, b = cs.margin_and_relative_bias(X, X)
    s = -1 / (n - 1)
    assert m == pytest.approx((1 - s) / 2, abs=1e-15) and b == pytest.approx((1 + s) / 2, abs=1e-15)
    m, b = cs.margin_and_relative_bias(X, -X)
    assert m < 0


def test_retrieval_counts_ties_as_wrong_and_matches_dense():
    rng = np.random.default_rng(0)
    U, V = random_unit(rng, 50, 3), random_unit(rng, 50, 3)
    r = cs.retrieval(U, V, block_bytes=8 * 50 * 7)
    S = U @ V.T
    assert r.u_to_v_accuracy == pytest.approx(np.mean(S.argmax(1) == np.arange(50)))
    assert r.v_to_u_accuracy == pytest.approx(np.mean(S.argmax(0) == np.arange(50)))
    X = np.eye(3)
    dup = np.vstack([X, X[:1]])
    r = cs.retrieval(dup, dup)
    assert r.u_to_v_gap[0] == 0 and r.u_to_v_accuracy == pytest.approx(2 / 4)


def test_retrieval_directions_are_not_interchangeable():
    """C3's two directions differ: U = (e1, e2, e3), V_3 tilted towards e1. Every U_i retrieves V_i
    (U -> V accuracy 1), but V_3's nearest U is U_1 (V -> U accuracy 2/3); the gaps of each direction are
    the row and column formulas s_ii - max_{j != i} s_ij and s_ii - max_{j != i} s_ji."""
    U = np.eye(3)
    V = np.eye(3)
    V[2] = np.array([2.0, 0.0, 1.0]) / np.sqrt(5)
    r = cs.retrieval(U, V)
    assert r.u_to_v_accuracy == 1.0 and r.v_to_u_accuracy == pytest.approx(2 / 3)
    assert np.allclose(r.u_to_v_gap, [1 - 2 / np.sqrt(5), 1.0, 1 / np.sqrt(5)])
    assert np.allclose(r.v_to_u_gap, [1.0, 1.0, 1 / np.sqrt(5) - 2 / np.sqrt(5)])
    assert not r.all_correct and r.min_gap == pytest.approx(-1 / np.sqrt(5))
    swapped = cs.retrieval(V, U)  # exchanging the modalities exchanges the directions
    assert np.allclose(swapped.u_to_v_gap, r.v_to_u_gap) and np.allclose(swapped.v_to_u_gap, r.u_to_v_gap)


@given(st.integers(2, 40), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31))
def test_retrieval_gaps_match_the_dense_row_and_column_formulas(n, d, block_rows, seed):
    """Blocked retrieval (row blocks of 1-5 rows) equals the dense formulas, direction by direction, on
    random pairs where the two directions' accuracies differ in general."""
    rng = np.random.default_rng(seed)
    U, V = random_unit(rng, n, d), random_unit(rng, n, d)
    r = cs.retrieval(U, V, block_bytes=8 * n * block_rows)
    S = U @ V.T
    off = S - np.diag(np.full(n, np.inf))
    assert np.allclose(r.u_to_v_gap, np.diag(S) - off.max(axis=1), atol=1e-14)
    assert np.allclose(r.v_to_u_gap, np.diag(S) - off.max(axis=0), atol=1e-14)
    if np.all(np.abs(np.diag(S) - off.max(axis=1)) > 1e-12):  # no near-ties: the accuracies are determined
        assert r.u_to_v_accuracy == np.mean(S.argmax(axis=1) == np.arange(n))
    if np.all(np.abs(np.diag(S) - off.max(axis=0)) > 1e-12):
        assert r.v_to_u_accuracy == np.mean(S.argmax(axis=0) == np.arange(n))


def test_all_correct_tie_rule_beyond_constellations():
    """all_correct is 'every gap > 0' (ties count as wrong), not m* > 0: (a) retrieval can be all correct
    while m* < 0; (b) an exact tie (a duplicated point, m* = 0) is not correct; (c) a duplicated random
    point ties exactly too (the gaps come from one product, so rounding does not break the tie)."""
    a = np.sqrt(0.19)
    U = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.9, a, 0.0]])
    V = np.array([[1.0, 0.0, 0.0], [0.0, np.sqrt(0.75), 0.5], [0.9, a, 0.0]])  # s_22 = 0.5 < s_13 = 0.9
    m, _ = cs.margin_and_relative_bias(U, V)
    r = cs.retrieval(U, V)
    assert m == pytest.approx(-0.2) and r.all_correct and r.min_gap == pytest.approx(0.1)
    X = np.eye(3)
    dup = np.vstack([X, X[:1]])
    r = cs.retrieval(dup, dup)
    assert r.min_gap == 0 and not r.all_correct
    assert cs.margin_and_relative_bias(dup, dup)[0] == 0
    rng = np.random.default_rng(7)
    Y = random_unit(rng, 9, 13)
    Y[5] = Y[2]
    r = cs.retrieval(Y, Y)
    assert r.u_to_v_gap[2] == 0 and r.v_to_u_gap[5] == 0 and not r.all_correct
    assert r.u_to_v_accuracy == pytest.approx(7 / 9) and r.v_to_u_accuracy == pytest.approx(7 / 9)
    assert abs(cs.margin_and_relative_bias(Y, Y)[0]) <= 1e-15  # rows are unit only to rounding


def test_blocked_margin_memory_is_linear_in_n():
    """N = 20,000 (a dense float64 Gram matrix would take 3.2 GB): peak traced memory stays < 250 MB."""
    rng = np.random.default_rng(1)
    n = 20_000
    U = random_unit(rng, n, 8)
    V = random_unit(rng, n, 8)
    tracemalloc.start()
    m, _ = cs.margin_and_relative_bias(U, V)
    r = cs.retrieval(U, V)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 250 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert m < 0 and 0 <= r.u_to_v_accuracy < 0.01


@pytest.mark.slow
def test_margin_at_n_100000():
    """N = 100,000 pairs: the blocked margin fits in memory and agrees with a planted constellation."""
    rng = np.random.default_rng(2)
    n, d = 100_000, 16
    X = random_unit(rng, n, d)
    m, b = cs.margin_and_relative_bias(X, X)
    assert 0 < m < 0.05 and b == pytest.approx(1 - m, abs=1e-12)


def test_xi_statistic():
    """C13 (App. E): xi is the variance of U_i - V_i; 0 for a pure shift, positive otherwise."""
    rng = np.random.default_rng(3)
    X = random_unit(rng, 30, 5)
    assert cs.xi_statistic(X, X) == pytest.approx(0, abs=1e-15)
    U = np.hstack([0.6 * X, np.full((30, 1), 0.8)])
    V = np.hstack([0.6 * X, np.full((30, 1), -0.8)])
    assert cs.xi_statistic(U, V) == pytest.approx(0, abs=1e-14)  # constant difference (0, ..., 1.6)
    D = U - V
    W = random_unit(rng, 30, 6)
    assert cs.xi_statistic(U, W) == pytest.approx(np.mean(np.sum((U - W - (U - W).mean(0)) ** 2, 1)), rel=1e-12)
    assert np.allclose(D, D[0])


def test_modality_gap_statistics_on_a_shifted_pair():
    """A double-constant pair: centroids 2c apart along the last axis, separable, means as computed densely."""
    rng = np.random.default_rng(4)
    X = random_unit(rng, 40, 6)
    c = 0.5
    U = np.hstack([np.sqrt(1 - c**2) * X, np.full((40, 1), c)])
    V = np.hstack([np.sqrt(1 - c**2) * X, np.full((40, 1), -c)])
    g = cs.modality_gap_statistics(U, V)
    S = U @ V.T
    assert g.centroid_distance == pytest.approx(2 * c, abs=1e-12)
    assert g.mean_positive == pytest.approx(np.mean(np.diag(S)), abs=1e-12)
    assert g.mean_negative == pytest.approx((S.sum() - np.trace(S)) / (40 * 39), abs=1e-12)
    assert g.linearly_separable and g.separability.certified and g.separability.n_misclassified == 0
    w, off = g.separability.normal, g.separability.offset
    assert np.all(U @ w > off) and np.all(V @ w < off)


@pytest.mark.parametrize("method", ["lp", "perceptron"])
def test_linear_separability_both_ways(method):
    """Separable: shifted clouds. Not separable (LP certifies it): the same points in both modalities."""
    rng = np.random.default_rng(5)
    X = random_unit(rng, 60, 4)
    U = np.hstack([0.8 * X, np.full((60, 1), 0.6)])
    V = np.hstack([0.8 * random_unit(rng, 30, 4), np.full((30, 1), -0.6)])
    s = cs.linear_separability(U, V, method=method)
    assert s.separable and s.certified and s.method == method
    s = cs.linear_separability(X, X, method=method, max_epochs=50)
    assert not s.separable
    assert s.certified == (method == "lp")


@pytest.mark.parametrize("gap, shared", [(1e-6, False), (1e-3, False), (1e-6, True), (1e-3, True)])
def test_linear_separability_at_the_boundary(gap, shared):
    """The hard case of the separability verdict: two clouds that nearly touch. Along a direction e the U
    rows sit at <e, x> >= gap / 2 and the V rows at <= -gap / 2 (both touching those planes), in 48
    dimensions with many repeated rows (a few distinct captions, as trained text towers give): separable,
    and the LP's hyperplane separates every point; with one U row also among the V rows: not separable. (The unbounded feasibility LP asks for
    margin 1, so |w| ~ 1 / gap here; the bounded max-margin form finishes at any gap.)"""
    rng = np.random.default_rng(7)
    d, e = 48, np.eye(48)[0]
    def side(n, distinct, sign):
        X = random_unit(rng, distinct, d)[rng.integers(0, distinct, n)]
        X[:, 0] = sign * (np.abs(X[:, 0]) + gap / 2)
        X[np.argmin(np.abs(X[:, 0])), 0] = sign * gap / 2        # a point exactly on its plane
        return X / np.linalg.norm(X, axis=1, keepdims=True)      # scaling keeps the sign of <e, x>
    U, V = side(600, 600, 1.0), side(500, 7, -1.0)
    if shared:                                                   # one point in both clouds: inseparable
        V[0] = U[np.argmin(U @ e)]
    s = cs.linear_separability(U, V, method="lp")
    assert s.certified and s.method == "lp" and s.separable == (not shared)
    if s.separable:
        assert np.all(U @ s.normal > s.offset) and np.all(V @ s.normal < s.offset)


def test_linear_separability_falls_back_to_the_perceptron_when_the_lp_fails(monkeypatch):
    """Should HiGHS stop without a verdict, the perceptron decides, with a warning (a long run is not lost to
    the LP's numerical trouble)."""
    import constellations.geometry as geometry

    class Failed:
        status, message = 4, "numerical difficulties"
    monkeypatch.setattr(geometry, "linprog", lambda *a, **k: Failed())
    rng = np.random.default_rng(5)
    U = np.hstack([0.8 * random_unit(rng, 60, 4), np.full((60, 1), 0.6)])
    V = np.hstack([0.8 * random_unit(rng, 30, 4), np.full((30, 1), -0.6)])
    with pytest.warns(RuntimeWarning, match="numerical difficulties"):
        s = cs.linear_separability(U, V, method="lp")
    assert s.separable and s.method == "perceptron"


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 9), st.integers(1, 9), st.booleans())
def test_inner_product_blocks_cover_the_matrix(n_u, n_v, rows, cols, upper):
    """The one blocked inner product: its tiles are U V^T's own entries, each once; upper=True (a Gram
    matrix) gives every entry on or right of the diagonal."""
    rng = np.random.default_rng(n_u * 100 + n_v)
    U = random_unit(rng, n_u, 3)
    V = U if upper else random_unit(rng, n_v, 3)
    full, seen = U @ V.T, np.zeros((len(U), len(V)), dtype=int)
    for i, j, S in geometry.iter_inner_product_blocks(U, V, rows=rows, cols=cols, upper=upper):
        np.testing.assert_allclose(S, full[i:i + S.shape[0], j:j + S.shape[1]], rtol=0, atol=1e-15)
        seen[i:i + S.shape[0], j:j + S.shape[1]] += 1
    want = np.triu(np.ones_like(seen)) if upper else np.ones_like(seen)
    assert np.all(seen[want == 1] == 1) and (not upper or np.all(seen[np.tril(np.ones_like(seen), -1) == 1] <= 1))
    blocks = list(geometry.iter_inner_product_blocks(U, V, block_bytes=8 * len(V) * 2))
    assert all(j == 0 and S.shape == (min(2, len(U) - i), len(V)) for i, j, S in blocks)
    assert geometry.rows_per_block(len(V), 8 * len(V) * 2) == 2
    with pytest.raises(ValueError, match="rows"):
        next(geometry.iter_inner_product_blocks(U, V, rows=0))


def test_long_blocked_pass_shows_progress(capsys):
    """Issue 17: a long blocked pass can show a bar (forced here; automatic on a terminal above
    PROGRESS_MIN_ENTRIES inner products); the tiles are the same with or without it."""
    from constellations.geometry import iter_inner_product_blocks

    rng = np.random.default_rng(0)
    U, V = rng.standard_normal((50, 3)), rng.standard_normal((40, 3))
    quiet = [S for _, _, S in iter_inner_product_blocks(U, V, block_bytes=8 * 40 * 7)]
    assert "inner products" not in capsys.readouterr().err
    shown = [S for _, _, S in iter_inner_product_blocks(U, V, block_bytes=8 * 40 * 7, progress=True)]
    assert "inner products 50 x 40" in capsys.readouterr().err
    assert len(quiet) == len(shown) == 8 and all(np.array_equal(a, b) for a, b in zip(quiet, shown))
