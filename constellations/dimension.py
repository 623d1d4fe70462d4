"""How many dimensions N pairs need for an (m, b_rel)-constellation (issue 4's report; theory.md C6-C8).

:func:`necessary_dimension` gathers, for one request (N, m, b_rel): the asymptotic estimates of C8
(necessary) and C6 (sufficient) from :mod:`constellations.regions`; on the code line m + b_rel = 1
the finite-d spherical-code bounds of :func:`constellations.bounds.code_dimension_bounds`; the
smallest dimension in which a construction of the package achieves it; and optionally the smallest
dimension in which the max-margin search of :mod:`constellations.search` finds one.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import bounds
from ._validation import check_int
from .regions import asymptotic_dimension_estimates, c6_code_inner_product, require_feasible
from .search import max_margin_search


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
    search_dims = [check_int(d, "search_dims entry (a dimension)", low=1) for d in (search_dims or ())]
    if search_kwargs is not None and not isinstance(search_kwargs, dict):
        raise TypeError(f"search_kwargs must be a dict of max_margin_search options; got {type(search_kwargs).__name__}")
    found = None
    for d in search_dims:
        r = max_margin_search(N, int(d), b_rel=b_rel, **(search_kwargs or {}))
        if r.frozen_margin >= m:
            found = int(d)
            break
    return DimensionReport(N, float(m), float(b_rel), est.get("necessary_C8"), est.get("sufficient_C6"), on_line,
                           code_dim, ruled, cons_dim, cons, found)
