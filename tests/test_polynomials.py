"""Tests of constellations.polynomials: Gegenbauer and adjacent Jacobi polynomials (spherical_codes.md s.1)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import special

from constellations import polynomials as P

T = np.linspace(-1, 1, 201)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 24, 100])
def test_gegenbauer_normalized_bounded_and_matches_scipy_jacobi(n):
    """G_k^{(n)} = P_k^{(a,a)} / P_k^{(a,a)}(1) with a = (n-3)/2; G_k(1) = 1 and |G_k| <= 1 on [-1, 1]."""
    G = P.gegenbauer(n, 30, T)
    a = (n - 3) / 2
    ref = np.array([special.eval_jacobi(k, a, a, T) / special.binom(k + a, k) for k in range(31)])
    np.testing.assert_allclose(G, ref, atol=1e-12)
    np.testing.assert_allclose(G[:, -1], 1.0, rtol=0, atol=1e-14)
    assert np.abs(G).max() <= 1 + 1e-12


def test_gegenbauer_n2_is_chebyshev_and_n3_is_legendre():
    """n = 2 gives T_k (where scipy's lambda = 0 Gegenbauer route returns zeros), n = 3 the Legendre P_k."""
    assert special.eval_gegenbauer(3, 0.0, 0.3) == 0.0  # the pitfall the recursion avoids
    np.testing.assert_allclose(P.gegenbauer(2, 40, T), [special.eval_chebyt(k, T) for k in range(41)], atol=1e-12)
    np.testing.assert_allclose(P.gegenbauer(3, 40, T), [special.eval_legendre(k, T) for k in range(41)], atol=1e-12)


@pytest.mark.parametrize("n", [3, 7, 24])
def test_closed_form_g2(n):
    """G_2^{(n)} = (n t^2 - 1)/(n - 1)."""
    np.testing.assert_allclose(P.gegenbauer(n, 2, T)[2], (n * T**2 - 1) / (n - 1), atol=1e-15)


@pytest.mark.parametrize("n", [2, 3, 6, 24])
def test_orthogonality_by_gauss_jacobi_quadrature(n):
    """int G_j G_k dsigma = delta_jk / r_k (addition formula), by exact Gauss-Jacobi quadrature."""
    a = (n - 3) / 2
    x, w = special.roots_jacobi(40, a, a)
    w = w / w.sum()
    G = P.gegenbauer(n, 20, x)
    gram = (G * w) @ G.T
    r = np.array([P.harmonic_dimension(n, k) for k in range(21)], dtype=float)
    np.testing.assert_allclose(gram, np.diag(1 / r), atol=1e-13)


def test_stable_for_large_degree_and_dimension():
    """The recursion stays bounded by 1 at degree 2000 for n = 3 and n = 1000, where ratios of scipy values grow."""
    for n in (3, 1000):
        G = P.gegenbauer(n, 2000, np.linspace(-1, 1, 101))
        assert np.all(np.isfinite(G)) and np.abs(G).max() <= 1 + 1e-9
    # spot-check a high-dimension value against the jacobi ratio (still finite there)
    a = 500.5
    ref = special.eval_jacobi(30, a, a, 0.4) / special.binom(30 + a, 30)
    assert P.gegenbauer(1004, 30, 0.4)[30] == pytest.approx(ref, rel=1e-10)


@given(st.integers(2, 60), st.lists(st.floats(-5, 5), min_size=1, max_size=15), st.floats(-1, 1))
def test_series_and_derivative(n, coefficients, t):
    """gegenbauer_series = sum_k f_k G_k; its derivative matches a central difference."""
    c = np.array(coefficients)
    assert P.gegenbauer_series(n, c, t) == pytest.approx(c @ P.gegenbauer(n, len(c) - 1, t), abs=1e-12)
    h = 1e-6
    t = min(max(t, -1 + h), 1 - h)
    fd = (P.gegenbauer_series(n, c, t + h) - P.gegenbauer_series(n, c, t - h)) / (2 * h)
    assert P.gegenbauer_series_derivative(n, c, t) == pytest.approx(fd, abs=1e-5 * (1 + np.abs(c).sum() * len(c) ** 2))


@pytest.mark.parametrize("n", [2, 3, 5, 11, 24])
def test_exact_power_coefficients_are_the_recursion(n):
    """The rational power-basis G_k (used by the certificates) equal the float recursion."""
    rows = P.gegenbauer_power_coefficients(n, 25)
    assert all(isinstance(c, Fraction) for c in rows[25])
    x = np.linspace(-1, 1, 9)
    values = np.array([[sum(float(c) * xi**i for i, c in enumerate(row)) for xi in x] for row in rows])
    np.testing.assert_allclose(values, P.gegenbauer(n, 25, x), atol=1e-9)
    assert all(sum(row) == 1 for row in rows)  # G_k(1) = 1 exactly


@pytest.mark.parametrize("a,b", [(0.5, 0.5), (1.5, 0.5), (0.5, 1.5), (-0.5, -0.5), (0.5, -0.5), (11.5, 10.5),
                                 (0, 0), (1, 0)])
def test_jacobi_normalized_against_scipy(a, b):
    """p_k = P_k^{(a,b)} / binom(k + a, k) (scipy eval_jacobi), including a + b = 0 and -1 (the k = 1 special cases)."""
    p = P.jacobi_normalized(25, a, b, T)
    ref = np.array([special.eval_jacobi(k, a, b, T) / special.binom(k + a, k) for k in range(26)])
    np.testing.assert_allclose(p, ref, rtol=1e-11, atol=1e-12)


@given(st.integers(1, 80), st.floats(-0.5, 30), st.floats(-0.5, 30))
def test_largest_zero_against_golub_welsch(k, a, b):
    """jacobi_largest_zero (top eigenvalue of the Jacobi matrix) = max of scipy.special.roots_jacobi."""
    assert P.jacobi_largest_zero(k, a, b) == pytest.approx(special.roots_jacobi(k, a, b)[0].max(), abs=1e-12)


@given(st.integers(2, 200))
def test_adjacent_closed_forms(n):
    """spherical_codes.md s.1.2: P_1^{1,0} = (ns+1)/(n+1), P_2^{1,1} = ((n+2)s^2-1)/(n+1), t_1^{1,0} = -1/n,
    t_2^{1,0} = (sqrt(n+3)-1)/(n+2), t_2^{1,1} = 1/sqrt(n+2), t_0^{1,1} = -1."""
    s = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(P.adjacent_jacobi(n, 1, 1, 0, s)[1], (n * s + 1) / (n + 1), atol=1e-14)
    np.testing.assert_allclose(P.adjacent_jacobi(n, 1, 0, 1, s)[1], (n * s - 1) / (n - 1), atol=1e-14)
    np.testing.assert_allclose(P.adjacent_jacobi(n, 2, 0, 1, s)[2], ((n + 2) * s**2 - 2 * s - 1) / (n - 1), atol=1e-13)
    np.testing.assert_allclose(P.adjacent_jacobi(n, 2, 1, 0, s)[2], ((n + 2) * s**2 + 2 * s - 1) / (n + 3), atol=1e-13)
    np.testing.assert_allclose(P.adjacent_jacobi(n, 2, 1, 1, s)[2], ((n + 2) * s**2 - 1) / (n + 1), atol=1e-13)
    assert P.adjacent_jacobi_largest_zero(n, 1, 1, 0) == pytest.approx(-1 / n, abs=1e-14)
    assert P.adjacent_jacobi_largest_zero(n, 1, 1, 1) == pytest.approx(0.0, abs=1e-14)
    assert P.adjacent_jacobi_largest_zero(n, 2, 1, 0) == pytest.approx((math.sqrt(n + 3) - 1) / (n + 2), abs=1e-14)
    assert P.adjacent_jacobi_largest_zero(n, 2, 1, 1) == pytest.approx(1 / math.sqrt(n + 2), abs=1e-14)
    assert P.adjacent_jacobi_largest_zero(n, 0, 1, 1) == -1.0


@given(st.integers(2, 40), st.integers(2, 30))
def test_zeros_interlace(n, k):
    """t_{k-1}^{1,1} < t_k^{1,0} < t_k^{1,1} (the Levenshtein intervals are well ordered)."""
    assert (P.adjacent_jacobi_largest_zero(n, k - 1, 1, 1) < P.adjacent_jacobi_largest_zero(n, k, 1, 0)
            < P.adjacent_jacobi_largest_zero(n, k, 1, 1))


def test_log_value_rescales_without_underflow():
    """jacobi_log_value = the plain recursion where it is representable, and stays finite where it underflows."""
    m, log_scale = P.jacobi_log_value(600, 5000.5, 4999.5, 0.5)
    plain = P.jacobi_normalized(600, 5000.5, 4999.5, 0.5)[-1]
    assert m * math.exp(log_scale) == pytest.approx(plain, rel=1e-10)
    m, log_scale = P.jacobi_log_value(4000, 20000.5, 20000.5, 0.3)
    assert math.isfinite(m) and m != 0 and log_scale < -700  # far below the float64 range


def test_harmonic_dimension():
    """r_k = binom(n+k-1, k) - binom(n+k-3, k-2): 1, n, (n+2)(n-1)/2; n = 3 gives 2k + 1."""
    assert [P.harmonic_dimension(3, k) for k in range(6)] == [1, 3, 5, 7, 9, 11]
    assert P.harmonic_dimension(8, 2) == 10 * 7 // 2
    assert P.harmonic_dimension(2, 5) == 2


def test_gegenbauer_coefficients_roundtrip():
    """Projecting sum_k c_k G_k back onto the basis returns c (Gauss-Jacobi quadrature, exact for the degree)."""
    c = np.array([1.0, 0.5, 0.0, 2.0, 0.25])
    got = P.gegenbauer_coefficients(7, lambda t: P.gegenbauer_series(7, c, t), 4)
    np.testing.assert_allclose(got, c, atol=1e-12)


@pytest.mark.parametrize("call", [
    lambda: P.gegenbauer(1, 3, 0.0), lambda: P.gegenbauer(2.5, 3, 0.0), lambda: P.gegenbauer(3, -1, 0.0),
    lambda: P.gegenbauer(True, 3, 0.0), lambda: P.jacobi_normalized(3, -1.0, 0.0, 0.0),
    lambda: P.jacobi_normalized(3, float("nan"), 0.0, 0.0), lambda: P.adjacent_jacobi(4, 3, 2, 0, 0.0),
    lambda: P.adjacent_jacobi_largest_zero(4, 0, 1, 0), lambda: P.jacobi_largest_zero(0, 1.0, 1.0),
    lambda: P.gegenbauer_series(3, [], 0.0),
])
def test_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_sturm_test_is_exact():
    """is_negative_on decides the sign exactly: -(t - 3/10)^2 - eps < 0 on [-1, 1/2]; +eps makes it fail."""
    square = [Fraction(-9, 100), Fraction(3, 5), Fraction(-1)]
    assert P.is_negative_on([square[0] - Fraction(1, 10**30)] + square[1:], Fraction(-1), Fraction(1, 2))
    assert not P.is_negative_on([square[0] + Fraction(1, 10**30)] + square[1:], Fraction(-1), Fraction(1, 2))


def test_sturm_test_refuses_a_zero_at_either_end():
    """is_negative_on means strictly negative on the closed interval (the Delsarte LP certificate needs
    f - delta < 0 on [-1, s]): a zero exactly at a or at b is refused, a zero just outside is not."""
    assert not P.is_negative_on([Fraction(0), Fraction(-1)], Fraction(0), Fraction(1))   # -t: zero at a = 0
    assert not P.is_negative_on([Fraction(0), Fraction(1)], Fraction(-1), Fraction(0))   # t: zero at b = 0
    assert not P.is_negative_on([Fraction(-1), Fraction(-2), Fraction(-1)], Fraction(-1), Fraction(0))  # -(t+1)^2
    assert P.is_negative_on([Fraction(0), Fraction(-1)], Fraction(1, 10**20), Fraction(1))
    assert P.is_negative_on([Fraction(0), Fraction(1)], Fraction(-1), Fraction(-1, 10**20))


@pytest.mark.parametrize("a,b", [(Fraction(1, 2), Fraction(-1, 2)), (Fraction(3), Fraction(2)), (Fraction(5, 2), Fraction(7, 2))])
def test_exact_jacobi_coefficients_match_the_float_recursion(a, b):
    """The exact power-basis Jacobi polynomials evaluate (with polynomial_value) to jacobi_normalized."""
    rows = P.jacobi_power_coefficients(6, a, b)
    t = np.linspace(-1, 1, 7)
    exact = np.array([[float(P.polynomial_value(row, Fraction(x))) for x in t] for row in rows])
    np.testing.assert_allclose(exact, P.jacobi_normalized(6, float(a), float(b), t), rtol=1e-12, atol=1e-12)


def test_exact_series_and_product():
    """sum_k f_k G_k in the power basis matches gegenbauer_series; polynomial_product multiplies."""
    f = [Fraction(1), Fraction(1, 3), Fraction(0), Fraction(2, 7)]
    p = P.gegenbauer_series_power_coefficients(5, f)
    for x in (-0.75, 0.0, 0.5):
        assert float(P.polynomial_value(p, Fraction(x))) == pytest.approx(float(P.gegenbauer_series(5, [float(c) for c in f], x)), rel=1e-14)
    assert P.polynomial_product([Fraction(1), Fraction(1)], [Fraction(-1), Fraction(1)]) == [-1, 0, 1]
