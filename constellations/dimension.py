"""Which (m, b_rel) are possible, and how many pairs fit in dimension d (theory.md C6, C7, C8).

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


# Short names used by the experiments (E9); same functions.
lower_size_exponent = asymptotic_lower_size_exponent
upper_size_exponent = asymptotic_upper_size_exponent


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


@dataclass(frozen=True)
class DimensionReport:
    """How many dimensions N pairs need at margin m and relative bias b_rel (issue 4's report).

    Attributes:
      N, margin, relative_bias: the request.
      asymptotic_necessary_C8: 2 ln N / ln((1 + b_rel + m) / (4m)): C8's exponent turned into a dimension.
        Asymptotic (o(1) in the exponent): an estimate, not a bound at finite d.
      asymptotic_sufficient_C6: ln N / (-(1/2) ln(1 - alpha^2)): C6's (Shannon-Wyner) estimate.
      on_code_line: m + b_rel = 1, where a constellation is exactly a spherical code (U = V, s = 1 - 2m).
      code_bound_dimension: on the code line only, the smallest d that the rigorous finite-d spherical-code
        upper bounds do not rule out (:func:`constellations.bounds.code_dimension_bounds`); below it no
        such code exists. None off the line (no finite-d bound is known there).
      construction_dimension, construction: the smallest d in which the package builds one: on the code line
        a code of :mod:`constellations.codes`; off it, Theorem 3.3 (C6) applied to such an alpha-code
        (dimension n + 1, see :func:`constellations.constructions.theorem_3_3`).
      search_dimension: the smallest d in ``search_dims`` where the max-margin search (b_rel frozen) found
        an (m, b_rel)-constellation, verified from its vectors; None if not searched or not found.
    """

    N: int
    margin: float
    relative_bias: float
    asymptotic_necessary_C8: float | None
    asymptotic_sufficient_C6: float | None
    on_code_line: bool
    code_bound_dimension: int | None
    code_bound_ruled_out_by: str | None
    construction_dimension: int | None
    construction: str | None
    search_dimension: int | None


def necessary_dimension(N: int, m, b_rel, *, search_dims=None, search_kwargs=None, use_lp: bool = True) -> DimensionReport:
    """Report the dimensions needed for N pairs forming an (m, b_rel)-constellation.

    Gives the asymptotic estimates of C8 (necessary) and C6 (sufficient), labelled asymptotic; the
    finite-d spherical-code bounds where they apply (m + b_rel = 1); the smallest dimension in which a
    construction of the package achieves it; and, if ``search_dims`` is given (an increasing sequence of
    d), the smallest of them in which the max-margin search with b_rel frozen finds one.

    Raises:
      ValueError: (m, b_rel) in C7's impossible region for N (the message names the inequality).
    """
    from . import bounds  # bounds and constructions import nothing from here at module level
    from .constructions import max_margin_search

    N = check_int(N, "N", low=2)
    require_feasible(m, b_rel, N)
    if m <= 0:
        raise ValueError(f"the margin must be positive for a dimension question; got m = {m}")
    est = asymptotic_dimension_estimates(N, m, b_rel)
    on_line = abs(m + b_rel - 1) <= 1e-12
    code_dim = ruled = cons_dim = cons = None
    if on_line:
        nd = bounds.code_dimension_bounds(N, 1 - 2 * m, use_lp=use_lp)
        code_dim, ruled, cons_dim, cons = nd.dimension, nd.ruled_out_by, nd.construction_dimension, nd.construction
    elif m + b_rel < 1 and 3 * m < 1 + b_rel:
        alpha = c6_code_inner_product(m, b_rel)
        best = bounds.code_dimension_bounds(N, alpha, use_lp=False) if alpha >= -1 / (N - 1) else None
        if best is not None and best.construction_dimension is not None:
            cons_dim, cons = best.construction_dimension + 1, f"Theorem 3.3 on {best.construction}"
    found = None
    for d in search_dims or ():
        r = max_margin_search(N, int(d), b_rel=b_rel, **(search_kwargs or {}))
        if r.frozen_margin >= m:
            found = int(d)
            break
    return DimensionReport(N, float(m), float(b_rel), est.get("necessary_C8"), est.get("sufficient_C6"), on_line,
                           code_dim, ruled, cons_dim, cons, found)
