"""Tests of the fine-grained data set (constellations/siglip/finegrained.py) and the hard-negatives study's config."""

import numpy as np
import pytest

from constellations.siglip import data
from constellations.siglip import finegrained as fg
from constellations.siglip.config import default_config, merge
from constellations.siglip.tokenizer import UNK, WordTokenizer


def test_examples_are_a_pure_function_of_seed_and_index():
    a = fg.FineGrainedDataset(seed=3).get([5, 17, 40])
    b = fg.FineGrainedDataset(seed=3).get([40, 5])
    np.testing.assert_array_equal(a["images"][0], b["images"][1])
    np.testing.assert_array_equal(a["images"][2], b["images"][0])
    assert a["captions"][0] == b["captions"][1]
    for k in a["labels"]:
        assert a["labels"][k][0] == b["labels"][k][1]
    c = fg.FineGrainedDataset(seed=4).get([5])
    assert not np.array_equal(a["images"][0], c["images"][0])
    assert a["images"].shape == (3, 32, 32, 3) and a["images"].dtype == np.float32
    assert a["images"].min() >= -1 and a["images"].max() <= 1
    # The classes in use are fixed by (seed, K): the same subset in every instance.
    np.testing.assert_array_equal(fg.FineGrainedDataset(3, num_classes=50).classes,
                                  fg.FineGrainedDataset(3, num_classes=50).classes)


def test_caption_is_the_class_and_names_its_attributes():
    ds = fg.FineGrainedDataset(seed=1, num_classes=200)
    out = ds.get(np.arange(200), images=False)
    tok = WordTokenizer(ds.vocabulary())
    for cap, k, cid in zip(out["captions"], out["labels"]["class"], out["labels"]["class_id"]):
        assert ds.classes[k] == cid and cap == fg.caption(cid) == ds.class_captions()[k]
        words = cap.split()
        attrs = fg.class_attributes(cid)
        assert all(fg.VALUES[a][attrs[a]] in words for a in fg.ATTRIBUTES)
        assert UNK not in tok.tokens(cap)
    for task, (key, names, templates) in ds.zero_shot_tasks().items():
        assert key in out["labels"]
        for name in names[:20]:
            assert all(UNK not in tok.tokens(t.format(name)) for t in templates), (task, name)
    assert [fg.class_id(fg.class_attributes(c)) for c in (0, 1, 1234, fg.NUM_CLASSES - 1)] == [0, 1, 1234,
                                                                                               fg.NUM_CLASSES - 1]
    assert len({fg.caption(c) for c in range(fg.NUM_CLASSES)}) == fg.NUM_CLASSES


def test_neighbour_captions_differ_in_exactly_one_word():
    """Each class has 22 near-duplicates, one attribute (one caption word) apart; no other class is one word away."""
    rng = np.random.default_rng(0)
    for c in rng.choice(fg.NUM_CLASSES, 5, replace=False):
        words = fg.caption(c).split()
        near = set(fg.neighbours(c).tolist())
        assert len(near) == sum(n - 1 for n in fg.ATTRIBUTE_CLASSES.values()) == 22
        for other in range(fg.NUM_CLASSES):
            ow = fg.caption(other).split()
            differing = sum(x != y for x, y in zip(words, ow)) if len(ow) == len(words) else None
            assert (differing == 1) == (other in near), (c, other)


def test_the_false_negative_knob_sets_the_measured_rate():
    """Two examples of a batch share a caption with probability 1/K: measured over batches of the stream."""
    measured = {}
    for K in (8, 64, fg.NUM_CLASSES):
        labels = fg.FineGrainedDataset(seed=2, num_examples=4096, num_classes=K).get(np.arange(4096), images=False)
        stream = np.stack([data.batch_indices(s, 64, 4096, 2)[0] for s in range(64)])
        rate = fg.false_negative_rate(labels["labels"]["class"][stream])
        pairs = 64 * 64 * 63 / 2
        assert abs(rate - 1 / K) < 5 * np.sqrt((1 / K) / pairs) + 2e-4, (K, rate)
        measured[K] = rate
    assert measured[8] > measured[64] > measured[fg.NUM_CLASSES]
    # The rate is of pairs i != j: a batch of one class has rate 1, of distinct classes 0.
    assert fg.false_negative_rate(np.zeros((2, 5))) == 1.0
    assert fg.false_negative_rate(np.arange(5)) == 0.0
    assert fg.false_negative_rate([[0, 0, 1, 2]]) == pytest.approx(2 / 12)


def test_attributes_are_drawn():
    """The object's colour, position and pattern are where the caption says."""
    ds = fg.FineGrainedDataset(seed=5)
    out = ds.get(np.arange(40))
    for img, lab in zip(out["images"], [dict(zip(out["labels"], v)) for v in zip(*out["labels"].values())]):
        rgb = (img + 1) / 2
        background = np.asarray(fg.BACKGROUNDS[fg.BACKGROUND_NAMES[lab["background"]]])
        mask = np.abs(rgb - background).max(axis=-1) > 0.12
        ys, xs = np.nonzero(mask)
        cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
        anchors = {"left": (11, 16), "right": (21, 16), "top": (16, 11), "bottom": (16, 21)}
        nearest = min(anchors, key=lambda k: (cx - anchors[k][0]) ** 2 + (cy - anchors[k][1]) ** 2)
        assert nearest == fg.POSITIONS[lab["position"]], (cx, cy)
        bright = rgb[mask].max(axis=0)
        nearest = min(fg.COLOUR_NAMES, key=lambda k: np.sum((np.asarray(fg.COLOURS[k]) - bright) ** 2))
        assert nearest == fg.COLOUR_NAMES[lab["colour"]]
        dark = fg.dark_shade(fg.COLOURS[fg.COLOUR_NAMES[lab["colour"]]])
        dark_pixels = np.sum((np.abs(rgb - dark).max(axis=-1) < 0.12) & (np.abs(rgb - background).max(axis=-1) > 0.12))
        assert (dark_pixels > 8) == (fg.PATTERNS[lab["pattern"]] != "plain")


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_classes=1), "num_classes"), (dict(num_classes=fg.NUM_CLASSES + 1), "num_classes"),
    (dict(num_classes=2.5), "num_classes"), (dict(num_classes=True), "num_classes"),
    (dict(image_size=8), "image_size"), (dict(num_examples=1), "num_examples"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fg.FineGrainedDataset(0, **kwargs)


def test_bad_class_ids_and_batches():
    with pytest.raises(ValueError, match="class ids"):
        fg.caption(fg.NUM_CLASSES)
    with pytest.raises(ValueError, match="class ids"):
        fg.neighbours(-1)
    with pytest.raises(ValueError, match="class_ids"):
        fg.false_negative_rate([3])


def test_the_trainer_builds_it_by_name():
    cfg = merge(default_config(), dict(data=dict(name="finegrained", num_classes=32, num_examples=100)))
    ds = data.make_dataset(cfg.data, seed=1)
    assert isinstance(ds, fg.FineGrainedDataset) and ds.num_classes == 32 and ds.num_examples == 100
    assert data.make_eval_dataset(cfg.data, seed=1).num_classes == 32
    with pytest.raises(ValueError, match="data.num_classes"):
        data.make_dataset(merge(default_config(), dict(data=dict(num_classes=32))).data, seed=0)


def test_hard_negatives_configs():
    """Every scale's config builds (quick is tiny, large is the accelerator scale) and claims compare two K."""
    from experiments.siglip_studies import hard_negatives as hn

    for arg in ("quick", None, "large,seed=2"):
        cfg = hn.get_config(arg)
        spec = hn.FineSpec(**cfg["frozen"])
        assert spec.num_classes == fg.NUM_CLASSES and len(cfg["num_classes"]) >= 2
        assert all(cfg["examples_seen"] % B == 0 and B <= spec.pool_size for B in cfg["batch_sizes"])
    assert hn.get_config("large,seed=2")["seed"] == 2 and hn.get_config("large")["scale"] == "large"
    quick, full = hn.get_config("quick"), hn.get_config()
    assert quick["quick"] and not full["quick"] and len(full["run_seeds"]) >= 3
    with pytest.raises(ValueError, match="num_classes"):
        hn.FineSpec(num_classes=1)
    with pytest.raises(ValueError, match="config argument"):
        hn.get_config("huge")


def test_fine_evaluation_scores_a_perfect_and_a_blind_text_tower():
    """Text embeddings equal to their class's image embedding get every hard negative and retrieval right;
    a text tower that embeds every caption alike gets none (ties count as wrong)."""
    from types import SimpleNamespace

    from experiments.siglip_studies.hard_negatives import fine_evaluation

    rng = np.random.default_rng(0)
    table = rng.normal(size=(fg.NUM_CLASSES, 16))
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    index = {fg.caption(c): c for c in range(fg.NUM_CLASSES)}
    cid = np.array([5, 5, 77, 3000, 1234])
    frozen = SimpleNamespace(eval_z=table[cid], eval_labels={"class_id": cid})
    perfect = fine_evaluation(lambda caps: table[[index[c] for c in caps]], frozen)
    assert perfect["hard_negative/accuracy"] == 1.0 and perfect["class_retrieval/mean_recall@1"] == 1.0
    assert perfect["class_retrieval/chance@1"] == pytest.approx((2 * 2 + 3) / 25)
    blind = fine_evaluation(lambda caps: np.tile(table[:1], (len(caps), 1)), frozen)
    assert blind["hard_negative/accuracy"] == 0.0
