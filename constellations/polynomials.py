"""Orthogonal polynomials for spherical codes: normalized Gegenbauer and adjacent Jacobi polynomials.

Conventions (``shared/docs/spherical_codes.md`` section 1). Points lie on S^{n-1}, alpha = (n - 3) / 2.

* Normalized Gegenbauer (zonal) polynomials G_k = G_k^{(n)}, orthogonal for the weight
  w(t) = (1 - t^2)^{(n-3)/2} on [-1, 1] and normalized by G_k(1) = 1:

      G_0 = 1,  G_1 = t,  G_k = [(2k + n - 4) t G_{k-1} - (k - 1) G_{k-2}] / (k + n - 3).

  For n = 2 they are the Chebyshev polynomials T_k, for n = 3 the Legendre polynomials. The
  recursion is used instead of ``scipy.special.eval_gegenbauer``, which returns 0 for n = 2
  (lambda = 0) and whose unnormalized values overflow for large degree and dimension.
* Jacobi polynomials normalized at 1, p_k = P_k^{(a, b)} / P_k^{(a, b)}(1), by the three-term recursion

      2 (k + a)(k + a + b)(2k + a + b - 2) p_k
          = (2k + a + b - 1) [(2k + a + b)(2k + a + b - 2) t + a^2 - b^2] p_{k-1}
            - 2 (k - 1)(k + b - 1)(2k + a + b) p_{k-2},

  with p_1 = 1 + (a + b + 2)(t - 1) / (2 (a + 1)). With a = b = alpha this is G_k again.
* Adjacent Jacobi polynomials P_k^{a,b} = p_k for the parameters (alpha + a, alpha + b), a, b in {0, 1};
  t_k^{a,b} denotes the largest zero of P_k^{a,b}, with the convention t_0^{1,1} = -1.
* The dimension of the space of degree-k spherical harmonics on S^{n-1},
  r_k = binom(n + k - 1, k) - binom(n + k - 3, k - 2); by the addition formula
  integral G_k^2 dsigma = 1 / r_k, so f = sum_k f_k G_k has f_k = r_k * integral f G_k dsigma.

Everything is float64 NumPy, except the exact part (``fractions.Fraction``), which serves the
rigorous certificates of :mod:`constellations.bounds` and is the package's one home for exact
polynomial arithmetic: :func:`gegenbauer_power_coefficients`, :func:`jacobi_power_coefficients`,
:func:`gegenbauer_series_power_coefficients`, :func:`polynomial_value`, :func:`polynomial_product`
and the Sturm-sequence test :func:`is_negative_on`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy.linalg import eigvalsh_tridiagonal
from scipy.special import roots_jacobi

from ._validation import check_int


def _check_n(n, *, low: int = 2) -> int:
    return check_int(n, "n (the ambient dimension)", low=low)


def _points(t, name: str = "t (the points)") -> np.ndarray:
    """The evaluation points as a finite float64 array (NaN or inf would pass through the recursion)."""
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be real numbers (a scalar or an array); got {type(t).__name__}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {np.count_nonzero(~np.isfinite(arr))} NaN or inf value(s)")
    return arr


def _finite_values(out: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Refuse values that overflowed float64 (high degree far outside [-1, 1]) instead of returning inf."""
    if not np.all(np.isfinite(out)):
        raise ValueError(f"the polynomial values overflow float64 at |t| up to {float(np.max(np.abs(t))):g}; "
                         "these polynomials are meant for t in [-1, 1]")
    return out


def _coefficients(coefficients) -> np.ndarray:
    try:
        c = np.asarray(coefficients, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"coefficients must be a 1-D array of real numbers f_0..f_D; got {type(coefficients).__name__}") from None
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"coefficients must be a non-empty 1-D array f_0..f_D; got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("coefficients must be finite (NaN or inf found)")
    return c


def _check_parameters(a: float, b: float) -> tuple[float, float]:
    a, b = float(a), float(b)
    if not (np.isfinite(a) and np.isfinite(b)) or a <= -1 or b <= -1 or a + b < -1:
        raise ValueError(f"Jacobi parameters need a, b > -1 and a + b >= -1 (finite); got a = {a}, b = {b}")
    return a, b


def jacobi_normalized(k_max: int, a: float, b: float, t) -> np.ndarray:
    """p_k(t) = P_k^{(a, b)}(t) / P_k^{(a, b)}(1) for k = 0..k_max, by the normalized recursion.

    Args:
      k_max: largest degree (>= 0).
      a, b: Jacobi parameters, a, b > -1 and a + b >= -1 (every case on a sphere of dimension >= 2).
      t: points (any shape), usually in [-1, 1].

    Returns:
      float64 array of shape (k_max + 1, *shape(t)); row k holds p_k(t), so row k at t = 1 is 1.
    """
    k_max = check_int(k_max, "k_max", low=0)
    a, b = _check_parameters(a, b)
    t = _points(t)
    out = np.empty((k_max + 1,) + t.shape)
    out[0] = 1.0
    if k_max >= 1:
        out[1] = 1.0 + (a + b + 2.0) * (t - 1.0) / (2.0 * (a + 1.0))
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(2, k_max + 1):
            c = 2 * k + a + b
            lead = (c - 1.0) * c * (c - 2.0)
            shift = (c - 1.0) * (a * a - b * b)
            back = 2.0 * (k - 1) * (k + b - 1.0) * c
            den = 2.0 * (k + a) * (k + a + b) * (c - 2.0)
            out[k] = ((lead * t + shift) * out[k - 1] - back * out[k - 2]) / den
    return _finite_values(out, t)


def gegenbauer(n: int, k_max: int, t) -> np.ndarray:
    """Normalized Gegenbauer polynomials G_k^{(n)}(t), k = 0..k_max (G_k(1) = 1, |G_k| <= 1 on [-1, 1]).

    G_0 = 1, G_1 = t, G_k = [(2k + n - 4) t G_{k-1} - (k - 1) G_{k-2}] / (k + n - 3); for n = 2 this
    gives the Chebyshev polynomials T_k (the scipy lambda = 0 route returns zeros there).

    Args:
      n: ambient dimension, n >= 2 (points on S^{n-1}).
      k_max: largest degree (>= 0).
      t: points (any shape).

    Returns:
      float64 array of shape (k_max + 1, *shape(t)).

    Example:
      >>> gegenbauer(3, 2, 0.5)[2]   # Legendre P_2(1/2) = -1/8
      -0.125
    """
    n = _check_n(n)
    k_max = check_int(k_max, "k_max", low=0)
    t = _points(t)
    out = np.empty((k_max + 1,) + t.shape)
    out[0] = 1.0
    if k_max >= 1:
        out[1] = t
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(2, k_max + 1):
            out[k] = ((2 * k + n - 4) * t * out[k - 1] - (k - 1) * out[k - 2]) / (k + n - 3)
    return _finite_values(out, t)


def gegenbauer_series(n: int, coefficients, t) -> np.ndarray:
    """f(t) = sum_k f_k G_k^{(n)}(t) for coefficients f_0..f_D (float64, shape of t)."""
    n = _check_n(n)
    c = _coefficients(coefficients)
    t = _points(t)
    prev, cur = np.ones_like(t), t.copy()
    total = c[0] * prev
    if c.size > 1:
        total = total + c[1] * cur
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(2, c.size):
            prev, cur = cur, ((2 * k + n - 4) * t * cur - (k - 1) * prev) / (k + n - 3)
            total = total + c[k] * cur
    return _finite_values(total, t)


def gegenbauer_series_derivative(n: int, coefficients, t) -> np.ndarray:
    """f'(t) for f = sum_k f_k G_k^{(n)}, by differentiating the recursion term by term.

    G'_k = [(2k + n - 4)(G_{k-1} + t G'_{k-1}) - (k - 1) G'_{k-2}] / (k + n - 3).
    """
    n = _check_n(n)
    c = _coefficients(coefficients)
    t = _points(t)
    g_prev, g_cur = np.ones_like(t), t.copy()
    d_prev, d_cur = np.zeros_like(t), np.ones_like(t)
    total = np.zeros_like(t)
    if c.size > 1:
        total = total + c[1] * d_cur
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(2, c.size):
            den = k + n - 3
            d_new = ((2 * k + n - 4) * (g_cur + t * d_cur) - (k - 1) * d_prev) / den
            g_new = ((2 * k + n - 4) * t * g_cur - (k - 1) * g_prev) / den
            g_prev, g_cur, d_prev, d_cur = g_cur, g_new, d_cur, d_new
            total = total + c[k] * d_cur
    return _finite_values(total, t)


def adjacent_jacobi(n: int, k_max: int, a: int, b: int, t) -> np.ndarray:
    """Adjacent Jacobi polynomials P_k^{a,b}(t) = P_k^{(alpha+a, alpha+b)}(t) / P_k^{(alpha+a, alpha+b)}(1).

    alpha = (n - 3) / 2 and a, b in {0, 1}; P_k^{0,0} = G_k^{(n)}. Shape (k_max + 1, *shape(t)).
    """
    n = _check_n(n)
    if a not in (0, 1) or b not in (0, 1):
        raise ValueError(f"adjacent Jacobi polynomials take a, b in {{0, 1}}; got a = {a!r}, b = {b!r}")
    alpha = (n - 3) / 2
    return jacobi_normalized(k_max, alpha + a, alpha + b, t)


def jacobi_log_value(k: int, a: float, b: float, t: float) -> tuple[float, float]:
    """p_k(t) = P_k^{(a,b)}(t) / P_k^{(a,b)}(1) at one point as (mantissa, log_scale), p_k = mantissa * e^log_scale.

    The same recursion as :func:`jacobi_normalized`, rescaled whenever the values get small, so
    that degrees in the thousands (large n, s near 1) neither underflow nor overflow.
    """
    k = check_int(k, "k", low=0)
    a, b = _check_parameters(a, b)
    t = _points(t)
    if t.ndim != 0:
        raise ValueError(f"t must be a single point; got shape {t.shape}")
    t = float(t)
    if k == 0:
        return 1.0, 0.0
    prev, cur, log_scale = 1.0, 1.0 + (a + b + 2.0) * (t - 1.0) / (2.0 * (a + 1.0)), 0.0
    for j in range(2, k + 1):
        c = 2 * j + a + b
        new = (((c - 1.0) * c * (c - 2.0) * t + (c - 1.0) * (a * a - b * b)) * cur
               - 2.0 * (j - 1) * (j + b - 1.0) * c * prev) / (2.0 * (j + a) * (j + a + b) * (c - 2.0))
        prev, cur = cur, new
        size = max(abs(prev), abs(cur))
        if 0 < size < 1e-150 or size > 1e150:
            prev, cur = prev / size, cur / size
            log_scale += math.log(size)
    return cur, log_scale


def jacobi_largest_zero(k: int, a: float, b: float) -> float:
    """Largest zero of P_k^{(a, b)} (k >= 1), the top eigenvalue of the symmetric Jacobi matrix.

    The Jacobi matrix of the orthonormal polynomials has diagonal
    (b^2 - a^2) / ((2j + a + b)(2j + a + b + 2)) and off-diagonal
    sqrt(4 j (j + a)(j + b)(j + a + b) / ((2j + a + b)^2 (2j + a + b + 1)(2j + a + b - 1))); only the
    top eigenvalue is computed (O(k) work), so k in the thousands is cheap. The j = 0 diagonal and
    j = 1 off-diagonal entries are written in their cancelled forms (a + b = 0 or -1 otherwise
    gives 0/0).
    """
    k = check_int(k, "k", low=1)
    a, b = _check_parameters(a, b)
    j = np.arange(k, dtype=np.float64)
    c = 2 * j + a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        diag = (b * b - a * a) / (c * (c + 2))
    diag[0] = (b - a) / (a + b + 2)
    if k == 1:
        return float(diag[0])
    j = np.arange(1, k, dtype=np.float64)
    c = 2 * j + a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        off2 = 4 * j * (j + a) * (j + b) * (j + a + b) / (c * c * (c + 1) * (c - 1))
    off2[0] = 4 * (1 + a) * (1 + b) / ((2 + a + b) ** 2 * (3 + a + b))
    top = eigvalsh_tridiagonal(diag, np.sqrt(off2), select="i", select_range=(k - 1, k - 1))
    return float(top[0])


def adjacent_jacobi_largest_zero(n: int, k: int, a: int, b: int) -> float:
    """t_k^{a,b}: the largest zero of P_k^{a,b} (alpha = (n - 3)/2), with t_0^{1,1} = -1 by convention."""
    n = _check_n(n)
    k = check_int(k, "k", low=0)
    if a not in (0, 1) or b not in (0, 1):
        raise ValueError(f"adjacent Jacobi polynomials take a, b in {{0, 1}}; got a = {a!r}, b = {b!r}")
    if k == 0:
        if (a, b) != (1, 1):
            raise ValueError("t_0^{a,b} is only defined (as -1) for a = b = 1")
        return -1.0
    alpha = (n - 3) / 2
    return jacobi_largest_zero(k, alpha + a, alpha + b)


def harmonic_dimension(n: int, k: int) -> int:
    """r_k = dim of degree-k spherical harmonics on S^{n-1} = binom(n+k-1, k) - binom(n+k-3, k-2) (exact int)."""
    n = _check_n(n)
    k = check_int(k, "k", low=0)
    return math.comb(n + k - 1, k) - (math.comb(n + k - 3, k - 2) if k >= 2 else 0)


def gegenbauer_coefficients(n: int, f, degree: int) -> np.ndarray:
    """Coefficients f_0..f_D of a polynomial f of degree <= D in the G_k^{(n)} basis.

    f_k = r_k * integral f G_k dsigma, with the integral over the inner-product density
    c_n (1 - t^2)^{(n-3)/2} done by (D + 2)-point Gauss-Jacobi quadrature (exact for degree <= 2D + 3).

    Args:
      n: ambient dimension (>= 2).
      f: vectorized callable t -> f(t).
      degree: D, an upper bound on the degree of f.
    """
    n = _check_n(n)
    degree = check_int(degree, "degree", low=0)
    alpha = (n - 3) / 2
    nodes, weights = roots_jacobi(degree + 2, alpha, alpha)
    weights = weights / weights.sum()
    G = gegenbauer(n, degree, nodes)
    r = np.array([float(harmonic_dimension(n, k)) for k in range(degree + 1)])
    values = np.asarray(f(nodes), dtype=np.float64)
    if values.ndim == 0:
        values = np.full(nodes.shape, float(values))
    if values.shape != nodes.shape or not np.all(np.isfinite(values)):
        raise ValueError(f"f must map an array of points in [-1, 1] to finite values of the same shape; "
                         f"got shape {values.shape} with {np.count_nonzero(~np.isfinite(values))} non-finite")
    return r * (G @ (weights * values))


@lru_cache(maxsize=64)
def _gegenbauer_power_rows(n: int, k_max: int) -> tuple[tuple[Fraction, ...], ...]:
    rows = [(Fraction(1),), (Fraction(0), Fraction(1))]
    for k in range(2, k_max + 1):
        a, b, den = Fraction(2 * k + n - 4), Fraction(k - 1), k + n - 3
        t_prev = (Fraction(0),) + rows[k - 1]  # t * G_{k-1}
        prev2 = rows[k - 2] + (Fraction(0),) * (k + 1 - len(rows[k - 2]))
        rows.append(tuple((a * x - b * y) / den for x, y in zip(t_prev, prev2)))
    return tuple(rows[: k_max + 1])


def gegenbauer_power_coefficients(n: int, k_max: int) -> list[list[Fraction]]:
    """Exact power-basis coefficients of G_0..G_{k_max}: row k lists c_{k,0..k} with G_k(t) = sum_i c_{k,i} t^i.

    Rational arithmetic (``fractions.Fraction``) with the same recursion as :func:`gegenbauer`, so the
    polynomials are exactly the G_k^{(n)} of the linear-programming bound (used to certify it).
    """
    n = _check_n(n)
    k_max = check_int(k_max, "k_max", low=0)
    return [list(row) for row in _gegenbauer_power_rows(n, k_max)]


# ----------------------------------------------------------------------------------------------
# Exact arithmetic on polynomials in the power basis: lists of Fractions (or ints), lowest degree
# first. The certificates of :mod:`constellations.bounds` are built and checked with these.


def jacobi_power_coefficients(k_max: int, a, b) -> list[list[Fraction]]:
    """Exact power-basis coefficients of p_i = P_i^{(a,b)} / P_i^{(a,b)}(1), i = 0..k_max.

    The recursion of :func:`jacobi_normalized` in rational arithmetic; ``a`` and ``b`` are taken as
    exact rationals (pass ``Fraction``s, e.g. Fraction(n - 3, 2) + 1). Row i lists the i + 1
    coefficients of p_i.
    """
    k_max = check_int(k_max, "k_max", low=0)
    a, b = Fraction(a), Fraction(b)
    _check_parameters(a, b)
    rows = [[Fraction(1)]]
    if k_max >= 1:
        slope = (a + b + 2) / (2 * (a + 1))
        rows.append([1 - slope, slope])
    for k in range(2, k_max + 1):
        c = 2 * k + a + b
        lead, shift = (c - 1) * c * (c - 2), (c - 1) * (a * a - b * b)
        back, den = 2 * (k - 1) * (k + b - 1) * c, 2 * (k + a) * (k + a + b) * (c - 2)
        p1 = rows[k - 1] + [Fraction(0)]
        p2 = rows[k - 2] + [Fraction(0), Fraction(0)]
        t_p1 = [Fraction(0)] + rows[k - 1]
        rows.append([(lead * x + shift * y - back * z) / den for x, y, z in zip(t_p1, p1, p2)])
    return rows


def gegenbauer_series_power_coefficients(n: int, coefficients) -> list[Fraction]:
    """Exact power-basis coefficients of f = sum_k f_k G_k^{(n)} for exact coefficients f_0..f_D."""
    c = [Fraction(x) for x in coefficients]
    rows = gegenbauer_power_coefficients(n, len(c) - 1)
    p = [Fraction(0)] * len(c)
    for k, ck in enumerate(c):
        if ck:
            for i, a in enumerate(rows[k]):
                p[i] += ck * a
    return p


def polynomial_value(p, x: Fraction) -> Fraction:
    """p(x) = sum_i p_i x^i exactly (Horner), for rational coefficients and a rational point."""
    total = Fraction(0)
    for coefficient in reversed(p):
        total = total * x + coefficient
    return total


def polynomial_product(p, q) -> list[Fraction]:
    """The coefficients of p * q (exact)."""
    out = [Fraction(0)] * (len(p) + len(q) - 1)
    for i, x in enumerate(p):
        if x:
            for j, y in enumerate(q):
                out[i + j] += x * y
    return out


def _primitive_integer(p) -> list[int]:
    """The integer polynomial with coprime coefficients that is a positive multiple of p (trailing zeros dropped)."""
    den = 1
    for x in p:
        x = Fraction(x)
        den = den * x.denominator // math.gcd(den, x.denominator)
    q = [int(Fraction(x) * den) for x in p]
    g = 0
    for x in q:
        g = math.gcd(g, x)
    q = [x // g for x in q] if g else q
    while q and q[-1] == 0:
        q.pop()
    return q


def _negated_remainder(a: list[int], b: list[int]) -> list[int]:
    """-(|lc b|^e a mod b), primitive: the next Sturm polynomial up to a positive factor."""
    a = list(a)
    db, lb = len(b) - 1, b[-1]
    sign, mult = (1 if lb > 0 else -1), abs(lb)
    while a and len(a) - 1 >= db:
        la, shift = a[-1], len(a) - 1 - db
        a = [mult * x for x in a]
        for i, bi in enumerate(b):
            a[shift + i] -= sign * la * bi
        a.pop()
        while a and a[-1] == 0:
            a.pop()
    g = 0
    for x in a:
        g = math.gcd(g, x)
    return [-(x // g) for x in a] if a else []


def _sign_at(p: list[int], x: Fraction) -> int:
    """Sign of p(x) for rational x = u/v, via the integer sum_i p_i u^i v^(deg - i)."""
    u, v, d = x.numerator, x.denominator, len(p) - 1
    total = sum(c * u**i * v ** (d - i) for i, c in enumerate(p))
    return (total > 0) - (total < 0)


def is_negative_on(p, a: Fraction, b: Fraction) -> bool:
    """True iff p(t) < 0 for every t in [a, b], decided exactly (no rounding anywhere).

    p has rational coefficients (lowest degree first); it is made a primitive integer polynomial,
    then p(a) < 0 is checked and Sturm's theorem counts its roots in (a, b] (none allowed).
    """
    p = _primitive_integer(p)
    a, b = Fraction(a), Fraction(b)
    if not p:
        return False
    if _sign_at(p, a) >= 0:
        return False
    if len(p) == 1 or a == b:
        return True
    seq = [p, [i * x for i, x in enumerate(p)][1:]]
    while len(seq[-1]) > 1:
        r = _negated_remainder(seq[-2], seq[-1])
        if not r:
            break
        seq.append(r)

    def changes(x):
        signs = [sg for sg in (_sign_at(q, x) for q in seq) if sg]
        return sum(1 for u, w in zip(signs, signs[1:]) if u != w)

    return changes(a) - changes(b) == 0
