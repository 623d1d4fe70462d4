"""Tests of constellations.bounds against the published values in shared/docs/spherical_codes.md.

Section numbers (s.N) refer to that document. Reference numbers are literature values (tables of the
notes), never outputs of this code.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from scipy import special

from constellations import bounds as B
from constellations import codes
from constellations.polynomials import adjacent_jacobi_largest_zero, gegenbauer, gegenbauer_series

# s.3.4: Levenshtein L(n, 1/2), exact rationals (sympy), and the degree m where it is not an endpoint case.
LEVENSHTEIN_KISSING = {
    3: (Fraction(93, 7), 5), 4: (Fraction(26), 5), 5: (Fraction(48), 5), 6: (Fraction(84), 6),
    7: (Fraction(1848, 13), 6), 8: (Fraction(240), None), 9: (Fraction(28050, 73), 7), 10: (Fraction(605), 7),
    11: (Fraction(21736, 23), 7), 12: (Fraction(5915, 4), 7), 13: (Fraction(25610, 11), 8),
    14: (Fraction(10640, 3), 8), 15: (Fraction(70992, 13), 8), 16: (Fraction(8364), 9),
    17: (Fraction(160854, 13), 9), 18: (Fraction(127395, 7), 9), 19: (Fraction(26771), 9), 20: (Fraction(39655), 9),
    21: (Fraction(1014783, 17), 9), 22: (Fraction(707135, 8), 10), 23: (Fraction(104141700, 799), 10),
    24: (Fraction(196560), None),
}
# s.4.4: LP at s = 1/2 (D = 40, M = 8000): grid optimum and certified value.
LP_KISSING = {
    3: (13.1582, 13.1582), 4: (25.5584, 25.5584), 5: (46.3376, 46.3376), 6: (82.6312, 82.6312),
    7: (140.1624, 140.1625), 8: (240.0000, 240.0000), 9: (380.0991, 380.0991), 10: (595.8288, 595.8291),
    11: (915.3895, 915.3900), 12: (1416.0900, 1416.0905), 13: (2233.6327, 2233.6339), 14: (3492.2148, 3492.2163),
    15: (5431.0246, 5431.0286), 16: (8313.7800, 8313.7889), 17: (12218.671, 12218.710), 18: (17877.059, 17877.072),
    19: (25900.774, 25900.795), 20: (37973.997, 37974.044), 21: (56851.654, 56851.984), 22: (86537.452, 86537.613),
    23: (128095.79, 128096.05), 24: (196559.53, 196560.85),
}
# s.10.1: best known kissing lower bounds (Vallentin 2025 table), n = 3..24, and exact values.
KISSING_LOWER = dict(zip(range(3, 25), [12, 24, 40, 72, 126, 240, 306, 510, 593, 840, 1154, 1932, 2564, 4320,
                                         5730, 7654, 11692, 19448, 29768, 49896, 93150, 196560]))
KISSING_EXACT = {1: 2, 2: 6, 3: 12, 4: 24, 8: 240, 24: 196560}
# s.3.2: sharp configurations, where Levenshtein's bound is attained: (n, s, N).
SHARP = [(3, 1 / math.sqrt(5), 12), (5, 1 / 5, 16), (6, 1 / 4, 27), (7, 1 / 3, 56), (8, 1 / 2, 240),
         (21, 1 / 7, 162), (22, 1 / 11, 100), (22, 1 / 6, 275), (22, 1 / 4, 891), (23, 1 / 5, 552),
         (23, 1 / 3, 4600), (24, 1 / 2, 196560)]
# s.10.2: Tammes problem on S^2: N points, optimal maximal inner product (rounded to the digits quoted).
TAMMES = [(4, -1 / 3), (6, 0.0), (7, 0.21013831273060308), (8, 0.26120387496374144), (9, 1 / 3),
          (10, 0.40439432521625076), (12, 1 / math.sqrt(5)), (13, 0.54263648683), (14, 0.56395030036),
          (24, 0.72307846833)]


def _is_dyadic(s):
    return Fraction(s).denominator & (Fraction(s).denominator - 1) == 0 and Fraction(s) == Fraction(str(s))


def cheap_upper_bounds(n, s):
    """Every finite-n upper bound except the LP (which is slower): only those that apply."""
    out = [B.levenshtein(n, s), B.volume_bound(n, s)] if n >= 2 else [B.volume_bound(n, s)]
    if n >= 2 and s > 0:
        out.append(B.rankin_cap_bound(n, s))
    exact = B.exact_bound(n, s)
    if exact is not None:
        out.append(exact)
    return out


# ------------------------------------------------------------------------------------ cap measure


def test_cap_measure_reference_values():
    """s.6.1: mu_3(1) = 0.229848847, mu_8(pi/3) = 0.0852353304, mu_24(pi/6) = 1.11810516e-8."""
    assert B.cap_measure(3, 1.0) == pytest.approx(0.229848847, rel=1e-8)
    assert B.cap_measure(8, math.pi / 3) == pytest.approx(0.0852353304, rel=1e-9)
    assert B.cap_measure(24, math.pi / 6) == pytest.approx(1.11810516e-8, rel=1e-8)


@given(st.floats(0, math.pi))
def test_cap_measure_closed_forms_low_dimension(theta):
    """mu_3(theta) = (1 - cos theta)/2 (Archimedes), mu_2(theta) = theta/pi, mu_1 = 1/2 (or 1 at theta = pi)."""
    assert B.cap_measure(3, theta) == pytest.approx((1 - math.cos(theta)) / 2, abs=1e-15)
    assert B.cap_measure(2, theta) == pytest.approx(theta / math.pi, abs=1e-14)
    assert B.cap_measure(1, theta) == (1.0 if theta == math.pi else 0.5)


@given(st.integers(2, 3000), st.floats(0, math.pi))
def test_cap_measure_symmetry(n, theta):
    """A cap and the closed complement of the opposite cap partition the sphere: mu(theta) + mu(pi - theta) = 1."""
    assert B.cap_measure(n, theta) + B.cap_measure(n, math.pi - theta) == pytest.approx(1.0, abs=1e-12)


def test_log_cap_measure_against_mpmath_values():
    """s.6.2 (mpmath, 50 digits): log mu_1000(pi/3), log mu_10000(pi/3), log mu_10000(0.3); no underflow."""
    assert special.betainc(4999.5, 4999.5, math.sin(math.pi / 6) ** 2) == 0.0  # the direct route underflows
    assert B.log_cap_measure(1000, math.pi / 3) == pytest.approx(-147.37958910642, rel=1e-12)
    assert B.log_cap_measure(10_000, math.pi / 3) == pytest.approx(-1443.0977575067, rel=1e-12)
    assert B.log_cap_measure(10_000, 0.3) == pytest.approx(-12194.440015740, rel=1e-12)
    assert B.log_cap_measure(3, 1e-200) == pytest.approx(2 * math.log(0.5e-200), rel=1e-12)


@given(st.integers(2, 400), st.floats(1e-3, math.pi - 1e-3))
def test_log_cap_measure_is_log_of_cap_measure(n, theta):
    """Where mu_n(theta) is representable, log_cap_measure = log(cap_measure) (hyp2f1 identity = betainc)."""
    mu = B.cap_measure(n, theta)
    assume(mu > 1e-300)
    assert B.log_cap_measure(n, theta) == pytest.approx(math.log(mu), rel=1e-11, abs=1e-13)


@given(st.integers(2, 20000), st.floats(0.01, 1.5))
def test_log_cap_measure_close_to_asymptotic(n, theta):
    """s.6.2: mu_n(theta) ~ sin^{n-1} theta / (sqrt(2 pi (n-1)) cos theta), relative error O(1/n) (theta < pi/2)."""
    assume(n * math.sin(theta) ** 2 > 200 * max(1.0, 1 / math.cos(theta) ** 2))
    asym = (n - 1) * math.log(math.sin(theta)) - 0.5 * math.log(2 * math.pi * (n - 1)) - math.log(math.cos(theta))
    assert abs(B.log_cap_measure(n, theta) - asym) < 0.05


# ------------------------------------------------------------------------------------ exact cases


def test_exact_small_cases():
    """s.2: A(1, s) = 2; A(2, s) = floor(2 pi / arccos s) (with the 5.999... pitfall);
    s < 0: min(n + 1, floor(1 - 1/s)); s = 0: 2n."""
    assert B.exact_bound(1, 0.9).value == 2 and B.exact_bound(1, -1).value == 2
    assert 2 * math.pi / math.acos(0.5) < 6  # the floating-point pitfall
    assert B.exact_bound(2, 0.5).value == pytest.approx(6)
    for N in (7, 9, 16, 38):  # the polygon with N vertices, some with the same pitfall
        assert B.exact_bound(2, math.cos(2 * math.pi / N)).value == pytest.approx(N)
    assert B.exact_bound(2, -1.0).value == pytest.approx(2)
    assert B.exact_bound(3, -0.3).value == pytest.approx(4)  # L(3, -0.3) = 4.105 is weaker here
    assert B.levenshtein_bound(3, -0.3) == pytest.approx(4.105, abs=1e-3)
    assert B.exact_bound(10, -1 / 3).value == pytest.approx(4)
    assert B.exact_bound(5, -0.1).value == pytest.approx(6)
    assert B.exact_bound(7, 0.0).value == pytest.approx(14)
    assert B.exact_bound(5, 0.1) is None
    assert all(B.exact_bound(n, s).exact for n, s in [(1, 0.5), (2, 0.5), (4, -0.5), (4, 0.0)])


@given(st.integers(2, 60), st.floats(-1, 0))
def test_exact_rankin_value_is_attained_and_levenshtein_agrees(n, s):
    """For s <= 0 the exact value is attained (simplex / cross-polytope) and is <= the Levenshtein bound L_1, L_2.

    Within 1e-9 of a jump exact_bound may count one point too many (its floors get a slack that keeps
    it an upper bound despite 2 pi / (pi / 3) = 5.999...), so s is kept away from the jumps.
    """
    jump_variable = 2 * math.pi / math.acos(s) if n == 2 else (1 - 1 / s if s < -1e-6 else 0.5)
    assume(abs(jump_variable - round(jump_variable)) > 1e-7)
    exact = B.exact_bound(n, s).value
    if s < 0 and n >= 3:
        N = int(round(exact))
        C = codes.simplex(N - 1) if N - 1 <= n else codes.simplex(n)
        assert len(C) >= N and codes.max_inner_product(C[:N]) <= s + 1e-12
    assert B.levenshtein_bound(n, s) >= exact * (1 - 1e-12)


# -------------------------------------------------------------------------------------- Levenshtein


@pytest.mark.parametrize("n", sorted(LEVENSHTEIN_KISSING))
def test_levenshtein_kissing_table(n):
    """s.3.4: L(n, 1/2) for n = 3..24 (exact rationals: 93/7, 26, 48, ..., 196560), and its degree m.

    Checked twice: the closed form (float) and the exact rational sum of the coefficients of
    Levenshtein's polynomial (built in rational arithmetic from the Christoffel-Darboux kernel).
    At n = 8 and 24, s = 1/2 is an interval endpoint, so m is not asserted there.
    """
    value, m = LEVENSHTEIN_KISSING[n]
    lev = B.levenshtein(n, 0.5)
    assert float(value) <= lev.value <= float(value) * (1 + 1e-11)
    assert sum(B.levenshtein_polynomial(n, 0.5, exact=True)) == value
    if m is not None:
        assert lev.m == m


@pytest.mark.parametrize("n,s,N", SHARP)
def test_levenshtein_attained_by_sharp_configurations(n, s, N):
    """s.3.2: Levenshtein's bound equals N for the sharp configurations (Cohn-Kumar), to 1e-11."""
    assert B.levenshtein_bound(n, s) == pytest.approx(N, rel=1e-11)


def test_600_cell():
    """s.3.2/10.3: L(4, cos 36 deg) = 121.674 > 120 = A, while the certified LP (higher degree) gives 120.000 >= 120."""
    s = (1 + math.sqrt(5)) / 4
    assert B.levenshtein_bound(4, s) == pytest.approx(121.674, abs=5e-4)
    lp = B.delsarte_lp_bound(4, s)
    assert lp.value == pytest.approx(120.0, rel=1e-6)
    assert lp.value >= 120 * (1 - 1e-12) and lp.degree > B.levenshtein(4, s).m


# right ends of I_m: the Delsarte-Goethals-Seidel design bounds D(n, 2), ..., D(n, 11) (s.3.2)
DESIGN = {3: [4, 6, 9, 12, 16, 20, 25, 30, 36, 42], 8: [9, 16, 44, 72, 156, 240, 450, 660, 1122, 1584],
          24: [25, 48, 324, 600, 2900, 5200, 20150, 35100, 115830, 196560]}


@pytest.mark.parametrize("n", sorted(DESIGN))
def test_levenshtein_right_ends_are_design_bounds(n):
    """s.3.2: L_{2k-1}(n, t_k^{1,0}) = D(n, 2k) and L_{2k}(n, t_k^{1,1}) = D(n, 2k+1); continuity at the endpoints."""
    got = []
    for k in range(1, 6):
        for a, b in ((1, 0), (1, 1)):
            t = adjacent_jacobi_largest_zero(n, k, a, b)
            got.append(B.levenshtein_bound(n, t))
            for side in (-1, 1):  # both formulas meet at the endpoint
                assert B.levenshtein_bound(n, t + side * 1e-11) == pytest.approx(got[-1], rel=1e-7)
    np.testing.assert_allclose(got, DESIGN[n], rtol=1e-9)


@given(st.integers(2, 120), st.floats(-1, 0.9))
def test_levenshtein_float_never_below_exact_rational(n, s):
    """The float closed form (rounded up by its error allowance) is >= the exact rational L_m(n, s) of the
    same binary s, computed from Levenshtein's polynomial in rational arithmetic, and within 1e-11 of it."""
    lev = B.levenshtein(n, s)
    assume(lev.m <= 40)
    exact = sum(B.levenshtein_polynomial(n, s, exact=True))
    assert Fraction(lev.value) >= exact
    assert lev.value <= float(exact) * (1 + 1e-11)


@given(st.integers(3, 300), st.floats(-1, 0.999))
def test_levenshtein_low_degree_closed_forms(n, s):
    """s.3.1 table: L_1 = 1 - 1/s, L_2 = 2n(1-s)/(1-ns), L_3 = n(1-s)(2+(n+1)s)/(1-ns^2), L_4 on their intervals."""
    lev = B.levenshtein(n, s)
    forms = {1: lambda: 1 - 1 / s, 2: lambda: 2 * n * (1 - s) / (1 - n * s),
             3: lambda: n * (1 - s) * (2 + (n + 1) * s) / (1 - n * s * s),
             4: lambda: 2 * n * (1 - s) * (1 + (n + 2) * s) / (1 + 2 * s - (n + 2) * s * s)}
    if lev.m in forms:
        assert lev.value == pytest.approx(forms[lev.m](), rel=1e-10)


@given(st.integers(3, 60), st.floats(-0.99, 0.95))
def test_levenshtein_gegenbauer_form(n, s):
    """s.3.1, the equivalent form with normalized Gegenbauer values only (recalled from the BDM survey)."""
    lev = B.levenshtein(n, s)
    k = lev.k
    G = gegenbauer(n, k + 1, s)
    if lev.epsilon == 0:
        other = math.comb(k + n - 3, k - 1) * ((2 * k + n - 3) / (n - 1) - (G[k - 1] - G[k]) / ((1 - s) * G[k]))
    else:
        other = math.comb(k + n - 2, k) * ((2 * k + n - 1) / (n - 1)
                                           - (1 + s) * (G[k] - G[k + 1]) / ((1 - s) * (G[k] + G[k + 1])))
    assert lev.value == pytest.approx(other, rel=1e-8)


@given(st.integers(3, 30), st.floats(-0.95, 0.9))
def test_levenshtein_polynomial_certifies_the_closed_form(n, s):
    """s.3.3: Levenshtein's polynomial f (t - s) K^2 [(t+1)] has f_k >= 0, f <= 0 on [-1, s] and f(1)/f_0 = L."""
    c = B.levenshtein_polynomial(n, s)
    assert c[0] == 1 and np.all(c >= -1e-12)
    assert c.sum() == pytest.approx(B.levenshtein_bound(n, s), rel=1e-10)
    t = np.linspace(-1, s, 2001)
    assert gegenbauer_series(n, c, t).max() <= 1e-9 * c.sum()


def test_levenshtein_large_n_log_form():
    """s.3.5: L overflows float64 for n ~ 2500+ at s = 1/2; the log form stays finite and tends to the KL rate."""
    lev = B.levenshtein(10_000, 0.5)
    assert lev.value == math.inf and math.isfinite(lev.log_value)
    assert B.levenshtein(100, 0.5).log_value == pytest.approx(math.log(B.levenshtein_bound(100, 0.5)), rel=1e-13)
    rate = lev.log_value / math.log(2) / 10_000
    assert B.kl_rate(math.pi / 3) < rate < B.kl_rate(math.pi / 3) + 0.02


# ------------------------------------------------------------------------------------ Delsarte LP


@pytest.mark.parametrize("n", sorted(LP_KISSING))
def test_lp_kissing_table(n):
    """s.4.4: the LP at s = 1/2, n = 3..24, within 1e-3 relative (certified and grid values), never below the truth.

    Certified >= best known lower bound (s.10.1) and >= the exact kissing number where known;
    certified <= Levenshtein (1 + 1e-9) since the degree exceeds Levenshtein's.
    """
    raw, certified = LP_KISSING[n]
    lp = B.delsarte_lp_bound(n, 0.5)
    assert lp.value == pytest.approx(certified, rel=1e-3)
    assert lp.raw == pytest.approx(raw, rel=1e-3)
    assert lp.value >= KISSING_LOWER[n]
    if n in KISSING_EXACT:
        assert lp.value >= KISSING_EXACT[n]
    assert lp.value <= B.levenshtein_bound(n, 0.5) * (1 + 1e-9)
    assert lp.value >= lp.raw * (1 - 1e-7)
    assert lp.status.startswith("ok")


def test_kissing_numbers_where_the_bounds_are_tight():
    """s.10.1: tau_1 = 2 and tau_2 = 6 exactly (exact_bound); tau_8 = 240 and tau_24 = 196560 are the Levenshtein
    and certified LP values (the LP proofs of Levenshtein, Odlyzko-Sloane); for n = 3, 4 the LP only gives
    floor(13.158) = 13 >= 12 and floor(25.558) = 25 >= 24 (the exact values need Schutte-van der Waerden / Musin)."""
    assert B.best_upper_bound(1, 0.5).value == 2 and B.best_upper_bound(1, 0.5).exact
    assert B.best_upper_bound(2, 0.5).value == 6 and B.best_upper_bound(2, 0.5).exact
    for n, tau in [(8, 240), (24, 196560)]:
        assert B.levenshtein_bound(n, 0.5) == pytest.approx(tau, rel=1e-11)
        lp = B.delsarte_lp_bound(n, 0.5).value
        assert tau <= lp < tau + 1 and math.floor(lp) == tau  # A is an integer: the certified LP proves tau exactly
        assert math.floor(B.best_upper_bound(n, 0.5).value) == tau
    for n, tau, lp_floor in [(3, 12, 13), (4, 24, 25)]:
        assert math.floor(B.delsarte_lp_bound(n, 0.5).value) == lp_floor >= tau


@pytest.mark.parametrize("n,N", [(8, 240), (24, 196560)])
def test_lp_tight_kissing_and_grid_pitfall(n, N):
    """s.4.3: a coarse grid LP falls BELOW tau_n (the pitfall), the certified value never does."""
    coarse = B.delsarte_lp_bound(n, 0.5, grid_size=40, exchange_steps=0)
    assert coarse.raw < N  # the relaxation alone would be a false "bound"
    assert coarse.value >= N and coarse.lp_value >= N
    full = B.delsarte_lp_bound(n, 0.5)
    assert N <= full.value <= N * (1 + 1e-12)


@pytest.mark.parametrize("n,s,N", SHARP)
def test_lp_never_below_sharp_configurations(n, s, N):
    """The certified LP is >= N for every sharp configuration (exactly when s is a binary fraction;
    otherwise the float s is within one ulp of the code's inner product, hence the 1e-12)."""
    lp = B.delsarte_lp_bound(n, s, degree=max(20, B.levenshtein(n, s).m + 4), grid_size=400)
    assert lp.value >= (N if _is_dyadic(s) else N * (1 - 1e-12))
    assert lp.value == pytest.approx(N, rel=1e-9)


def test_certificate_is_checked_not_assumed():
    """A polynomial that is positive on part of [-1, s] gets its excursion subtracted: the excursion is
    at least the polynomial's maximum on a fine grid and the value is (f(1) - delta)/(1 - delta)."""
    c = B.delsarte_lp_bound(8, 0.5).coefficients  # f <= 0 on [-1, 1/2]; positive just above 1/2
    s = 0.51
    value, delta, used = B._certify(8, s, c)
    grid_max = gegenbauer_series(8, used, np.linspace(-1, s, 20001)).max()
    assert 1e-3 < grid_max < 1 and float(delta) >= grid_max
    assert value == pytest.approx((used.sum() - float(delta)) / (1 - float(delta)), rel=1e-12)
    assert value > used.sum() >= 240 * (1 - 1e-12)
    assert B._certify(8, 0.7, c)[0] == math.inf  # excursion >= f_0: no bound can be certified


@settings(max_examples=10)
@given(st.integers(3, 24), st.floats(-0.95, 0.7), st.integers(0, 8))
def test_certified_lp_at_most_levenshtein(n, s, extra):
    """Levenshtein's bound is the LP optimum in degree m, so the certified LP of degree D >= m is <= L (1 + 1e-9);
    the grid optimum is <= L (1 + 1e-6) (s.4.4 sanity rules)."""
    lev = B.levenshtein(n, s)
    lp = B.delsarte_lp_bound(n, s, degree=lev.m + extra, grid_size=300)
    assert lp.value <= lev.value * (1 + 1e-9)
    assert lp.raw <= lev.value * (1 + 1e-6)
    assert math.isfinite(lp.value) and lp.value >= lp.raw * (1 - 1e-7)


# -------------------------------------------------------------------------------- volume / Rankin / CSW


def test_volume_rankin_csw_kissing_values():
    """s.7 and s.9.1 tables at s = 1/2: volume 1/mu(pi/6), Rankin's cap bound, CSW 1/mu(pi/3)."""
    volume = {3: 14.93, 4: 34.68, 5: 77.76, 8: 788.64, 16: 285447, 24: 8.94e7}
    rankin = {3: 16.49, 4: 32.77, 5: 60.73, 8: 309.33, 16: 12327.5, 24: 343910}
    csw = {3: (4, 0), 4: (5.12, 0.005), 5: (6.4, 0), 8: (11.73, 0.005), 16: (48.82, 0.005), 24: (183.1, 0.05),
           48: (7870, 0.5), 100: (1.97e7, 0.005e7)}  # (value, half a unit of the last digit quoted)
    for n, v in volume.items():
        assert B.volume_bound(n, 0.5).value == pytest.approx(v, rel=1e-3)
    for n, v in rankin.items():
        assert B.rankin_cap_bound(n, 0.5).value == pytest.approx(v, rel=1e-3)
    for n, (v, tol) in csw.items():
        assert B.csw_lower_bound(n, 0.5).value == pytest.approx(v, abs=tol + 1e-12 * v)
        assert B.csw_lower_bound(n, 0.5).kind == "lower" and "non-constructive" in B.csw_lower_bound(n, 0.5).name


def test_rankin_asymptotics():
    """s.7: Rankin / (sqrt(pi/8) n^{3/2} 2^{n/2}) = 1.79, 1.36, 1.14, 1.036, 1.018 at n = 3, 8, 24, 100, 200."""
    for n, ratio in [(3, 1.79), (8, 1.36), (24, 1.14), (100, 1.036), (200, 1.018)]:
        got = math.exp(B.rankin_cap_bound(n, 0.5).log_value - 0.5 * math.log(math.pi / 8) - 1.5 * math.log(n)
                       - n / 2 * math.log(2))
        assert got == pytest.approx(ratio, abs=6e-3)
    assert not B.rankin_cap_bound(5, 0.0).applicable and B.rankin_cap_bound(5, -0.5).value == math.inf


@pytest.mark.parametrize("n", [3, 5, 8, 16, 40])
def test_rankin_is_nondecreasing_in_s_where_the_clamp_acts(n):
    """Rankin's cap bound (1955): the raw formula blows up as s -> 0+, so below its turning point s_n* it is
    evaluated at s_n* (A(n, s) <= A(n, s_n*)). The bound must then be constant below s_n* and nondecreasing
    in s everywhere, including across s_n*; without the clamp it would fall as s grows from 0."""
    turning = B._rankin_turning_point(n)
    assert 0 < turning < 0.99
    grid = np.concatenate([np.geomspace(1e-6, turning, 12)[:-1], [turning],
                           np.linspace(turning, 0.95, 12)[1:]])
    values = [B.rankin_cap_bound(n, float(s)).log_value for s in grid]
    assert all(b >= a - 1e-9 for a, b in zip(values, values[1:])), values
    assert values[0] == pytest.approx(values[len(grid) // 2 - 1], abs=1e-9)  # flat below s_n*
    assert B.rankin_cap_bound(n, 1e-6).note  # says where it was evaluated
    assert B._rankin_log(n, 1e-6) > B._rankin_log(n, turning) + 1  # the raw formula really does blow up there


# ---------------------------------------------------------------------------------- property tests


CONSTRUCTIONS = [c for n in range(1, 25) for c in codes.constructions_in_dimension(n) if c.size <= 200_000]


@given(st.sampled_from(CONSTRUCTIONS), st.floats(0, 1))
def test_upper_bounds_exceed_every_construction(construction, u):
    """Definition of A(n, s): a code of N points with maximal inner product <= s in R^n forces every upper bound >= N.

    For the catalog of constructions (sizes and inner products as listed; verified in test_codes.py),
    at s from the code's own maximal inner product up to 0.95.
    """
    n, N = construction.dimension, construction.size
    s = construction.max_inner_product + u * (0.95 - construction.max_inner_product)
    assume(s < 0.95 or u == 0)
    s = min(max(s, -1.0), 0.999)
    for bound in cheap_upper_bounds(n, s):
        assert bound.value >= N * (1 - 1e-12), (bound.name, bound.value, N)
    assert B.best_upper_bound(n, s, use_lp=False).value >= N * (1 - 1e-12)


@settings(max_examples=8)
@given(st.sampled_from([c for c in CONSTRUCTIONS if 3 <= c.dimension and c.max_inner_product < 0.8]))
def test_certified_lp_exceeds_every_construction(construction):
    """Delsarte's theorem: the certified LP bound at the code's own inner product is >= its size."""
    s = construction.max_inner_product
    lp = B.delsarte_lp_bound(construction.dimension, s, grid_size=300)
    assert lp.value >= construction.size * (1 - 1e-12)


def test_upper_bounds_exceed_best_known_kissing_and_tammes():
    """Every upper bound >= the best known lower bounds (s.10.1 kissing table, s.10.2 Tammes on S^2)."""
    for n, lower in KISSING_LOWER.items():
        for bound in cheap_upper_bounds(n, 0.5):
            assert bound.value >= lower, (n, bound.name)
    for N, s in TAMMES:
        for bound in cheap_upper_bounds(3, s) + [B.delsarte_lp_bound(3, s, degree=20, grid_size=300)]:
            assert bound.value >= N * (1 - 1e-9), (N, s, bound.name, bound.value)


@given(st.integers(1, 300), st.floats(-1, 0.99), st.floats(-1, 0.99))
def test_bounds_monotone_in_s(n, s1, s2):
    """A(n, s) is nondecreasing in s, and so are the exact, Levenshtein, volume, Rankin and CSW bounds."""
    s1, s2 = min(s1, s2), max(s1, s2)
    pairs = [(B.volume_bound(n, s1), B.volume_bound(n, s2)), (B.csw_lower_bound(n, s1), B.csw_lower_bound(n, s2)),
             (B.best_upper_bound(n, s1, use_lp=False), B.best_upper_bound(n, s2, use_lp=False))]
    if n >= 2:
        pairs.append((B.levenshtein(n, s1), B.levenshtein(n, s2)))
        if s1 > 0:
            pairs.append((B.rankin_cap_bound(n, s1), B.rankin_cap_bound(n, s2)))
    if B.exact_bound(n, s1) is not None and B.exact_bound(n, s2) is not None:
        pairs.append((B.exact_bound(n, s1), B.exact_bound(n, s2)))
    for lo, hi in pairs:
        assert lo.log_value <= hi.log_value + 1e-12 * max(1.0, abs(hi.log_value)), (lo.name, lo.value, hi.value)


@settings(max_examples=6)
@given(st.integers(3, 16), st.floats(-0.9, 0.6), st.floats(0.001, 0.1))
def test_certified_lp_monotone_in_s(n, s, ds):
    """The LP bound is nondecreasing in s (a certificate for s' >= s is one for s); numerically within 1e-7."""
    lo = B.delsarte_lp_bound(n, s, grid_size=300).value
    hi = B.delsarte_lp_bound(n, s + ds, grid_size=300).value
    assert lo <= hi * (1 + 1e-7)


@given(st.integers(1, 2000), st.floats(-1, 0.98))
def test_csw_below_every_upper_bound(n, s):
    """Chabauty-Shannon-Wyner lower bound <= A(n, s) <= every upper bound (all in logs, any n)."""
    csw = B.csw_lower_bound(n, s)
    for bound in cheap_upper_bounds(n, s):
        assert csw.log_value <= bound.log_value + 1e-12 * max(1.0, abs(bound.log_value)), bound.name


@settings(max_examples=6)
@given(st.integers(3, 24), st.floats(0.05, 0.7))
def test_csw_below_certified_lp(n, s):
    """CSW <= the certified LP bound as well."""
    assert B.csw_lower_bound(n, s).value <= B.delsarte_lp_bound(n, s, grid_size=300).value


def test_best_upper_bound_names_its_source():
    """best_upper_bound = min over the applicable bounds, with the name of the one attaining it."""
    b = B.best_upper_bound(8, 0.5)
    assert b.value == pytest.approx(240, rel=1e-12) and b.value >= 240
    assert b.name in {"Levenshtein", "Delsarte LP (certified)"}
    assert b.value == min(c.value for c in b.candidates if c.applicable)
    assert {c.name for c in b.candidates} >= {"Levenshtein", "volume (cap packing)", "Rankin cap bound",
                                               "Delsarte LP (certified)"}
    assert B.best_upper_bound(5, 0.5).name == "Delsarte LP (certified)"
    assert B.best_upper_bound(2, 0.5).name.startswith("exact") and B.best_upper_bound(2, 0.5).value == pytest.approx(6)
    big = B.best_upper_bound(3000, 0.5)
    assert big.value == math.inf and math.isfinite(big.log_value) and big.name == "Levenshtein"
    assert big.log_value < next(c.log_value for c in big.candidates if c.name == "Rankin cap bound")


# -------------------------------------------------------------------------------- asymptotic rates


def test_asymptotic_rates():
    """s.8: KL(30, 45, 60, 62.9974, 70, 80 deg) = 1.37744, 0.79825, 0.40141, 0.33750, 0.20625, 0.06531;
    refinement below theta* = 62.9974 deg with c* = -0.099056 (R(60) <= 0.40094); CSW(60) = 0.20752."""
    for deg, value in [(30, 1.37744), (45, 0.79825), (60, 0.40141), (62.9974, 0.33750), (70, 0.20625), (80, 0.06531)]:
        assert B.kl_rate(math.radians(deg)) == pytest.approx(value, abs=6e-6)
    theta_star, c_star = B.kl_refinement_point()
    assert math.degrees(theta_star) == pytest.approx(62.9974, abs=1e-4) and c_star == pytest.approx(-0.099056, abs=1e-6)
    assert B.kl_rate_refined(math.pi / 3) == pytest.approx(0.40094, abs=1e-5)
    assert B.csw_rate(math.pi / 3) == pytest.approx(0.20752, abs=1e-5)
    assert B.kl_rate(math.pi / 2) == 0 and B.csw_rate(2.0) == 0


@given(st.floats(0.01, math.pi))
def test_rate_ordering(theta):
    """CSW rate <= refined KL <= KL, and the refinement is continuous at theta*."""
    assert B.csw_rate(theta) <= B.kl_rate_refined(theta) + 1e-12 <= B.kl_rate(theta) + 2e-12
    theta_star, _ = B.kl_refinement_point()
    assert B.kl_rate_refined(theta_star - 1e-9) == pytest.approx(B.kl_rate(theta_star), abs=1e-7)


# ----------------------------------------------------------------------------- dimension of a code


def test_code_dimension_bounds_known_cases():
    """240 points at s = 1/2 need n = 8 (E8 achieves it); 241 need n >= 9; the Leech lattice in n = 24; s = 0 is 2n."""
    r = B.code_dimension_bounds(240, 0.5)
    assert (r.dimension, r.construction_dimension, r.construction) == (8, 8, "e8()")
    assert B.code_dimension_bounds(241, 0.5).dimension == 9
    r = B.code_dimension_bounds(196560, 0.5)
    assert (r.dimension, r.construction) == (24, "leech()")
    r = B.code_dimension_bounds(1000, 0.0)
    assert r.dimension == r.construction_dimension == 500
    r = B.code_dimension_bounds(47, 0.5, use_lp=True)  # L(5, 1/2) = 48 allows 47; the LP (46.34) rules n = 5 out
    assert r.dimension == 6 and r.ruled_out_by == "Delsarte LP (certified)"
    assert B.code_dimension_bounds(47, 0.5, use_lp=False).dimension == 5
    with pytest.raises(ValueError, match="simplex bound"):
        B.code_dimension_bounds(4, -0.5)


@settings(max_examples=25)
@given(st.integers(2, 5000), st.floats(-0.2, 0.9))
def test_code_dimension_bounds_consistent(N, s):
    """The allowed dimension is <= any constructed dimension, dimension - 1 is ruled out by some upper bound,
    and the construction named really has >= N points at inner product <= s."""
    assume(s >= 0 or s >= -1 / (N - 1))  # otherwise no dimension works (simplex bound; tested above)
    r = B.code_dimension_bounds(N, s, use_lp=False)
    if r.dimension > 1:
        assert B.best_upper_bound(r.dimension - 1, s, use_lp=False).value < N
    assert B.best_upper_bound(r.dimension, s, use_lp=False).value >= N * (1 - 1e-9)
    if r.construction_dimension is not None:
        assert r.dimension <= r.construction_dimension
        c = next(c for c in codes.constructions_in_dimension(r.construction_dimension, N=N)
                 if c.name == r.construction)
        assert c.size >= N and c.max_inner_product <= s
    if r.csw_dimension is not None:
        assert r.dimension <= r.csw_dimension


# ------------------------------------------------------------------------------------- bad input


BAD_N = [0, -3, 2.5, "3", True, float("nan"), None]
BAD_S = [1.0, 1.5, -1.0000001, float("nan"), float("inf"), "0.5", True, None]


@pytest.mark.parametrize("fn", [B.levenshtein_bound, B.volume_bound, B.rankin_cap_bound,
                                B.csw_lower_bound, B.exact_bound, B.best_upper_bound, B.delsarte_lp_bound])
def test_bad_input_raises(fn):
    """n < 1 (or < 2 where Gegenbauer polynomials are needed), non-integer n, s outside [-1, 1), NaN -> ValueError."""
    for n in BAD_N:
        with pytest.raises(ValueError, match="n"):
            fn(n, 0.5)
    for s in BAD_S:
        with pytest.raises(ValueError, match="s"):
            fn(5, s)


def test_bad_input_other_functions():
    for call in [lambda: B.levenshtein_bound(1, 0.5), lambda: B.delsarte_lp_bound(1, 0.5),
                 lambda: B.cap_measure(3, -0.1), lambda: B.cap_measure(3, 4.0), lambda: B.log_cap_measure(0, 1.0),
                 lambda: B.log_cap_measure(3, float("nan")), lambda: B.kl_rate(0.0), lambda: B.csw_rate(-1.0),
                 lambda: B.kl_rate_refined(float("nan")), lambda: B.delsarte_lp_bound(5, 0.5, degree=0),
                 lambda: B.delsarte_lp_bound(5, 0.5, grid_size=1), lambda: B.delsarte_lp_bound(300, 0.5),
                 lambda: B.code_dimension_bounds(0, 0.5), lambda: B.code_dimension_bounds(10, 1.0)]:
        with pytest.raises(ValueError):
            call()
