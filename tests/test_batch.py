"""Tests of constellations.batch: claim C4 (Prop. 1, batch robustness)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

from constellations import batch, reference
from strategies import embedding_pairs, random_unit


def test_expected_batch_loss_equals_enumeration():
    """E[L_B] in closed form equals the average over all C(N, B) batches (N = 7, B = 3)."""
    rng = np.random.default_rng(0)
    U, V = random_unit(rng, 7, 3), random_unit(rng, 7, 3)
    t, b = 5.0, -1.0
    vals = [reference.sigmoid_loss(U[list(c)], V[list(c)], t, b) for c in itertools.combinations(range(7), 3)]
    assert batch.expected_batch_loss(U, V, t, b, 3) == pytest.approx(np.mean(vals), rel=1e-12)
    assert batch.expected_batch_loss(U, V, t, b, 7) == pytest.approx(reference.sigmoid_loss(U, V, t, b), rel=1e-12)


@given(embedding_pairs(max_n=60, max_d=8), st.floats(0, 300), st.floats(-1, 1), st.data())
def test_C4_guaranteed_fraction_never_exceeds_measured(pair, t, b_rel, data):
    """C4 (Prop. 1): retrieval is correct for at least 1 - N E[L_B] / (B (B-1)) of the U_i and of the V_i."""
    U, V = pair
    n = len(U)
    lo = int(np.floor(np.sqrt(n))) + 1
    if lo >= n:
        return
    B = data.draw(st.integers(lo, n - 1))
    r = batch.batch_robustness(U, V, t, -t * b_rel, B)
    assert r.guaranteed_fraction <= r.u_to_v_accuracy + 1e-12
    assert r.guaranteed_fraction <= r.v_to_u_accuracy + 1e-12


def test_C4_is_informative_on_a_good_configuration():
    """A well-separated configuration at large t: the guarantee is close to 1, not vacuous."""
    rng = np.random.default_rng(1)
    X = random_unit(rng, 40, 16)
    m = (1 - (X @ X.T - 2 * np.eye(40)).max()) / 2
    r = batch.batch_robustness(X, X, 200.0, -200.0 * (1 - m), 20)
    assert r.guaranteed_fraction > 0.99 and r.u_to_v_accuracy == 1.0


def test_C4_bad_batch_size():
    X = np.eye(9)
    with pytest.raises(ValueError, match="sqrt"):
        batch.batch_robustness(X, X, 1.0, 0.0, 3)
    with pytest.raises(ValueError, match="<= N"):
        batch.expected_batch_loss(X, X, 1.0, 0.0, 10)
