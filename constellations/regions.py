"""Which (m, b_rel) are possible, and how fast the number of pairs can grow with d (theory.md C6, C7, C8).

Pure formulas (no search, no codes): the region C7 allows, the code inner product of C6, and the
asymptotic size exponents of C6 and C8. The report on how many dimensions N pairs need is
:func:`constellations.dimension.necessary_dimension`; the constructions that realize C6 are in
:mod:`constellations.constructions`.

- C7 (Thm 3.4, the impossible region): every (m, b_rel)-constellation of N pairs has
  m + b_rel <= 1 and (3 - 4/N) m <= 1 + b_rel. Hence m <= 1 / (2 - 2/N), tight at the regular simplex.
- C6 (Thm 3.3, lower bound on the size): for m + b_rel < 1 and 3m < 1 + b_rel, with
  alpha = (1 + b_rel - 3m) / (1 + b_rel + m), an alpha-code gives an (m, b_rel)-constellation, so
  ln N_max(d) / d >= -(1/2) ln(1 - alpha^2) asymptotically (Shannon-Wyner).
- C8 (Thm 3.5, upper bound on the size): ln N_max(d) / d <= (1/2) ln((1 + b_rel + m) / (4m)) + o(1).

The exponents are asymptotic statements (d -> infinity): the functions say so in their names and
results, and are never mixed with the finite-d spherical-code bounds of :mod:`constellations.bounds`.
All exponents are in nats per dimension (ln N / d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_int, check_margin, check_threshold


def _check_m_b(m, b_rel):
    check_margin(m)
    check_threshold(b_rel, "b_rel (relative bias)")


@dataclass(frozen=True)
class RegionCheck:
    """Result of the C7 test for (m, b_rel) and N pairs (N = None: the N -> infinity limit).

    Attributes:
      feasible: True iff no inequality of C7 is violated.
      violated: the violated inequalities, spelled out with their values.
      max_margin: the largest margin C7 allows for this N, 1 / (2 - 2/N) (1/2 in the limit).
    """

    feasible: bool
    violated: tuple[str, ...]
    max_margin: float


def impossible_region(m, b_rel, N=None, *, atol: float = 1e-12) -> RegionCheck:
    """C7 (Thm 3.4): check m + b_rel <= 1 and (3 - 4/N) m <= 1 + b_rel (3m <= 1 + b_rel when N is None)."""
    _check_m_b(m, b_rel)
    coef = 3.0
    if N is not None:
        N = check_int(N, "N", low=2)
        coef = 3.0 - 4.0 / N
    violated = []
    if m + b_rel > 1 + atol:
        violated.append(f"m + b_rel <= 1 fails: m + b_rel = {m + b_rel:.6g}")
    if coef * m > 1 + b_rel + atol:
        lhs = "3m" if N is None else f"(3 - 4/N) m with N = {N}"
        violated.append(f"{lhs} <= 1 + b_rel fails: {coef * m:.6g} > {1 + b_rel:.6g}")
    max_margin = 0.5 if N is None else 1.0 / (2.0 - 2.0 / N)
    return RegionCheck(not violated, tuple(violated), max_margin)


def require_feasible(m, b_rel, N=None) -> None:
    """Raise ValueError naming the violated C7 inequality if no (m, b_rel)-constellation of N pairs exists."""
    check = impossible_region(m, b_rel, N)
    if not check.feasible:
        raise ValueError(f"no ({m}, {b_rel})-constellation exists (Thm 3.4, C7): " + "; ".join(check.violated))


def c6_code_inner_product(m, b_rel) -> float:
    """alpha = (1 + b_rel - 3m) / (1 + b_rel + m): the code's maximal inner product in Thm 3.3 (C6)."""
    _check_m_b(m, b_rel)
    if not (m > 0 and m + b_rel < 1 and 3 * m < 1 + b_rel):
        raise ValueError(f"Thm 3.3 (C6) needs m > 0, m + b_rel < 1 and 3m < 1 + b_rel; got m = {m}, b_rel = {b_rel}")
    return (1 + b_rel - 3 * m) / (1 + b_rel + m)


def asymptotic_lower_size_exponent(m, b_rel) -> float:
    """C6 (asymptotic): ln N_max / d >= -(1/2) ln(1 - alpha^2), alpha from :func:`c6_code_inner_product`."""
    alpha = c6_code_inner_product(m, b_rel)
    return float(-0.5 * np.log1p(-alpha * alpha))


def asymptotic_upper_size_exponent(m, b_rel) -> float:
    """C8 (asymptotic): ln N_max / d <= (1/2) ln((1 + b_rel + m) / (4m)) + o(1)."""
    _check_m_b(m, b_rel)
    if not (m > 0 and m + b_rel <= 1 and 3 * m <= 1 + b_rel):
        raise ValueError(f"Thm 3.5 (C8) needs m > 0, m + b_rel <= 1 and 3m <= 1 + b_rel; got m = {m}, b_rel = {b_rel}")
    return float(0.5 * np.log((1 + b_rel + m) / (4 * m)))


def asymptotic_dimension_estimates(N, m, b_rel) -> dict:
    """Asymptotic dimension estimates for N pairs at (m, b_rel), from the exponents of C8 and C6.

    "necessary (C8)": d >= ln N / upper exponent = 2 ln N / ln((1 + b_rel + m) / (4m)).
    "sufficient (C6)": d ~ ln N / lower exponent (an alpha-code of N points, plus the lift).
    Both hold only up to o(1) terms in the exponent: they are estimates, not bounds, at finite d.
    """
    N = check_int(N, "N", low=2)
    require_feasible(m, b_rel, N)
    out = {"asymptotic": True}
    try:
        out["necessary_C8"] = float(np.log(N) / asymptotic_upper_size_exponent(m, b_rel))
    except ValueError as e:
        out["necessary_C8"] = None
        out["necessary_C8_note"] = str(e)
    try:
        out["sufficient_C6"] = float(np.log(N) / asymptotic_lower_size_exponent(m, b_rel))
    except ValueError as e:
        out["sufficient_C6"] = None
        out["sufficient_C6_note"] = str(e)
    return out
