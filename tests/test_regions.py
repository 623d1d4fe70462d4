"""Tests of constellations.regions: the impossible region (C7) and the size exponents (C6, C8)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from constellations import regions
from strategies import embedding_pairs

import constellations as cs


def c7_mean_inequality_holds(U, V):
    """C7's key step: (1/N^2) sum_{i!=j} s_ij >= ((N-2)/(2N^2)) sum_i s_ii - 1/2."""
    S = U @ V.T
    n = len(U)
    off = S.sum() - np.trace(S)
    return off / n**2 >= (n - 2) / (2 * n**2) * np.trace(S) - 0.5 - 1e-12


@given(embedding_pairs(max_n=60))
def test_C7_every_configuration_is_outside_the_impossible_region(pair):
    """C7 (Thm 3.4): for any (U, V), with m, b_rel from the MEANS (mean s_ii >= m + b_rel,
    mean_{i!=j} s_ij <= b_rel - m), m + b_rel <= 1 and (3 - 4/N) m <= 1 + b_rel; in particular at (m*, b*_rel)."""
    U, V = pair
    n = len(U)
    assert c7_mean_inequality_holds(U, V)
    S = U @ V.T
    mean_pos = np.trace(S) / n
    mean_neg = (S.sum() - np.trace(S)) / (n * (n - 1))
    m_mean, b_mean = (mean_pos - mean_neg) / 2, (mean_pos + mean_neg) / 2
    tol = 1e-12
    # m + b_rel <= 1 holds trivially for the means (m_mean + b_mean = mean s_ii <= 1): the content of C7
    # at this point is the second inequality, which rests on the Cauchy-Schwarz step above.
    assert m_mean + b_mean == pytest.approx(mean_pos, abs=1e-15)
    assert (3 - 4 / n) * m_mean <= 1 + b_mean + tol
    m, b = cs.margin_and_relative_bias(U, V)
    if m >= 0:
        assert regions.impossible_region(min(m, 1.0), b, n).feasible


@pytest.mark.parametrize("n", [2, 3, 5, 10, 50])
def test_C7_is_tight_at_the_simplex(n):
    """C7: the regular simplex of N points reaches m = 1/(2 - 2/N), b_rel = 1 - m: both inequalities are equalities."""
    from constellations.constructions import regular_simplex

    X = regular_simplex(n)
    m, b = cs.margin_and_relative_bias(X, X)
    assert m == pytest.approx(1 / (2 - 2 / n), abs=1e-12)
    assert m + b == pytest.approx(1, abs=1e-12)
    assert (3 - 4 / n) * m == pytest.approx(1 + b, abs=1e-12)
    assert regions.impossible_region(m, b, n).feasible
    if n > 2:  # at N = 2 the simplex is antipodal, m = 1, the end of the margin's domain
        assert not regions.impossible_region(m + 1e-6, b, n).feasible


@given(st.integers(2, 200), st.floats(0.0, 0.2))
def test_C7_max_margin_is_where_the_two_inequalities_meet(n, b_rel):
    """C7 (Thm 3.4): max_margin = 1 / (2 - 2/N) (1/2 as N -> infinity) is the largest m C7 allows at any b_rel;
    it is attained on the code line b_rel = 1 - m where (3 - 4/N) m = 1 + b_rel, so m just below it is
    feasible there and m just above it is not, at any b_rel."""
    check = regions.impossible_region(0.1, 0.0, n)
    assert check.max_margin == pytest.approx(1 / (2 - 2 / n), rel=1e-15)
    assert regions.impossible_region(0.1, 0.0).max_margin == 0.5
    top = check.max_margin
    if top < 1:
        assert regions.impossible_region(top * (1 - 1e-9), 1 - top, n).feasible
        assert not regions.impossible_region(min(top * (1 + 1e-6), 1.0), b_rel, n).feasible
    assert regions.impossible_region(0.5 * (1 - 1e-9), 0.5).feasible
    assert not regions.impossible_region(0.5 + 1e-6, 0.5).feasible


def test_C7_boundary_is_allowed_and_just_beyond_is_not():
    """C7 (Thm 3.4): both inequalities are non-strict (the simplex attains them), with atol = 0 on exact
    binary values: m + b_rel = 1 exactly and (3 - 4/N) m = 1 + b_rel exactly are feasible; a few ulps more is not."""
    assert regions.impossible_region(0.25, 0.75, atol=0.0).feasible
    assert not regions.impossible_region(0.25, 0.75 + 2.0**-50, atol=0.0).feasible
    assert regions.impossible_region(0.25, -0.5, 4, atol=0.0).feasible      # N = 4: 2 m = 0.5 = 1 + b_rel
    assert not regions.impossible_region(0.25, -0.5 - 2.0**-50, 4, atol=0.0).feasible
    assert not regions.impossible_region(0.25, -0.5, 5, atol=0.0).feasible  # N = 5: 2.2 m = 0.55 > 0.5
    assert regions.impossible_region(0.25, -0.25, atol=0.0).feasible         # N -> infinity: 3 m = 0.75 = 1 + b_rel
    assert not regions.impossible_region(0.25, -0.25 - 2.0**-50, atol=0.0).feasible


def test_C7_names_the_violated_inequality():
    r = regions.impossible_region(0.3, 0.8)
    assert not r.feasible and "m + b_rel <= 1" in r.violated[0]
    r = regions.impossible_region(0.45, 0.2, 100)
    assert not r.feasible and "(3 - 4/N) m" in r.violated[0]
    with pytest.raises(ValueError, match="C7"):
        regions.require_feasible(0.45, 0.2, 100)
    with pytest.raises(ValueError, match="relative bias"):
        regions.impossible_region(0.1, 1.5)


@given(st.floats(1e-3, 0.49), st.floats(-0.95, 0.99))
def test_C6_below_C8(m, b):
    """C6 <= C8 (Thm 3.3 vs Thm 3.5): the achievable exponent never exceeds the upper bound, inside both ranges."""
    if not (m + b < 1 and 3 * m < 1 + b):
        with pytest.raises(ValueError, match="C6"):
            regions.asymptotic_lower_size_exponent(m, b)
        return
    lo = regions.asymptotic_lower_size_exponent(m, b)
    hi = regions.asymptotic_upper_size_exponent(m, b)
    assert 0 < lo <= hi + 1e-12


def test_exponents_on_the_code_line_match_shannon_wyner():
    """On m + b_rel = 1 (codes with alpha = 1 - 2m), C6 is -(1/2) ln(1 - alpha^2) and C8 is (1/2) ln(1/(2m))."""
    m = 0.2
    alpha = 1 - 2 * m
    assert regions.c6_code_inner_product(m - 1e-15, 1 - m) == pytest.approx(alpha, abs=1e-12)
    assert regions.asymptotic_upper_size_exponent(m, 1 - m) == pytest.approx(0.5 * np.log(1 / (2 * m)))
    est = regions.asymptotic_dimension_estimates(10**6, 0.1, 0.5)
    assert est["asymptotic"] and est["necessary_C8"] <= est["sufficient_C6"]
