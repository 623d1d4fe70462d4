"""Supervised pretraining of an image tower (constellations/siglip/pretrain.py)."""

import jax
import numpy as np
import pytest

from constellations.siglip.config import default_config, merge
from constellations.siglip.data import ShapesDataset
from constellations.siglip.models import decode_variant
from constellations.siglip.pretrain import ImageClassifier, batch_order, train_classifier


def test_batch_order_is_epochs_of_permutations():
    order = batch_order(10, 7, 4, seed=3)                   # 28 indices: 2 full epochs and 8 of a third
    assert order.shape == (7, 4) and order.dtype == np.int32
    flat = order.ravel()
    for a in (0, 10):
        assert sorted(flat[a:a + 10]) == list(range(10))
    np.testing.assert_array_equal(order, batch_order(10, 7, 4, seed=3))
    with pytest.raises(ValueError, match="batch_size"):
        batch_order(10, 7, 11, seed=3)


def test_train_classifier_learns_the_labels_and_keeps_the_towers_subtree():
    """A few steps lower the summed cross-entropy; the parameters hold an "img" subtree (TwoTowers' image tower)."""
    ex = ShapesDataset(0, 16).get(np.arange(64))
    image = decode_variant("mu/4")
    image["out_dim"] = None
    model = ImageClassifier(image, {"shape": 6, "colour": 8})
    params = model.init(jax.random.key(0), ex["images"][:1])["params"]
    optim = merge(default_config(), dict(optim=dict(lr=3e-3, warmup_steps=0))).optim
    trained, losses = train_classifier(model, params, ex["images"], ex["labels"], batch_order(64, 30, 32, 0), optim)
    assert set(trained) == {"img", "head_shape", "head_colour"}
    assert losses.shape == (30,) and np.all(np.isfinite(losses))
    assert losses[-5:].mean() < losses[:5].mean()
