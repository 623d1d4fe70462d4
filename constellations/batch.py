"""Batch robustness (theory.md C4, Prop. 1): from the expected batch loss to guaranteed retrieval.

For a uniformly random batch of B distinct indices out of N, the summed sigmoid loss on the batch
has expectation (exactly, by linearity)

    E[L_B] = (B / N) sum_i l_ii + (B (B - 1) / (N (N - 1))) sum_{i != j} l_ij,

with l_ij = -log sigmoid(z_ij (t s_ij + b)). Prop. 1: if E[L_B] <= xi and sqrt(N) < B < N, nearest-
neighbour retrieval is correct for at least a 1 - N xi / (B (B - 1)) fraction of the U_i (and of the V_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import check_int, check_scalar, validated_pair
from .geometry import retrieval
from .loss import sigmoid_loss


@dataclass(frozen=True)
class BatchRobustness:
    """C4 for one configuration, t, b and batch size B.

    Attributes:
      expected_batch_loss: E[L_B] (exact).
      guaranteed_fraction: 1 - N E[L_B] / (B (B - 1)), Prop. 1's lower bound (may be <= 0: vacuous).
      u_to_v_accuracy, v_to_u_accuracy: the measured retrieval fractions (unique nearest neighbour).
    """

    expected_batch_loss: float
    guaranteed_fraction: float
    u_to_v_accuracy: float
    v_to_u_accuracy: float
    batch_size: int


def expected_batch_loss(U, V, t, b, batch_size: int, *, normalize: bool = False) -> float:
    """E[L_B], the summed sigmoid loss of a uniformly random batch of ``batch_size`` distinct pairs."""
    U, V = validated_pair(U, V, normalize=normalize)
    n = len(U)
    B = check_int(batch_size, "batch_size", low=1)
    if B > n:
        raise ValueError(f"batch_size must be <= N = {n}; got {B}")
    terms = np.asarray(sigmoid_loss(U, V, t, b, reduction="none"), dtype=np.float64)
    pos = float(np.trace(terms))
    neg = float(terms.sum() - pos)
    return (B / n) * pos + (B * (B - 1) / (n * (n - 1))) * neg if n > 1 else pos


def batch_robustness(U, V, t, b, batch_size: int, *, normalize: bool = False) -> BatchRobustness:
    """Prop. 1 (C4): the guaranteed retrieval fraction from the exact expected batch loss, next to the measured one.

    Requires sqrt(N) < batch_size < N, the proposition's range.
    """
    U, V = validated_pair(U, V, normalize=normalize)
    n = len(U)
    B = check_int(batch_size, "batch_size", low=2)
    if not (np.sqrt(n) < B < n):
        raise ValueError(f"Prop. 1 (C4) needs sqrt(N) < batch_size < N; got batch_size = {B} with N = {n}")
    check_scalar(t, "t (inverse temperature)", low=0.0)
    check_scalar(b, "b (bias)")
    xi = expected_batch_loss(U, V, t, b, B)
    r = retrieval(U, V)
    return BatchRobustness(xi, 1.0 - n * xi / (B * (B - 1)), r.u_to_v_accuracy, r.v_to_u_accuracy, B)
