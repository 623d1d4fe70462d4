"""Embedding a set in fixed-size batches (constellations/siglip/embed.py)."""

import numpy as np
import pytest

from constellations.siglip.embed import apply_in_batches


def test_apply_in_batches_pads_the_last_batch_and_drops_the_padding():
    shapes = []

    def fn(x):
        shapes.append(x.shape)
        return {"double": 2 * x, "sum": x.sum(axis=1)}, x[:, 0]

    x = np.arange(22, dtype=np.float32).reshape(11, 2)
    out, first = apply_in_batches(fn, x, 4)
    assert shapes == [(4, 2)] * 3                           # one shape: 4 + 4 + (3 rows + 1 padding row)
    np.testing.assert_array_equal(out["double"], 2 * x)
    np.testing.assert_array_equal(out["sum"], x.sum(axis=1))
    np.testing.assert_array_equal(first, x[:, 0])


def test_apply_in_batches_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        apply_in_batches(lambda x: x, np.zeros((0, 3)), 4)
    with pytest.raises(ValueError, match="batch_size"):
        apply_in_batches(lambda x: x, np.zeros((2, 3)), 0)
