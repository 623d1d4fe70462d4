"""Tests of constellations.codes: sizes and exact maximal inner products of every construction
(spherical_codes.md s.9.2), the Leech lattice, greedy codes, and the blocked max_inner_product."""

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import constellations as cs
from constellations import bounds, codes
from strategies import random_unit


def dense_max(C):
    G = C @ C.T
    np.fill_diagonal(G, -np.inf)
    return float(G.max())


def check_code(C, size, dim, s, *, atol=1e-14):
    """Shape, float64 unit rows, distinct points, and maximal inner product equal to the exact value s."""
    assert C.shape == (size, dim) and C.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, atol=1e-15)
    assert codes.max_inner_product(C) == pytest.approx(s, abs=atol)
    assert dense_max(C) == pytest.approx(s, abs=atol)


@pytest.mark.parametrize("n", range(1, 13))
def test_simplex_and_cross_polytope(n):
    """Regular simplex: n + 1 points, all inner products -1/n. Cross-polytope: 2n points, max 0 (-1 for n = 1)."""
    S = codes.simplex(n)
    check_code(S, n + 1, n, -1 / n)
    G = S @ S.T
    np.testing.assert_allclose(G[~np.eye(n + 1, dtype=bool)], -1 / n, atol=1e-14)
    check_code(codes.cross_polytope(n), 2 * n, n, 0.0 if n > 1 else -1.0)


@pytest.mark.parametrize("N", [2, 3, 5, 6, 7, 12])
def test_regular_polygon(N):
    """N-gon: max inner product cos(2 pi / N), and A(2, s) is exactly N there (exact_bound)."""
    check_code(codes.regular_polygon(N), N, 2, math.cos(2 * math.pi / N))
    assert bounds.exact_bound(2, math.cos(2 * math.pi / N)).value == pytest.approx(N)


def test_binary_codes():
    """s.9.2: hypercube 2^n at 1 - 2/n; Hamming [7,4,3] 16 points at 1/7; extended Hamming [8,4,4] 16 at 0;
    [15,11,3] 2048 at 3/5; [16,11,4] 2048 at 1/2; Nordstrom-Robinson 256 at 1/4; Golay 4096 at 1/3."""
    for n in (1, 2, 3, 6):
        check_code(codes.hypercube(n), 2**n, n, 1 - 2 / n)
    check_code(codes.hamming(3), 16, 7, 1 / 7)
    check_code(codes.extended_hamming(3), 16, 8, 0.0)
    check_code(codes.hamming(4), 2048, 15, 0.6)
    check_code(codes.extended_hamming(4), 2048, 16, 0.5)
    check_code(codes.nordstrom_robinson(), 256, 16, 0.25)
    check_code(codes.golay(), 4096, 24, 1 / 3)


def test_golay_and_hamming_codewords():
    """Golay weight enumerator 1, 759, 2576, 759, 1 (weights 0, 8, 12, 16, 24); Hamming minimum distance 3,
    extended Hamming 4, Nordstrom-Robinson 6 (nonlinear: checked over all pairs)."""
    weights = np.bincount(codes.golay_codewords().sum(axis=1), minlength=25)
    assert {w: c for w, c in enumerate(weights) if c} == {0: 1, 8: 759, 12: 2576, 16: 759, 24: 1}
    for words, d in [(codes.hamming_codewords(3), 3), (codes.extended_hamming_codewords(3), 4),
                     (codes.hamming_codewords(4), 3), (codes.nordstrom_robinson_codewords(), 6)]:
        W = words.astype(np.int64)
        dist = W.sum(1)[:, None] + W.sum(1)[None, :] - 2 * W @ W.T
        np.fill_diagonal(dist, 10**6)
        assert dist.min() == d
    assert len(np.unique(codes.nordstrom_robinson_codewords(), axis=0)) == 256


def test_root_systems():
    """D_n: 2n(n - 1) points at 1/2; E6, E7, E8: 72, 126, 240 at 1/2 (the kissing configurations of s.9.2);
    E8 inner products exactly {-1, -1/2, 0, 1/2}."""
    for n in (3, 4, 5, 9):
        check_code(codes.d_n_roots(n), 2 * n * (n - 1), n, 0.5)
    check_code(codes.e6(), 72, 6, 0.5)
    check_code(codes.e7(), 126, 7, 0.5)
    E = codes.e8()
    check_code(E, 240, 8, 0.5)
    G = E @ E.T
    np.fill_diagonal(G, np.nan)
    values = np.unique(np.round(G[~np.isnan(G)], 12))
    np.testing.assert_array_equal(values, [-1.0, -0.5, 0.0, 0.5])
    assert np.max(np.abs(G[~np.isnan(G)] - np.round(2 * G[~np.isnan(G)]) / 2)) < 1e-15


def test_polytopes():
    """Icosahedron (Tammes N = 12, s = 1/sqrt 5) and 600-cell (120 points, s = cos 36 deg = (1 + sqrt 5)/4)."""
    check_code(codes.icosahedron(), 12, 3, 1 / math.sqrt(5))
    check_code(codes.six_hundred_cell(), 120, 4, (1 + math.sqrt(5)) / 4)


def test_kissing_configurations_meet_the_table():
    """s.9.2: the root systems give the best known kissing lower bounds 12, 24, 40, 72, 126, 240 for n = 3..8."""
    sizes = [len(codes.d_n_roots(3)), len(codes.d_n_roots(4)), len(codes.d_n_roots(5)), len(codes.e6()),
             len(codes.e7()), len(codes.e8())]
    assert sizes == [12, 24, 40, 72, 126, 240]


@pytest.fixture(scope="module")
def leech():
    return codes.leech()


def test_leech_sampled(leech):
    """Leech minimal vectors: 196560 distinct unit rows; 200 random rows against all of them have inner
    products in {-1, -1/2, -1/4, 0, 1/4, 1/2} (max 1/2); the full check is test_leech_full (slow)."""
    assert leech.shape == (196560, 24) and leech.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(leech, axis=1), 1.0, atol=1e-15)
    scaled = np.rint(leech * math.sqrt(32)).astype(np.int64)
    np.testing.assert_allclose(scaled / math.sqrt(32), leech, atol=1e-15)  # integer coordinates, norm^2 32
    digits = (scaled + 4) * 9 ** np.arange(12)[None, :].repeat(2, axis=0).ravel()  # exact base-9 keys, two halves
    keys = digits[:, :12].sum(axis=1), digits[:, 12:].sum(axis=1)
    order = np.lexsort(keys)
    same = (np.diff(keys[0][order]) == 0) & (np.diff(keys[1][order]) == 0)
    assert not same.any()  # 196560 distinct vectors
    assert np.all(scaled.sum(axis=1) % 8 == (scaled[:, 0] % 2) * 4 % 8)  # Leech congruence: sum = 4 x_1 (mod 8)
    rows = np.random.default_rng(0).choice(len(leech), 200, replace=False)
    counts, largest, worst_rounding = np.zeros(9, dtype=np.int64), -np.inf, 0.0
    for chunk in np.array_split(rows, 8):  # 25 rows x 196560 at a time
        G = leech[chunk] @ leech.T
        G[np.arange(len(chunk)), chunk] = np.nan
        values = G[~np.isnan(G)]
        quarters = np.round(values * 4)
        counts += np.bincount((quarters + 4).astype(np.int64), minlength=9)
        largest = max(largest, float(values.max()))
        worst_rounding = max(worst_rounding, float(np.max(np.abs(values * 4 - quarters))))
    assert [q - 4 for q in np.flatnonzero(counts)] == [-4, -2, -1, 0, 1, 2] and worst_rounding < 1e-13
    # each vector has 1 antipode and 4600 neighbours at 1/2 (the Leech distance distribution)
    assert counts[0] == len(rows) and counts[6] == 4600 * len(rows)
    assert largest == pytest.approx(0.5, abs=1e-14)
    assert codes.max_inner_product(leech[rows]) <= 0.5 + 1e-14


@pytest.mark.slow
def test_leech_full(leech):
    """All 196560^2 / 2 pairs, in tiles: the maximal inner product of the Leech minimal vectors is exactly 1/2."""
    assert codes.max_inner_product(leech) == pytest.approx(0.5, abs=1e-14)


@given(st.integers(1, 12), st.floats(-0.5, 0.9), st.integers(0, 2**31 - 1))
@settings(max_examples=15)
def test_random_greedy_code(n, s, seed):
    """Greedy insertion: max inner product <= s, reproducible from the seed, and never more points than the
    best upper bound allows (definition of A(n, s))."""
    C = codes.random_greedy_code(n, s, seed=seed, max_points=400, max_failures=300)
    assert C.shape[1] == n and len(C) >= 1
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, atol=1e-14)
    if len(C) > 1:
        assert codes.max_inner_product(C) <= s + 1e-15
    assert len(C) <= bounds.best_upper_bound(n, s, use_lp=False).value
    np.testing.assert_array_equal(C, codes.random_greedy_code(n, s, seed=seed, max_points=400, max_failures=300))


@given(st.integers(2, 70), st.integers(1, 12), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_max_inner_product_matches_dense(N, n, tile, seed):
    """Tiles of any size (down to one row) give max_{i<j} <C_i, C_j> of the dense Gram matrix."""
    C = random_unit(np.random.default_rng(seed), N, n)
    if N > 3 and seed % 3 == 0:
        C[N - 1] = C[1]  # a duplicate pair: max exactly 1
    assert codes.max_inner_product(C, tile_rows=tile) == pytest.approx(dense_max(C), abs=1e-15)


def test_max_inner_product_memory_is_tiled():
    """N = 12000 (a full float64 Gram would be 1.15 GB): peak memory stays below 40 MB."""
    C = random_unit(np.random.default_rng(0), 12000, 8)
    tracemalloc.start()
    value = codes.max_inner_product(C)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40 * 2**20
    assert 0.9 < value <= 1.0


def test_codes_are_constellations():
    """theory.md s.3: a code with max inner product s gives U = V = C, a ((1-s)/2, (1+s)/2)-constellation."""
    for C in (codes.e8(), codes.golay(), codes.simplex(5)):
        s = codes.max_inner_product(C)
        m, b = cs.margin_and_relative_bias(C, C)
        assert m == pytest.approx((1 - s) / 2, abs=1e-14) and b == pytest.approx((1 + s) / 2, abs=1e-14)
        assert cs.is_constellation(C, C, (1 - s) / 2 - 1e-12, (1 + s) / 2)


@pytest.mark.parametrize("n", range(1, 25))
def test_catalog_entries_are_what_they_say(n):
    """Every construction listed for R^n builds a code of the listed size, dimension and maximal inner product."""
    for c in codes.constructions_in_dimension(n, N=7):
        if c.size > 5000:  # the Leech lattice has its own tests; hypercube(n > 12) is the same code family
            continue
        C = c.build()
        assert C.shape == (c.size, c.dimension) == (c.size, n)
        assert codes.max_inner_product(C) == pytest.approx(c.max_inner_product, abs=1e-14), c.name


def test_best_construction():
    """The smallest dimension whose constructions reach N points at max inner product <= s, and which one."""
    assert codes.best_construction(240, 0.5) == (8, "e8()")
    assert codes.best_construction(196560, 0.5) == (24, "leech()")
    assert codes.best_construction(100, 0.0) == (50, "cross_polytope(50)")
    assert codes.best_construction(6, -0.2) == (5, "simplex(5)")
    assert codes.best_construction(7, 0.7) == (2, "regular_polygon(7)")
    assert codes.best_construction(4096, 1 / 3) == (24, "golay()")
    assert codes.best_construction(7, -0.2) is None  # more than 1 - 1/s points: impossible
    assert codes.best_construction(10**6, 0.3, n_max=1000) is None


@pytest.mark.parametrize("call", [
    lambda: codes.simplex(0), lambda: codes.simplex(2.5), lambda: codes.simplex("3"), lambda: codes.simplex(True),
    lambda: codes.cross_polytope(-1), lambda: codes.d_n_roots(2), lambda: codes.hamming(5), lambda: codes.hamming(1),
    lambda: codes.hypercube(30), lambda: codes.regular_polygon(1), lambda: codes.binary_code_points([[0, 2]]),
    lambda: codes.random_greedy_code(3, 1.0), lambda: codes.random_greedy_code(3, float("nan")),
    lambda: codes.random_greedy_code(0, 0.5), lambda: codes.random_greedy_code(3, 0.5, seed=-1),
    lambda: codes.max_inner_product(np.ones((1, 3)) / math.sqrt(3)), lambda: codes.max_inner_product(np.ones(3)),
    lambda: codes.max_inner_product(np.ones((4, 3))), lambda: codes.max_inner_product(np.full((4, 3), np.nan)),
    lambda: codes.max_inner_product(codes.e8(), tile_rows=0), lambda: codes.best_construction(0, 0.5),
    lambda: codes.best_construction(5, 1.5),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()
