"""Bounds on the size of spherical codes, A(n, s), certified where a computation could fool itself.

Conventions (``shared/docs/spherical_codes.md`` section 0): points lie on S^{n-1} in R^n, s is the
largest allowed inner product and theta = arccos s the smallest allowed angle;

    A(n, s) = max |C|  over  C in S^{n-1} with <x, y> <= s for all x != y in C,

and the kissing number is tau_n = A(n, 1/2). Through U = V = C a code is an (m, b_rel)-constellation
with m = (1 - s)/2, b_rel = (1 + s)/2 (``theory.md`` section 3), so A(n, s) also bounds how many
pairs such a constellation can hold in dimension n.

What is here:

* cap measures mu_n(theta) (normalized, total mass 1) and their logarithm, safe at n = 10,000;
* finite-n UPPER bounds, each its own function returning a :class:`Bound` (value and name):
  :func:`exact_bound` (n = 1, n = 2, s <= 0: Rankin / simplex), :func:`levenshtein` (closed form,
  with its degree and ``log_value`` for large n; :func:`levenshtein_bound` is its value as a float), :func:`delsarte_lp_bound` (linear programming, CERTIFIED by exact
  rational arithmetic), :func:`volume_bound` (cap packing) and :func:`rankin_cap_bound`;
  :func:`best_upper_bound` takes the smallest and says which one it was;
* the finite-n LOWER bound of Chabauty-Shannon-Wyner, :func:`csw_lower_bound` (non-constructive;
  explicit codes are in :mod:`constellations.codes`);
* ASYMPTOTIC rates R(theta) = limsup (1/n) log2 A(n, cos theta), which are statements about
  n -> infinity only and never enter a finite-n bound: :func:`kl_rate`, :func:`kl_rate_refined`,
  :func:`csw_rate`;
* :func:`code_dimension_bounds`: for a code of N points at maximal inner product s, the smallest
  dimension the upper bounds allow (a lower bound on the dimension) and the smallest dimension in
  which a construction of the package reaches N (an upper bound). Not to be confused with
  :func:`constellations.dimension.necessary_dimension`, the report for (m, b_rel)-constellations,
  which calls this one on the code line.

Every bound takes ``n`` (an int >= 1; the Gegenbauer-based ones need n >= 2) and ``s`` in [-1, 1)
and raises ``ValueError`` on anything else (NaN, non-integer n, s >= 1, ...).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import integrate, optimize, special

from ._validation import check_int, check_scalar
from .polynomials import (
    adjacent_jacobi_largest_zero,
    gegenbauer,
    gegenbauer_power_coefficients,
    gegenbauer_series,
    gegenbauer_series_power_coefficients,
    is_negative_on,
    jacobi_log_value,
    jacobi_power_coefficients,
    polynomial_product,
    polynomial_value,
)

_LOG_FLOAT_MAX = math.log(np.finfo(np.float64).max)
#: Floors of exact formulas get this slack: it can only raise an upper bound (never invalidates it).
_FLOOR_SLACK = 1e-9
#: Largest Levenshtein value for which the LP is attempted: HiGHS works in float64 with absolute
#: tolerances, and the coefficients of the LP polynomial are of the order of the bound itself.
LP_MAX_VALUE = 1e13


# ----------------------------------------------------------------------------------------- checks


def _check_n(n, *, low: int = 1) -> int:
    return check_int(n, "n (the ambient dimension of R^n)", low=low)


def _check_s(s) -> float:
    if isinstance(s, bool) or not isinstance(s, numbers.Real):
        raise ValueError(f"s (the maximal inner product) must be a real number in [-1, 1); got {s!r}")
    try:
        check_scalar(s, "s (the maximal inner product)", low=-1.0, high=1.0, high_open=True)
    except TypeError as err:
        raise ValueError(f"s (the maximal inner product) must be a real number in [-1, 1); got {s!r}") from err
    return float(s)


def _check_theta(theta, name: str = "theta (an angle in radians)", *, low_open: bool = False) -> float:
    if isinstance(theta, bool) or not isinstance(theta, numbers.Real):
        raise ValueError(f"{name} must be a real number in [0, pi]; got {theta!r}")
    try:
        check_scalar(theta, name, low=0.0, high=math.pi, low_open=low_open)
    except TypeError as err:
        raise ValueError(f"{name} must be a real number in [0, pi]; got {theta!r}") from err
    return float(theta)


def _exp(log_value: float) -> float:
    return math.exp(log_value) if log_value < _LOG_FLOAT_MAX else math.inf


def _log(x) -> float:
    """Natural log of a positive float or of an exact (possibly huge) int or Fraction."""
    if isinstance(x, Fraction):
        return math.log(x.numerator) - math.log(x.denominator)
    return math.log(x)


def _round_up(x: Fraction) -> float:
    """The smallest float >= x (so a rigorous upper bound stays one after rounding)."""
    v = float(x)
    return v if Fraction(v) >= x else float(np.nextafter(v, math.inf))


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Bound:
    """A bound on A(n, s) and where it comes from.

    Attributes:
      name: which bound this is (e.g. "Levenshtein", "Delsarte LP (certified)").
      value: the bound; ``inf`` when it exceeds float64 (use ``log_value``) or does not apply.
      log_value: natural log of the bound (finite even when ``value`` overflows).
      n, s: the dimension and maximal inner product it is for.
      kind: "upper" (A(n, s) <= value) or "lower" (A(n, s) >= value).
      exact: True when the value is A(n, s) itself.
      constructive: for lower bounds, whether an explicit code is behind it.
      applicable: False when the bound says nothing for these (n, s) (value is then inf / 0).
      note: provenance, conditions, caveats.
    """

    name: str
    value: float
    log_value: float
    n: int
    s: float
    kind: str = "upper"
    exact: bool = False
    constructive: bool = False
    applicable: bool = True
    note: str = ""


def _upper(name, log_value, n, s, **kw) -> Bound:
    return Bound(name=name, value=_exp(log_value), log_value=float(log_value), n=n, s=s, **kw)


def _exact(name, count: int, n, s) -> Bound:
    return Bound(name=name, value=float(count), log_value=math.log(count), n=n, s=s, exact=True)


def _not_applicable(name, n, s, note) -> Bound:
    return Bound(name=name, value=math.inf, log_value=math.inf, n=n, s=s, applicable=False, note=note)


# ------------------------------------------------------------------------------------ cap measure


def log_cap_measure(n: int, theta: float) -> float:
    """log mu_n(theta), the log of the normalized measure of a closed cap of angular radius theta on S^{n-1}.

    mu_n(theta) = I_{sin^2(theta/2)}((n-1)/2, (n-1)/2) (regularized incomplete beta). When that
    underflows (large n, theta < pi/2) the identity, with a = (n-1)/2 and x = sin^2 theta,

        I_x(a, 1/2) = x^a (1 - x)^{1/2} / (a B(a, 1/2)) * 2F1(a + 1/2, 1; a + 1; x),
        mu_n(theta) = I_x(a, 1/2) / 2   (theta <= pi/2),

    is evaluated in logs (log x = 2 log sin theta, so even theta = 1e-200 is fine). The 2F1 factor
    lies between 1 and 1/(1 - x), so nothing overflows. For n = 1, S^0 = {e, -e} and a cap holds
    one point (mass 1/2) unless theta = pi.

    Args:
      n: dimension of the ambient space R^n (n >= 1).
      theta: angular radius in [0, pi].

    Returns:
      log mu_n(theta) (-inf for theta = 0 when n >= 2).

    Example:
      >>> round(log_cap_measure(10_000, math.pi / 3), 6)
      -1443.097758
    """
    n = _check_n(n)
    theta = _check_theta(theta)
    if n == 1:
        return 0.0 if theta >= math.pi else -math.log(2.0)
    if theta == 0.0:
        return -math.inf
    a = (n - 1) / 2
    if theta > math.pi / 2:
        return math.log1p(-float(special.betainc(a, a, math.sin((math.pi - theta) / 2) ** 2)))
    value = float(special.betainc(a, a, math.sin(theta / 2) ** 2))
    if value > 1e-250:
        return math.log(value)
    x = math.sin(theta) ** 2
    return (-math.log(2.0) + 2 * a * math.log(math.sin(theta)) + 0.5 * math.log1p(-x) - math.log(a)
            - float(special.betaln(a, 0.5)) + math.log(float(special.hyp2f1(a + 0.5, 1.0, a + 1.0, x))))


def cap_measure(n: int, theta: float) -> float:
    """mu_n(theta) = I_{sin^2(theta/2)}((n-1)/2, (n-1)/2): normalized measure of a cap of angular radius theta.

    mu_3(theta) = (1 - cos theta)/2, and mu_n(theta) + mu_n(pi - theta) = 1. Underflows to 0 for
    large n and small theta; use :func:`log_cap_measure` there.

    Example:
      >>> round(cap_measure(3, 1.0), 9)
      0.229848847
    """
    n = _check_n(n)
    theta = _check_theta(theta)
    if n == 1:
        return 1.0 if theta >= math.pi else 0.5
    a = (n - 1) / 2
    if theta > math.pi / 2:  # mu(theta) = 1 - mu(pi - theta): keeps x = sin^2 small, away from x = 1
        return 1.0 - float(special.betainc(a, a, math.sin((math.pi - theta) / 2) ** 2))
    return float(special.betainc(a, a, math.sin(theta / 2) ** 2))


# ---------------------------------------------------------------------------------- exact cases


def exact_bound(n: int, s: float) -> Bound | None:
    """A(n, s) exactly where it is known in closed form, else None.

    * n = 1: A = 2 (the two points of S^0).
    * n = 2: A = floor(2 pi / arccos s) (the regular polygon).
    * s < 0: A = min(n + 1, floor(1 - 1/s)). Upper bound: 0 <= |sum x_i|^2 <= N + N(N-1)s (simplex
      bound) and Rankin's n + 1; attained by the regular simplex on floor(1 - 1/s) <= n + 1 points.
    * s = 0: A = 2n (Rankin; the cross-polytope).

    The floors get a slack of 1e-9 (2 pi / (pi/3) is 5.9999... in floating point); it can only raise
    the number, so the value stays a valid upper bound even within 1e-9 of a jump.
    """
    n = _check_n(n)
    s = _check_s(s)
    if n == 1:
        return _exact("exact (n = 1: the two points of S^0)", 2, n, s)
    if n == 2:
        count = math.floor(2 * math.pi / math.acos(s) + _FLOOR_SLACK)
        return _exact("exact (n = 2: regular polygon)", count, n, s)
    if s < 0:
        # floor(1 - 1/s) >= n + 1 iff s >= -1/n (tested first: 1/s overflows for subnormal s)
        count = n + 1 if s >= -1 / n else min(n + 1, math.floor(1 - 1 / s + _FLOOR_SLACK))
        return _exact("exact (s < 0: simplex bound and Rankin, regular simplex)", count, n, s)
    if s == 0:
        return _exact("exact (s = 0: Rankin, cross-polytope)", 2 * n, n, s)
    return None


# ---------------------------------------------------------------------------------- Levenshtein


@dataclass(frozen=True)
class LevenshteinBound(Bound):
    """The Levenshtein bound L_m(n, s) with its degree m = 2k - 1 + epsilon."""

    m: int = 0
    k: int = 0
    epsilon: int = 0


@lru_cache(maxsize=4096)
def _t(n: int, k: int, a: int, b: int) -> float:
    return adjacent_jacobi_largest_zero(n, k, a, b)


def _levenshtein_degree(n: int, s: float) -> tuple[int, int]:
    """(k, epsilon) with s in I_{2k-1+epsilon}: I_{2k-1} = [t_{k-1}^{1,1}, t_k^{1,0}], I_{2k} = [t_k^{1,0}, t_k^{1,1}].

    t_k^{1,1} increases with k (interlacing), so the smallest k with s <= t_k^{1,1} is found by
    doubling and bisection: O(log k) eigenvalue problems of size k.
    """
    hi = 1
    while _t(n, hi, 1, 1) < s:
        if hi > 2**22:
            raise ValueError(f"s = {s!r} is too close to 1 for the Levenshtein bound in n = {n} (degree > 2^23)")
        hi *= 2
    lo = hi // 2  # t_lo^{1,1} < s (or lo = 0, t_0^{1,1} = -1 <= s)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _t(n, mid, 1, 1) < s:
            lo = mid
        else:
            hi = mid
    k = hi
    return k, (0 if s <= _t(n, k, 1, 0) else 1)


def levenshtein(n: int, s: float) -> LevenshteinBound:
    """The Levenshtein bound L_m(n, s) >= A(n, s) (closed form, universal), with its degree.

    The result carries ``value`` (what :func:`levenshtein_bound` returns), ``log_value`` (finite
    even where ``value`` overflows float64) and the degree m = 2k - 1 + epsilon.

    With alpha = (n - 3)/2, adjacent Jacobi polynomials P_k^{a,b} (normalized at 1) and their largest
    zeros t_k^{a,b}, choose m = 2k - 1 + epsilon with s in I_m (I_{2k-1} = [t_{k-1}^{1,1}, t_k^{1,0}],
    I_{2k} = [t_k^{1,0}, t_k^{1,1}]); then

        L_m(n, s) = (1 - P_{k-1}^{1,eps}(s) / P_k^{0,eps}(s)) * S_{k,eps},
        S_{k,0} = binom(n+k-2, k-1) + binom(n+k-3, k-2),  S_{k,1} = 2 binom(n+k-2, k-1).

    L is continuous and increasing in s and equals the LP optimum over polynomials of degree <= m
    (Levenshtein 1979/1992). At an endpoint of I_m both neighbouring formulas agree, so m is not
    unique there (s = 1/2 is such an endpoint for n = 8 and n = 24). The binomials are exact Python
    ints and the polynomial ratio is evaluated with rescaling, so ``log_value`` is right even when L
    overflows float64 (n in the thousands). The float result is rounded up by a relative
    1e-13 + 8 (n + k) eps, more than its evaluation error, so it is never below the exact value
    L_m(n, s) (which :func:`levenshtein_polynomial` gives as an exact rational).

    Args:
      n: dimension, n >= 2.
      s: maximal inner product in [-1, 1).
    """
    n = _check_n(n, low=2)
    s = _check_s(s)
    k, eps = _levenshtein_degree(n, s)
    alpha = (n - 3) / 2
    num, log_num = jacobi_log_value(k - 1, alpha + 1, alpha + eps, s)
    den, log_den = jacobi_log_value(k, alpha, alpha + eps, s)
    ratio = num / den * math.exp(log_num - log_den)
    if eps == 0:
        size = math.comb(n + k - 2, k - 1) + (math.comb(n + k - 3, k - 2) if k >= 2 else 0)
    else:
        size = 2 * math.comb(n + k - 2, k - 1)
    # Round up by the float evaluation error (recursions of length k, a ratio with cancellation
    # growing like n): relative 1e-13 + 8 (n + k) eps covers it with a wide margin (checked against
    # exact rational evaluation in tests/test_bounds.py), so ``value`` stays an upper bound.
    log_value = math.log1p(-ratio) + _log(size) + 1e-13 + 8 * (n + k) * np.finfo(np.float64).eps
    return LevenshteinBound(name="Levenshtein", value=_exp(log_value), log_value=log_value, n=n, s=s,
                            note=f"L_{2 * k - 1 + eps}(n, s), the degree-{2 * k - 1 + eps} LP optimum",
                            m=2 * k - 1 + eps, k=k, epsilon=eps)


def levenshtein_bound(n: int, s: float) -> float:
    """The Levenshtein bound L(n, s) >= A(n, s) as a float: ``levenshtein(n, s).value``.

    inf where L exceeds float64 (n in the thousands); :func:`levenshtein` returns the full result,
    with ``log_value`` (finite for every n) and the degree m = 2k - 1 + epsilon it comes from.

    Example:
      >>> levenshtein_bound(8, 0.5)   # tight: the E8 root system
      240.0...
    """
    return levenshtein(n, s).value


def levenshtein_polynomial(n: int, s: float, *, exact: bool = False):
    """Gegenbauer coefficients f_0 = 1, f_1..f_m of Levenshtein's extremal polynomial for (n, s).

    f(t) = (t - s) K(t)^2 (epsilon = 0) or (t + 1)(t - s) K(t)^2 (epsilon = 1), with K the
    Christoffel-Darboux kernel K(t) = sum_{i<k} P_i^{1,eps}(t) P_i^{1,eps}(s) / h_i of the adjacent
    Jacobi polynomials, h_i their squared norms for the weight (1-t)^{alpha+1}(1+t)^{alpha+eps}
    relative to h_0: h_i / h_{i-1} = (2i+a+b-1) i (i+b) / ((2i+a+b+1)(i+a+b)(i+a)) for (a, b) =
    (alpha+1, alpha+eps). f <= 0 on [-1, s], f_k >= 0, and sum_k f_k = f(1)/f_0 = L_m(n, s).

    Everything is rational when s is (a float is a binary rational), so with ``exact=True`` the
    coefficients come back as exact ``Fraction``s (built in rational arithmetic throughout);
    otherwise as float64 (rounded from the exact ones).
    """
    lev = levenshtein(n, s)
    n, k, eps = lev.n, lev.k, lev.epsilon
    s_q = Fraction(lev.s)
    a, b = Fraction(n - 3, 2) + 1, Fraction(n - 3, 2) + eps
    P = jacobi_power_coefficients(k - 1, a, b)
    kernel, h = [Fraction(0)] * k, Fraction(1)
    for i in range(k):
        if i >= 1:
            h *= (2 * i + a + b - 1) * i * (i + b) / ((2 * i + a + b + 1) * (i + a + b) * (i + a))
        weight = polynomial_value(P[i], s_q) / h
        for j, x in enumerate(P[i]):
            kernel[j] += weight * x
    f = polynomial_product(polynomial_product([-s_q, Fraction(1)], kernel), kernel)
    if eps:
        f = polynomial_product([Fraction(1), Fraction(1)], f)
    rows = gegenbauer_power_coefficients(n, lev.m)
    coefficients = [Fraction(0)] * (lev.m + 1)
    for d in range(lev.m, -1, -1):  # triangular solve: G_d has degree d
        coefficients[d] = f[d] / rows[d][d]
        for i in range(d + 1):
            f[i] -= coefficients[d] * rows[d][i]
    coefficients = [x / coefficients[0] for x in coefficients]
    if exact:
        return coefficients
    return np.array([float(x) for x in coefficients])


# ------------------------------------------------------------------------------------ Delsarte LP


@dataclass(frozen=True, eq=False)
class DelsarteLPBound(Bound):
    """A certified Delsarte linear-programming bound and its certificate.

    Attributes (beyond :class:`Bound`):
      raw: the optimum of the LP on the initial Chebyshev grid, 1 + min sum_k f_k. A relaxation (f <= 0
        only on grid points): it can lie BELOW A(n, s). Reported for comparison, never as a bound.
      coefficients: f_0 = 1, f_1..f_D >= 0, the Gegenbauer coefficients of the certified polynomial.
      excursion: delta, a proven upper bound on max_{[-1, s]} f (value = (f(1) - delta)/(1 - delta)).
      degree: D, the largest Gegenbauer degree allowed.
      grid_size: number of initial Chebyshev nodes; ``constraints``: grid plus exchange points.
      source: which feasible polynomial gave the value ("LP solution" or "Levenshtein polynomial").
      lp_value: certified value of the LP solution (inf if the solver failed).
      levenshtein_value: certified value of Levenshtein's polynomial (inf when its degree m > D).
      status: solver / certification messages.
    """

    raw: float = math.nan
    coefficients: np.ndarray = field(default_factory=lambda: np.ones(1))
    excursion: float = 0.0
    degree: int = 0
    grid_size: int = 0
    constraints: int = 0
    source: str = ""
    lp_value: float = math.inf
    levenshtein_value: float = math.inf
    certificate: str = ""
    status: str = ""


def _chebyshev_grid(size: int, s: float) -> np.ndarray:
    x = np.cos(np.arange(size) * np.pi / (size - 1))
    return np.unique(np.clip((x + 1) * (s + 1) / 2 - 1, -1.0, s))


def _local_maxima(n: int, c: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidate maximizers of f = sum c_k G_k on [-1, s] (endpoints and critical points) and f there.

    Floating point: only a guide for the exchange steps and for choosing the certified excursion,
    which the exact check then proves or rejects.
    """
    if s <= -1.0:
        pts = np.array([-1.0])
        return pts, gegenbauer_series(n, c, pts)
    D = len(c) - 1
    pts = [np.array([-1.0, s])]
    if D >= 2:
        cheb = np.polynomial.Chebyshev.interpolate(lambda t: gegenbauer_series(n, c, t), D, domain=[-1.0, s])
        r = cheb.deriv().roots()
        r = r[np.abs(r.imag) < 1e-7].real
        pts.append(r[(r > -1.0) & (r < s)])
    pts = np.concatenate(pts)
    return pts, gegenbauer_series(n, c, pts)


def _certify(n: int, s: float, coefficients) -> tuple[float, Fraction, np.ndarray]:
    """Prove an upper bound on A(n, s) from f = sum c_k G_k: (value, excursion delta, coefficients as floats).

    ``coefficients`` are floats (taken as their exact binary values) or exact Fractions. Negative
    c_k (k >= 1) are set to 0 and c is scaled to c_0 = 1; that exact polynomial is the one
    certified. The excursion delta starts at the largest EXACT value of f at its float-located
    local maxima (plus a hair) and is then PROVEN: f - delta < 0 on [-1, s] by an exact Sturm count
    in rational arithmetic (the G_k built exactly by the recursion, s taken as the exact binary
    value of the float). Then g = f - delta has g_0 = 1 - delta > 0, g_k >= 0 and g <= 0 on
    [-1, s], so A(n, s) <= g(1)/g_0 = (f(1) - delta)/(1 - delta) (Delsarte-Goethals-Seidel). If the
    proof fails (a maximum was missed), the slack above the guess grows 16-fold and the proof is
    retried; value inf if it never succeeds.
    """
    if not all(isinstance(x, Fraction) or math.isfinite(float(x)) for x in coefficients):
        return math.inf, Fraction(0), np.asarray(coefficients, dtype=np.float64)
    q = [x if isinstance(x, Fraction) else Fraction(float(x)) for x in coefficients]
    if q[0] <= 0:
        return math.inf, Fraction(0), np.asarray([float(x) for x in q])
    q = [q[0]] + [max(x, Fraction(0)) for x in q[1:]]
    q = [x / q[0] for x in q]
    c = np.array([float(x) for x in q])
    exact = gegenbauer_series_power_coefficients(n, q)
    pts, _ = _local_maxima(n, c, s)
    guess = max([Fraction(0)] + [polynomial_value(exact, Fraction(float(t))) for t in pts])
    scale = float(np.max(np.abs(c) @ np.abs(gegenbauer(n, len(c) - 1, pts))))
    slack = Fraction(1e-9) * guess + Fraction(1e-6 * np.finfo(np.float64).eps * scale)
    total = sum(q, Fraction(0))
    lo, hi = Fraction(-1), Fraction(s)
    for _ in range(14):
        delta = guess + slack
        if delta >= 1:
            break
        g = list(exact)
        g[0] -= delta
        if is_negative_on(g, lo, hi):
            return _round_up((total - delta) / (1 - delta)), delta, c
        slack *= 16
    return math.inf, Fraction(0), c


def _solve_grid_lp(G: np.ndarray, scale: float):
    """min sum_k f_k s.t. sum_k f_k G_k(t_j) <= -1, f_k >= 0 (variables f_k / scale, for HiGHS' tolerances)."""
    D = G.shape[0] - 1
    res = optimize.linprog(np.ones(D), A_ub=scale * G[1:].T, b_ub=-np.ones(G.shape[1]), bounds=(0, None),
                           method="highs", options={"primal_feasibility_tolerance": 1e-9,
                                                    "dual_feasibility_tolerance": 1e-9})
    if res.status != 0 or res.x is None:
        return None, res.message
    return np.concatenate([[1.0], scale * np.maximum(res.x, 0.0)]), res.message


def delsarte_lp_bound(n: int, s: float, *, degree: int | None = None, grid_size: int | None = None,
                      exchange_steps: int = 10) -> DelsarteLPBound:
    """The Delsarte linear-programming bound on A(n, s), CERTIFIED: ``.value`` is a proven upper bound.

    Theorem (Delsarte-Goethals-Seidel 1977; Kabatiansky-Levenshtein 1978): if f = sum_{k<=D} f_k G_k^{(n)}
    with f_0 > 0, f_k >= 0 and f(t) <= 0 on [-1, s], then A(n, s) <= f(1)/f_0 = sum_k f_k / f_0.

    1. LP: fix f_0 = 1 and minimize sum_{k>=1} f_k subject to f(t_j) <= 0 on Chebyshev-Lobatto nodes
       t_j of [-1, s] (scipy HiGHS). ``.raw`` is this grid optimum, a relaxation that can fall below
       the truth (196559.5 < 196560 for n = 24, s = 1/2, see the notes).
    2. Exchange: the local maxima of f on [-1, s] (with clusters of points around them) join the
       constraints and the LP is solved again, so the polynomial's positive excursion shrinks.
    3. Certificate: f's excursion is bounded by an exact rational Sturm-sequence proof and
       subtracted from f_0 (see ``_certify``): ``.value`` = (f(1) - delta)/(1 - delta) >= A(n, s).
    When D >= m (Levenshtein's degree), Levenshtein's polynomial is also a feasible point of this LP;
    it is certified the same way, and ``.value`` is the smaller of the two certified values
    (``.source`` says which), so the result never exceeds L(n, s) by more than rounding.

    s is taken as the exact binary value of the float given (so s = 0.5 is exactly 1/2).

    Args:
      n: dimension, n >= 2.
      s: maximal inner product in [-1, 1).
      degree: largest Gegenbauer degree D (default max(40, m + 10), m the Levenshtein degree).
      grid_size: initial Chebyshev nodes (default 1000).
      exchange_steps: at most this many re-solves with exchange points.

    Returns:
      :class:`DelsarteLPBound` with ``.value`` (certified), ``.raw`` (grid optimum), ``.coefficients``.

    Raises:
      ValueError: bad n, s, degree or grid size, or a Levenshtein value above ``LP_MAX_VALUE``
      (float64 LP coefficients of that size cannot resolve f <= 0; use the Levenshtein bound).
    """
    n = _check_n(n, low=2)
    s = _check_s(s)
    lev = levenshtein(n, s)
    D = max(24, lev.m + 10) if degree is None else check_int(degree, "degree", low=1)
    M = 1000 if grid_size is None else check_int(grid_size, "grid_size", low=2)
    exchange_steps = check_int(exchange_steps, "exchange_steps", low=0)
    if not lev.value <= LP_MAX_VALUE:
        raise ValueError(f"the LP bound is not computed for L(n, s) = e^{lev.log_value:.1f} > {LP_MAX_VALUE:g}: "
                         "float64 LP coefficients of that size cannot resolve f <= 0; use levenshtein(n, s)")
    scale = max(1.0, lev.value)
    pts = _chebyshev_grid(M, s)
    status = []
    best, best_estimate, raw = None, math.inf, math.nan
    for step in range(exchange_steps + 1):
        c, message = _solve_grid_lp(gegenbauer(n, D, pts), scale)
        if c is None:  # a failed re-solve keeps the best polynomial so far; only step 0 failing matters
            status.append(f"{'LP failed' if step == 0 else f'exchange step {step} stopped'}: {message}")
            break
        if step == 0:
            raw = float(c.sum())
        crit, vals = _local_maxima(n, c, s)
        excess = max(0.0, float(vals.max()))
        estimate = (c.sum() - excess) / (1 - excess) if excess < 1 else math.inf
        stalled = estimate >= best_estimate * (1 - 1e-11)
        if estimate < best_estimate:
            best, best_estimate = c, estimate
        if excess <= 1e-11 or (stalled and excess <= 1e-8):
            break
        new = []
        for q in crit[vals > -1e-9]:
            gap = float(np.min(np.abs(pts - q)))
            if gap > 0:
                new.append(q + gap * np.concatenate([[0.0], 2.0 ** -np.arange(12), -(2.0 ** -np.arange(12))]))
        if not new:
            break
        pts = np.unique(np.clip(np.concatenate([pts, *new]), -1.0, s))
    lp_value, lp_delta, lp_coeffs = (math.inf, Fraction(0), None) if best is None else _certify(n, s, best)
    lev_value, lev_delta, lev_coeffs = math.inf, Fraction(0), None
    if lev.m <= D:
        lev_value, lev_delta, lev_coeffs = _certify(n, s, levenshtein_polynomial(n, s, exact=True))
    if lp_value == math.inf and best is not None:
        status.append("certification of the LP solution failed")
    if lev_value < lp_value:
        value, delta, coeffs, source = lev_value, lev_delta, lev_coeffs, "Levenshtein polynomial"
    else:
        value, delta, coeffs, source = lp_value, lp_delta, lp_coeffs, "LP solution"
    if coeffs is None:
        coeffs = np.ones(1)
    return DelsarteLPBound(
        name="Delsarte LP (certified)", value=value, log_value=math.log(value), n=n, s=s,
        note=f"degree {D}, {M}-node Chebyshev grid plus exchange; certified by exact Sturm sequences",
        raw=raw, coefficients=coeffs, excursion=_round_up(delta), degree=D, grid_size=M,
        constraints=len(pts), source=source, lp_value=lp_value, levenshtein_value=lev_value,
        certificate="f - excursion < 0 on [-1, s]: exact rational Sturm count (no roots, negative at -1)",
        status="; ".join(["ok" if math.isfinite(value) and best is not None else "failed"] + status),
    )


# ------------------------------------------------------------------------- volume and Rankin


def volume_bound(n: int, s: float) -> Bound:
    """Cap-packing (volume) bound A(n, s) <= 1 / mu_n(theta/2), theta = arccos s.

    The caps of angular radius theta/2 around the code points have disjoint interiors.
    """
    n = _check_n(n)
    s = _check_s(s)
    theta = math.acos(s)
    return _upper("volume (cap packing)", -log_cap_measure(n, theta / 2), n, s)


def rankin_cap_bound(n: int, s: float) -> Bound:
    """Rankin's (1955) cap bound for 0 < s < 1, theta = arccos s, sin beta = sqrt(2) sin(theta/2):

        A(n, s) <= sqrt(pi) Gamma((n-1)/2) sin(beta) tan(beta)
                   / (2 Gamma(n/2) integral_0^beta sin^{n-2}(phi) (cos phi - cos beta) dphi).

    Weak for small n but ~ sqrt(pi/8) n^{3/2} 2^{n/2} at s = 1/2, exponentially better than the
    volume bound. The integral is done with sin^{n-2}(beta) factored out (log domain), so large n
    neither underflows nor loses the peak at phi = beta. The formula blows up as s -> 0+; below
    the s_n* where it is smallest it is evaluated at s_n* instead (valid since A(n, s) <= A(n, s_n*)),
    which keeps the bound nondecreasing in s. Not applicable (value inf) for s <= 0, where
    :func:`exact_bound` is exact.
    """
    n = _check_n(n, low=2)
    s = _check_s(s)
    name = "Rankin cap bound"
    if s <= 0:
        return _not_applicable(name, n, s, "needs 0 < s < 1; for s <= 0 the exact Rankin value applies")
    turning = _rankin_turning_point(n)
    log_value = _rankin_log(n, max(s, turning))
    note = "" if s >= turning else f"evaluated at s' = {turning:.6g} > s, where it is smallest (A(n, s) <= A(n, s'))"
    return _upper(name, log_value, n, s, note=note)


@lru_cache(maxsize=256)
def _rankin_turning_point(n: int) -> float:
    """The s in (0, 1) minimizing Rankin's formula (it blows up as s -> 0+, where tan beta -> infinity)."""
    res = optimize.minimize_scalar(lambda s: _rankin_log(n, s), bounds=(1e-9, 0.99), method="bounded",
                                   options={"xatol": 1e-10})
    return float(res.x)


def _rankin_log(n: int, s: float) -> float:
    theta = math.acos(s)
    beta = math.asin(min(1.0, math.sqrt(2.0) * math.sin(theta / 2)))
    log_sin_beta = math.log(math.sin(beta))
    cos_beta = math.cos(beta)

    def integrand(phi):  # sin^{n-2}(phi) / sin^{n-2}(beta) * (cos phi - cos beta)
        if phi <= 0:
            return 0.0
        return math.exp((n - 2) * (math.log(math.sin(phi)) - log_sin_beta)) * (math.cos(phi) - cos_beta)

    width = 1.0 / max(1.0, (n - 2) / math.tan(beta))
    breaks = sorted({max(beta - c * width, beta / 2) for c in (1, 4, 16, 64)} - {beta})
    integral, _ = integrate.quad(integrand, 0.0, beta, points=breaks, limit=400, epsabs=0.0, epsrel=1e-11)
    log_integral = math.log(integral) + (n - 2) * log_sin_beta
    return float(0.5 * math.log(math.pi) + special.gammaln((n - 1) / 2) + math.log(math.sin(beta) * math.tan(beta))
                 - math.log(2.0) - special.gammaln(n / 2) - log_integral)


# --------------------------------------------------------------------------------- lower bound


def csw_lower_bound(n: int, s: float) -> Bound:
    """Chabauty-Shannon-Wyner: A(n, s) >= 1 / mu_n(arccos s). NON-CONSTRUCTIVE.

    A maximal code (no point can be added) has its closed caps {y : <y, c> >= s} covering the sphere,
    so it has at least 1/mu_n(theta) points. No explicit code is given; greedy insertion
    (:func:`constellations.codes.random_greedy_code`) approximates such a maximal code.
    """
    n = _check_n(n)
    s = _check_s(s)
    log_value = -log_cap_measure(n, math.acos(s))
    return Bound(name="Chabauty-Shannon-Wyner (non-constructive)", value=_exp(log_value), log_value=log_value,
                 n=n, s=s, kind="lower", constructive=False,
                 note="existence of a code of this size; no construction")


# ------------------------------------------------------------------------------- best of them


@dataclass(frozen=True, eq=False)
class BestUpperBound(Bound):
    """The smallest applicable upper bound; ``candidates`` holds every bound that was computed."""

    candidates: tuple = ()


def best_upper_bound(n: int, s: float, *, use_lp: bool | None = None) -> BestUpperBound:
    """min over the upper bounds that apply at (n, s), with the name of the one attaining it.

    The candidates: :func:`exact_bound` (returned at once when it applies), Levenshtein,
    the certified Delsarte LP, the volume bound and Rankin's cap bound. Values are compared in
    logs, so large n (where values overflow float64) works.

    Args:
      n: dimension (>= 1).
      s: maximal inner product in [-1, 1).
      use_lp: include the certified LP (about 0.2-1 s); default: whenever the Levenshtein value is
        at most ``LP_MAX_VALUE``.

    Example:
      >>> b = best_upper_bound(8, 0.5); (round(b.value, 6), b.name)
      (240.0, 'Levenshtein')
    """
    n = _check_n(n)
    s = _check_s(s)
    exact = exact_bound(n, s)
    if exact is not None:
        return BestUpperBound(**{f: getattr(exact, f) for f in Bound.__dataclass_fields__}, candidates=(exact,))
    lev = levenshtein(n, s)
    candidates = [lev, volume_bound(n, s), rankin_cap_bound(n, s)]
    if use_lp or (use_lp is None and lev.value <= LP_MAX_VALUE):
        candidates.append(delsarte_lp_bound(n, s))
    best = min((b for b in candidates if b.applicable), key=lambda b: b.log_value)
    return BestUpperBound(**{f: getattr(best, f) for f in Bound.__dataclass_fields__}, candidates=tuple(candidates))


# ------------------------------------------------------------------------------ asymptotic rates


def _check_rate_angle(theta) -> float:
    theta = _check_theta(theta, "theta (the minimal angle, radians)", low_open=True)
    return theta


def kl_rate(theta: float) -> float:
    """ASYMPTOTIC Kabatiansky-Levenshtein (1978) bound on R(theta) = limsup_n (1/n) log2 A(n, cos theta).

    For 0 < theta < pi/2, with x = sin theta:

        R(theta) <= (1 + x)/(2x) log2((1 + x)/(2x)) - (1 - x)/(2x) log2((1 - x)/(2x)),

    and R = 0 for theta >= pi/2. Holds only as n -> infinity (it hides a 2^{o(n)} factor): never a
    finite-n bound. KL(60 deg) = 0.40141.
    """
    theta = _check_rate_angle(theta)
    if theta >= math.pi / 2:
        return 0.0
    x = math.sin(theta)
    a, b = (1 + x) / (2 * x), (1 - x) / (2 * x)
    return a * math.log2(a) - (b * math.log2(b) if b > 0 else 0.0)


@lru_cache(maxsize=1)
def kl_refinement_point() -> tuple[float, float]:
    """(theta*, c*): the minimizer and minimum over theta' of R_KL(theta') + (1/2) log2(1 - cos theta').

    theta* = 62.9974 deg, c* = -0.0990558 (``spherical_codes.md`` section 8), computed here.
    """
    res = optimize.minimize_scalar(lambda t: kl_rate(t) + 0.5 * math.log2(1 - math.cos(t)),
                                   bounds=(0.8, 1.5), method="bounded", options={"xatol": 1e-12})
    return float(res.x), float(res.fun)


def kl_rate_refined(theta: float) -> float:
    """ASYMPTOTIC Kabatiansky-Levenshtein rate with its refinement below theta* = 62.9974 deg.

    R(theta) <= min_{theta <= theta' < pi/2} [R_KL(theta') + (1/2) log2((1 - cos theta') / (1 - cos theta))],
    i.e. -(1/2) log2(1 - cos theta) + c* for theta <= theta* (c* = -0.099056) and R_KL(theta)
    above it. Kissing: R(60 deg) <= 0.40094. An n -> infinity statement only.
    """
    theta = _check_rate_angle(theta)
    theta_star, c_star = kl_refinement_point()
    if theta >= theta_star:
        return kl_rate(theta)
    return -0.5 * math.log2(1 - math.cos(theta)) + c_star


def csw_rate(theta: float) -> float:
    """ASYMPTOTIC Chabauty-Shannon-Wyner lower rate: R(theta) >= -log2 sin theta (0 for theta >= pi/2).

    CSW(60 deg) = 0.20752. An n -> infinity statement (its finite-n form is :func:`csw_lower_bound`).
    """
    theta = _check_rate_angle(theta)
    if theta >= math.pi / 2:
        return 0.0
    return -math.log2(math.sin(theta))


# ------------------------------------------------------------------------ dimension of a code


@dataclass(frozen=True)
class CodeDimensionBounds:
    """How small the dimension of a code of N points with maximal inner product s can be, bracketed:
    ``dimension`` <= the smallest possible dimension <= ``construction_dimension``.

    Attributes:
      N, s: the request.
      dimension: the smallest n not ruled out by the upper bounds (every smaller n has some upper
        bound < N: no such code exists there).
      ruled_out_by: name of a bound that rules out ``dimension - 1`` (the first found, in the order exact,
        Levenshtein, volume, Rankin, LP; None when dimension = 1).
      construction_dimension: the smallest n in which a construction of :mod:`constellations.codes`
        has >= N points with maximal inner product <= s (None if none up to ``n_max``).
      construction: which construction (take any N of its points).
      csw_dimension: the smallest n where the (non-constructive) CSW bound guarantees N points.
    """

    N: int
    s: float
    dimension: int
    ruled_out_by: str | None
    construction_dimension: int | None
    construction: str | None
    csw_dimension: int | None


def _ruling_out(n: int, s: float, N: int) -> Bound | None:
    """The first of exact / Levenshtein / volume / Rankin found below N at (n, s) (computed lazily), or None."""
    exact = exact_bound(n, s)
    if exact is not None:
        return None if _allows(exact, N) else exact
    for bound in (levenshtein, volume_bound, rankin_cap_bound):
        b = bound(n, s)
        if b.applicable and not _allows(b, N):
            return b
    return None


def _allows(bound: Bound, N: int) -> bool:
    # A relative slack of 1e-9 keeps a bound evaluated in floating point (e.g. L(8, 1/2) =
    # 239.99999999999997) from ruling out a dimension in which N points exist.
    return bound.log_value >= math.log(N) + math.log1p(-1e-9)


def code_dimension_bounds(N: int, s: float, *, n_max: int = 100_000, use_lp: bool = True) -> CodeDimensionBounds:
    """Bounds on the dimension of a code of N points at maximal inner product s: the smallest dimension
    allowed by the upper bounds on A(n, s) (a lower bound), and the smallest dimension in which a
    construction of the package achieves N points (an upper bound).

    (Called ``bounds.necessary_dimension`` before; that name now belongs only to
    :func:`constellations.dimension.necessary_dimension`, the report for (m, b_rel)-constellations.)

    Upper side: scan n = 1, 2, ... with the cheap bounds (exact, Levenshtein, volume, Rankin) to the
    first n they allow, then let the certified LP rule out further n (it is tighter). A(n, s) is
    nondecreasing in n, so every n below the answer is impossible. For a margin m of a code-type
    constellation (U = V) use s = 1 - 2m (``theory.md`` section 3).

    Args:
      N: number of points (>= 1).
      s: maximal inner product in [-1, 1).
      n_max: give up (construction side: report None) beyond this dimension.
      use_lp: also use the certified LP bound.
    """
    from .codes import best_construction  # codes does not import bounds; local import keeps it that way

    N = check_int(N, "N (the number of points)", low=1)
    s = _check_s(s)
    n_max = check_int(n_max, "n_max", low=1)
    if s < 0 and N >= 2 and s < -1 / (N - 1) - _FLOOR_SLACK:  # N > floor(1 - 1/s): the simplex bound
        raise ValueError(f"no {N} points have maximal inner product s = {s} < 0 in any dimension: "
                         f"the simplex bound allows at most floor(1 - 1/s) = {math.floor(1 - 1 / s)}")
    n, previous = 0, None
    while True:
        n += 1
        if n > n_max:
            raise ValueError(f"no dimension n <= n_max = {n_max} is allowed by the bounds for N = {N}, s = {s}")
        ruling = _ruling_out(n, s, N)
        if ruling is not None:
            previous = ruling
            continue
        if use_lp and exact_bound(n, s) is None and levenshtein(n, s).value <= LP_MAX_VALUE:
            lp = delsarte_lp_bound(n, s)
            if not _allows(lp, N):
                previous = lp
                continue
        break
    construction = best_construction(N, s, n_max=n_max)
    return CodeDimensionBounds(
        N=N, s=s, dimension=n, ruled_out_by=None if previous is None else previous.name,
        construction_dimension=None if construction is None else construction[0],
        construction=None if construction is None else construction[1],
        csw_dimension=_csw_dimension(N, s, n_max),
    )


def _csw_dimension(N: int, s: float, n_max: int) -> int | None:
    """Smallest n <= n_max with 1/mu_n(arccos s) >= N (CSW guarantees N points), by bisection.

    1/mu_n(theta) is nondecreasing in n; for s <= 0 (theta >= pi/2) it is at most 2 in every n >= 2.
    """
    if N == 1:
        return 1
    theta, log_needed = math.acos(s), math.log(N - 1)

    def enough(d):  # A(d, s) >= ceil(1/mu) >= N as soon as 1/mu > N - 1
        return -log_cap_measure(d, theta) > log_needed

    if enough(1):
        return 1
    if not enough(n_max):
        return None
    lo, hi = 1, n_max  # enough(lo) is False, enough(hi) is True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi
