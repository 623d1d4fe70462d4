"""Tests of constellations.dimension: the report on how many dimensions N pairs need (C6-C8, codes, search)."""

import pytest

from constellations import codes, constructions, dimension


def test_necessary_dimension_on_the_code_line_is_the_kissing_problem():
    """On m + b_rel = 1 the report uses the rigorous spherical-code bounds: N = 240 pairs at m = 1/4 (s = 1/2)
    need d >= 8 (d = 7 is ruled out) and E8 achieves it in d = 8."""
    rep = dimension.necessary_dimension(240, 0.25, 0.75)
    assert rep.on_code_line and rep.code_bound_dimension == 8 and rep.construction_dimension == 8
    assert rep.asymptotic_necessary_C8 > 0


def test_necessary_dimension_off_the_line_builds_and_searches():
    """Off the code line: the Theorem 3.3 construction's dimension is reported, and the search finds a verified
    constellation no higher than that construction needs."""
    rep = dimension.necessary_dimension(20, 0.1, 0.5, search_dims=range(2, 10), search_kwargs=dict(restarts=2, steps=800))
    assert not rep.on_code_line and rep.code_bound_dimension is None
    assert rep.construction_dimension is not None and rep.construction.startswith("Theorem 3.3")
    # the reported dimension is that of the construction itself: Thm 3.3 on 20 points of the named code
    name = rep.construction.removeprefix("Theorem 3.3 on ")
    code = next(c for n in range(1, rep.construction_dimension) for c in codes.constructions_in_dimension(n, N=20)
                if c.name == name).build()[:20]
    built = constructions.theorem_3_3(code, 0.1, 0.5)
    assert built.dimension == rep.construction_dimension and built.margin >= 0.1 - 1e-12
    assert rep.search_dimension is not None and rep.search_dimension <= rep.construction_dimension
    with pytest.raises(ValueError, match="C7"):
        dimension.necessary_dimension(20, 0.45, 0.7)
