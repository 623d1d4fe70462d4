"""Tests of the evaluators and of checkpoint safety (missing, corrupt, interrupted writes)."""

import json
import os

import numpy as np
import pytest

from constellations import geometry
from constellations.siglip import checkpoint as ckpt
from constellations.siglip.evaluate import (
    class_embeddings,
    evaluate_embeddings,
    geometry_report,
    retrieval_recall,
    zero_shot_accuracy,
)
from constellations.siglip.train import evaluate_checkpoint


def brute_force_recall(S, t2i, ks):
    """Rank by (score desc, index asc), one candidate at a time: the definition, written out."""
    n_img, n_txt = S.shape
    out = {}
    for k in ks:
        hits = 0
        for i in range(n_img):
            order = sorted(range(n_txt), key=lambda j: (-S[i, j], j))[:k]
            hits += any(t2i[j] == i for j in order)
        out[f"img2txt_recall@{k}"] = hits / n_img
        hits = 0
        for j in range(n_txt):
            order = sorted(range(n_img), key=lambda i: (-S[i, j], i))[:k]
            hits += t2i[j] in order
        out[f"txt2img_recall@{k}"] = hits / n_txt
    return out


@pytest.mark.parametrize("seed", range(6))
def test_retrieval_recall_matches_the_definition_with_ties(seed):
    """Recall@k with several captions per image and many exact ties (integer scores): deterministic ties."""
    rng = np.random.default_rng(seed)
    n_img = 7
    t2i = np.sort(np.concatenate([np.arange(n_img), rng.integers(0, n_img, 6)]))
    S = rng.integers(-2, 3, size=(n_img, len(t2i))).astype(float)
    ks = (1, 2, 5)
    got = retrieval_recall(S, t2i, ks, block=3)
    assert got == brute_force_recall(S, t2i, ks)


def test_retrieval_recall_golden_cases():
    """Perfect scores give recall 1; the reversed order gives 0 at k=1; all-equal scores pick the first index."""
    S = np.eye(4)
    assert all(v == 1.0 for v in retrieval_recall(S, np.arange(4)).values())
    assert retrieval_recall(-S, np.arange(4), ks=(1,))["txt2img_recall@1"] == 0.0
    r = retrieval_recall(np.zeros((4, 4)), np.arange(4), ks=(1,))
    assert r == {"img2txt_recall@1": 0.25, "txt2img_recall@1": 0.25}
    with pytest.raises(ValueError, match="every image"):
        retrieval_recall(np.zeros((3, 2)), np.array([0, 1]))


def test_zero_shot_uses_prompt_ensembles():
    """Class weight = normalize(mean over templates of the unit prompt embeddings); prediction = argmax."""
    table = {"a cat": [1, 0, 0], "the cat": [0.6, 0.8, 0], "a dog": [0, 0, 1], "the dog": [0, 0.6, 0.8]}

    def embed(texts):
        return np.array([table[t] for t in texts], float)

    W = class_embeddings(embed, ["cat", "dog"], ["a {}", "the {}"])
    want = np.array([[1.6, 0.8, 0], [0, 0.6, 1.8]])
    np.testing.assert_allclose(W, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-7)
    images = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], float)
    # [0, 1, 0] scores 0.447 for cat (through "the cat") and 0.316 for dog.
    assert zero_shot_accuracy(images, W, [0, 1, 0]) == 1.0
    assert zero_shot_accuracy(images, W, [1, 0, 1]) == 0.0


def test_geometry_report_uses_the_package_geometry():
    """The bridge to the theory: m*, b*_rel and the gap statistics of the embeddings, plus -b/t."""
    rng = np.random.default_rng(0)
    U = rng.normal(size=(20, 6))
    V = U + 0.1 * rng.normal(size=(20, 6))
    U, V = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (U, V))
    rep = geometry_report(U, V, t=10.0, b=-3.0)
    m, b_rel = geometry.margin_and_relative_bias(U, V)
    assert rep["margin"] == m and rep["relative_bias"] == b_rel and rep["b_rel"] == 0.3
    assert rep["xi"] == pytest.approx(geometry.xi_statistic(U, V), rel=1e-12)


def test_evaluate_embeddings_reports_every_metric():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 5))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    examples = {"images": X, "captions": [[f"c{i}", f"d{i}"] for i in range(12)], "labels": {"k": np.arange(12) % 3}}
    lookup = {f"{p}{i}": X[i] for i in range(12) for p in "cd"}
    lookup.update({f"class {j}": X[j] for j in range(3)})
    res = evaluate_embeddings(lambda x: x, lambda ts: np.array([lookup[t] for t in ts]), examples,
                              {"k": ("k", ["0", "1", "2"], ["class {}"])}, t=5.0, b=-1.0)
    assert res["retrieval/img2txt_recall@1"] == 1.0 and res["retrieval/txt2img_recall@1"] == 1.0
    assert res["zeroshot/k_chance"] == pytest.approx(1 / 3) and res["retrieval/chance@1"] == pytest.approx(1 / 12)
    assert res["geometry/margin"] > 0 and res["geometry/b_rel"] == 0.2


# ---------------------------------------------------------------------------------------------
# Checkpoints: missing, corrupt, and never half-written.


def _state(v=1.0):
    return {"params": {"w": np.full((3, 2), v, np.float32), "b": np.float32(v)}, "step": np.int64(4)}


def test_checkpoint_round_trip_and_pruning(tmp_path):
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, _state(step), step, keep=2)
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["LAST", "ckpt-000000002.npz", "ckpt-000000003.npz"]
    tree, header = ckpt.restore_checkpoint(tmp_path, _state(0))
    assert header["step"] == 3 and np.array_equal(tree["params"]["w"], _state(3)["params"]["w"])
    with pytest.raises(ValueError, match="does not match"):
        ckpt.restore_checkpoint(tmp_path, {"params": {"w": np.zeros((3, 2), np.float32)}, "step": np.int64(0)})
    with pytest.raises(ValueError, match="shape"):
        ckpt.restore_checkpoint(tmp_path, {"params": {"w": np.zeros((2, 2), np.float32), "b": np.float32(0)},
                                           "step": np.int64(0)})


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ckpt.read_checkpoint(tmp_path / "nope.npz")
    with pytest.raises(ValueError, match="no checkpoint"):
        ckpt.resolve_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        evaluate_checkpoint(tmp_path / "missing_run")
    path = ckpt.save_checkpoint(tmp_path, _state(), 7)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])                                  # truncated
    with pytest.raises(ValueError, match="corrupt"):
        ckpt.read_checkpoint(tmp_path)
    # A flipped byte anywhere: either a clear error (zip CRC, headers) or, where the byte carries no data
    # (e.g. a header's timestamp), the exact saved values; never silently different numbers.
    errors = 0
    for pos in range(0, len(raw), 7):
        flipped = bytearray(raw)
        flipped[pos] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            tree, _ = ckpt.restore_checkpoint(tmp_path, _state(0.0))
        except ValueError as e:
            assert "corrupt" in str(e) or "does not match" in str(e) or "format" in str(e), str(e)
            errors += 1
        else:
            assert np.array_equal(tree["params"]["w"], _state()["params"]["w"]) and float(tree["params"]["b"]) == 1.0
    assert errors > len(raw) // 14
    (tmp_path / "checkpoints" / "LAST").write_text("ckpt-000000099.npz\n")
    with pytest.raises(ValueError, match="does not exist"):
        ckpt.latest_checkpoint(tmp_path)


def test_a_crash_while_saving_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    """An exception mid-write (disk full, kill) leaves LAST on the previous, complete checkpoint and no debris."""
    ckpt.save_checkpoint(tmp_path, _state(1.0), 1)
    real = np.savez_compressed

    def crash(file, **arrays):
        with open(file, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(OSError, match="No space"):
        ckpt.save_checkpoint(tmp_path, _state(2.0), 2)
    monkeypatch.setattr(np, "savez_compressed", real)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["LAST", "ckpt-000000001.npz"]
    tree, header = ckpt.restore_checkpoint(tmp_path, _state(0.0))
    assert header["step"] == 1 and float(tree["params"]["b"]) == 1.0
    assert json.loads(json.dumps(header))["names"] == ["['params']['b']", "['params']['w']", "['step']"]
