"""Tests of constellations.search: the max-margin search (issue 4, E6) and find_constellation (api.md)."""

import pytest

import constellations as cs
from constellations import regions, search


def test_max_margin_search_beats_the_paper_and_is_verified():
    """Issue 4: for N = 100, d = 10 the search reaches 2 m* >= 0.54 (the paper's synthetic runs, E6), and the margin
    it reports is the one recomputed from its vectors."""
    r = search.max_margin_search(100, 10, restarts=2, steps=3000, seed=0)
    m, b = cs.margin_and_relative_bias(r.U, r.V)
    assert r.margin == m and r.relative_bias == b
    assert r.margin == r.margins.max()  # the best restart is the one returned
    assert 2 * m >= 0.54
    assert cs.is_constellation(r.U, r.V, m, b)
    assert regions.impossible_region(m, b, 100).feasible


def test_max_margin_search_with_frozen_relative_bias():
    """With b_rel frozen the result is a verified (frozen_margin, b_rel)-constellation; at b_rel = 0.75, C7 caps it at 0.25."""
    r = search.max_margin_search(40, 8, b_rel=0.75, restarts=2, steps=1500, seed=1)
    assert 0 < r.frozen_margin <= 0.25 + 1e-12
    # frozen means frozen: far from where a free threshold would go (b_rel > 0), the vectors still separate
    # around the frozen b_rel = -0.5 (a drifting threshold would leave negatives above -0.5)
    low = search.max_margin_search(12, 4, b_rel=-0.5, restarts=2, steps=1500, seed=0)
    assert low.frozen_margin > 0 and cs.is_constellation(low.U, low.V, low.frozen_margin, -0.5)
    assert cs.is_constellation(r.U, r.V, r.frozen_margin, 0.75)
    U, V = search.find_constellation(12, 4, b_rel=0.0, seed=0, restarts=2, steps=1500)
    assert cs.margin_and_relative_bias(U, V)[0] > 0


def test_find_constellation_is_exported_at_the_top_level():
    """api.md: find_constellation(N, d, *, b_rel=None, seed=0) -> (U, V), at the top level and in the search module."""
    assert cs.find_constellation is search.find_constellation


def test_search_bad_input():
    with pytest.raises(ValueError, match="N"):
        search.max_margin_search(1, 3)
    with pytest.raises(ValueError, match="d"):
        search.max_margin_search(5, 0)
    with pytest.raises(ValueError, match="relative bias"):
        search.find_constellation(5, 3, b_rel=2.0)
