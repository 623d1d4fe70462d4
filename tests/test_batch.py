"""Tests of constellations.batch: claim C4 (Prop. 1, batch robustness)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

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


@settings(max_examples=15)
@given(st.sampled_from([33, 60]), st.integers(1, 2), st.floats(0.5, 2.5), st.floats(2.0, 5.0), st.integers(0, 2**31),
       st.data())
def test_C4_guarantee_is_positive_and_close_on_near_constellations(n, k, c, log10_t, seed, data):
    """C4 (Prop. 1) where it says something: a random code with k points doubled (U = V, 2k tied pairs, so
    retrieval fails for exactly 2k of the U_i and of the V_i), large t and b_rel = 1 - c / t just below the
    tied inner product 1. The expected batch loss is then about N softplus(-c) B/N + 2k softplus(c) B(B-1)/(N(N-1)),
    the guarantee 1 - N E[L_B] / (B (B - 1)) is positive (at least 0.3 in this range of N, k, c and B >= N - 4),
    and it must stay below the measured accuracy
    1 - 2k/N (a loss that is too small, or a wrong factor in the guarantee, shows here)."""
    rng = np.random.default_rng(seed)
    X = random_unit(rng, n, 24)
    for i in range(k):  # X_{2i+1} := X_{2i}: U_{2i} and U_{2i+1} both tie between V_{2i} and V_{2i+1}
        X[2 * i + 1] = X[2 * i]
    V = X.copy()
    B = data.draw(st.integers(max(int(np.floor(np.sqrt(n))) + 1, n - 4), n - 1))
    t = 10.0**log10_t
    r = batch.batch_robustness(X, V, t, -t * (1 - c / t), B)
    # ties count as wrong (the gaps come from one product, so a duplicated point ties exactly)
    assert r.u_to_v_accuracy == pytest.approx(1 - 2 * k / n) and r.v_to_u_accuracy == pytest.approx(1 - 2 * k / n)
    assert r.guaranteed_fraction > 0  # not vacuous: the assertion below has something to check
    assert r.guaranteed_fraction == pytest.approx(1 - n * r.expected_batch_loss / (B * (B - 1)), rel=1e-12)  # Prop. 1
    assert r.guaranteed_fraction <= r.u_to_v_accuracy + 1e-12
    assert r.guaranteed_fraction <= r.v_to_u_accuracy + 1e-12
    xi = n * np.logaddexp(0, -c) * B / n + 2 * k * np.logaddexp(0, c) * B * (B - 1) / (n * (n - 1))
    assert r.expected_batch_loss == pytest.approx(xi, rel=0.05)  # the other pairs' terms are negligible here


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
