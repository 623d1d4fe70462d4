"""Tests of the SigLIP studies (issue 8) and of what they added to the trainer.

* Every study's ``--quick`` mode through the CLI (one output folder for the module, so the frozen
  image tower is trained once and loaded from its cache by the later studies).
* The trainer additions: the bottlenecked token embedding (vocab -> K -> width), the shapes data's
  generated languages, ``embed_image_pool``.
* The studies' machinery: the scan loop is the trainer's loop, the training stream is the trainer's,
  the memory search finds the largest batch, the softmax all-gather equals the dense softmax loss.
"""

import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from constellations.siglip import data
from constellations.siglip.config import default_config, merge
from constellations.siglip.models import TextTransformer, tower_configs
from constellations.siglip.tokenizer import UNK, WordTokenizer
from constellations.siglip.embed import embed_image_pool, make_embedders
from constellations.siglip.train import build, init_params, train
from experiments.siglip_studies import common, memory
from experiments.runner import main as cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# Quick modes of every study, through the command line.


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    """Every study's quick mode through ``python -m experiments run studies`` (the frozen tower is trained once, then loaded from its cache)."""
    out = tmp_path_factory.mktemp("siglip_studies")
    assert cli(["run", "studies", "--quick", "--seed", "3", "--out", str(out), "--no-progress"]) == 0
    return out


def test_quick_report(out_dir):
    """``run studies`` writes the report: the claims table (not judged at quick scale) and every study's section."""
    report = (out_dir / "SIGLIP_STUDIES.md").read_text()
    for name in ("siglit", "bias_init", "bottleneck", "memory", "hard_negatives"):
        section = (out_dir / name / "summary.md").read_text()
        assert section in report
    claims = [ln for ln in report.splitlines() if ln.startswith("| ") and ln.endswith(" |") and "quick scale" in ln]
    assert len(claims) >= 6
    assert "Failed consistency checks" not in report


def test_report_from_saved_results(out_dir, tmp_path, capsys):
    """``report studies`` writes the same report from the entries' saved Outcomes, without running them; a
    folder without them is a clear error naming the entries to run."""
    copy = tmp_path / "copy"
    for name in ("siglit", "bias_init", "bottleneck", "memory", "hard_negatives"):
        (copy / name).mkdir(parents=True)
        (copy / name / "outcome.pickle").write_bytes((out_dir / name / "outcome.pickle").read_bytes())
    assert cli(["report", "studies", "--out", str(copy)]) == 0
    again, first = (copy / "SIGLIP_STUDIES.md").read_text(), (out_dir / "SIGLIP_STUDIES.md").read_text()
    table = [ln for ln in first.splitlines() if ln.startswith("| ")]
    assert table and table == [ln for ln in again.splitlines() if ln.startswith("| ")]
    assert (out_dir / "memory" / "summary.md").read_text() in again and "saved results" in again
    (copy / "memory" / "outcome.pickle").unlink()
    assert cli(["report", "studies", "--out", str(copy)]) == 2
    assert "no saved result of memory" in capsys.readouterr().err


def test_a_rerun_reuses_finished_runs_and_trains_only_the_missing_one(out_dir, tmp_path):
    """A study run again in the same folder (after a crash or a kill) loads every finished run from
    runs_cache/ and trains only what is missing, with the same numbers; the cache key changes with the spec."""
    import shutil

    for folder in ("siglip_frozen_tower", "bias_init"):
        shutil.copytree(out_dir / folder, tmp_path / folder)
    cache = sorted((tmp_path / "bias_init" / common.RUNS_CACHE).glob("*.pickle"))
    assert len(cache) == len(_read(out_dir, "bias_init", "runs.json")) >= 4
    cache[0].unlink()                                     # the run a crash interrupted
    assert cli(["run", "bias_init", "--quick", "--seed", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    first, again = _read(out_dir, "bias_init", "runs.json"), _read(tmp_path, "bias_init", "runs.json")
    assert [r["loaded_from_cache"] for r in first] == [False] * len(first)
    assert sum(not r["loaded_from_cache"] for r in again) == 1
    for a, b in zip(first, again):
        a.pop("loaded_from_cache"), b.pop("loaded_from_cache")
        if a["wall_time_s"] != b["wall_time_s"]:          # the retrained run: same numbers, its own timing
            a.pop("wall_time_s"), b.pop("wall_time_s"), a.pop("examples_per_sec"), b.pop("examples_per_sec")
        assert a.keys() == b.keys()
        for k in a:     # numbers equal up to float32 round-off (a retrained run is in another process)
            if isinstance(a[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7), k
            else:
                assert json.dumps(a[k], sort_keys=True) == json.dumps(b[k], sort_keys=True), k
    frozen = type("Frozen", (), {"spec": common.FrozenSpec(seed=3)})()
    spec = common.LitSpec(batch_size=16)
    assert common.run_key(frozen, spec) == common.run_key(frozen, common.LitSpec(batch_size=16))
    assert common.run_key(frozen, spec) != common.run_key(frozen, common.LitSpec(batch_size=16, lr=2e-3))
    assert common.run_key(frozen, spec) != common.run_key(type("Frozen", (), {"spec": common.FrozenSpec(seed=4)})(), spec)


def _read(out, study, name):
    return json.loads((out / study / name).read_text())


def test_quick_siglit(out_dir):
    """Both losses at every batch size, same examples seen, first logged loss = float64 reference."""
    cfg = _read(out_dir, "siglit", "config.json")
    runs = _read(out_dir, "siglit", "runs.json")
    assert cfg["seed"] == 3 and cfg["frozen"]["seed"] == 3
    assert len(runs) == 2 * len(cfg["batch_sizes"])
    assert {r["steps"] * r["batch_size"] for r in runs} == {cfg["examples_seen"]}
    assert {r["parameterization"] for r in runs} == {"standard", "softmax"}
    for r in runs:
        assert r["initial_check"]["relative_error"] < 1e-4
        assert 0 <= r["zeroshot/shape"] <= 1 and math.isfinite(r["analysis/trimmed_margin"])
        assert r["b"] == 0.0 if r["parameterization"] == "softmax" else r["b"] < 0
    for f in ("accuracy_vs_batch.png", "learned_scalars_and_geometry.png", "training_curves.png", "summary.md",
              "runs_history.npz"):
        assert (out_dir / "siglit" / f).is_file()
    summary = (out_dir / "siglit" / "summary.md").read_text()
    assert "sigmoid beats softmax at small batch': **not judged (quick scale)**" in summary
    assert (out_dir / "siglip_frozen_tower" / "embeddings.npz").is_file()
    assert (out_dir / "siglip_frozen_tower" / "checkpoints" / "LAST").is_file()


def test_quick_hard_negatives(out_dir):
    """Both losses at every (K, B), the measured false-negative rates next to 1/K, the fine-grained metrics in range."""
    cfg = _read(out_dir, "hard_negatives", "config.json")
    runs = _read(out_dir, "hard_negatives", "runs.json")
    fn = _read(out_dir, "hard_negatives", "false_negatives.json")
    assert cfg["seed"] == 3 and cfg["frozen"]["seed"] == 3
    assert len(runs) == 2 * len(cfg["num_classes"]) * len(cfg["batch_sizes"]) * len(cfg["run_seeds"])
    assert [(r["num_classes"], r["batch_size"]) for r in fn] == [(K, B) for K in cfg["num_classes"]
                                                                  for B in cfg["batch_sizes"]]
    for r in fn:
        assert r["expected"] == 1 / r["num_classes"] and abs(r["measured"] - r["pool_expected"]) <= 5 * r["standard_error"]
    for r in runs:
        assert r["initial_check"]["relative_error"] < 1e-4
        assert 0 <= r["hard_negative/accuracy"] <= 1 and r["hard_negative/chance"] == 1 / 23
        assert 0 < r["class_retrieval/chance@1"] <= 1 and 0 <= r["class_retrieval/mean_recall@1"] <= 1
        assert "zeroshot/class" in r and "zeroshot/pattern" in r
    for f in ("hard_negatives.png", "examples.png", "summary.md", "runs_history.npz"):
        assert (out_dir / "hard_negatives" / f).is_file()
    assert (out_dir / "finegrained_frozen_tower" / "embeddings.npz").is_file()
    summary = (out_dir / "hard_negatives" / "summary.md").read_text()
    assert summary.count("**Claim not judged at quick scale.**") == len(cfg["num_classes"]) + 1


def test_quick_bias_init(out_dir):
    """Every init starts where it should: b0 = 0 at about B log 2 per example, b0 = -10 near 10, RB at b0 = -10."""
    runs = {r["label"].split(" (B=")[0]: r for r in _read(out_dir, "bias_init", "runs.json")}
    assert set(runs) == {"b0 = -10", "b0 = 0", "b0 = log(1/B)", "relative bias, b_rel0 = 1"}
    B = runs["b0 = 0"]["batch_size"]
    assert abs(runs["b0 = 0"]["initial_check"]["reference"] - B * math.log(2)) < 0.5 * B   # |t s| <= 10 moves it little
    assert 7 < runs["b0 = -10"]["initial_check"]["reference"] < 13
    assert runs["b0 = log(1/B)"]["bias_init"] == pytest.approx(-math.log(B))
    # Same starting logits, different coordinates: RB from b_rel0 = 1 starts exactly where b0 = -10 does.
    assert runs["relative bias, b_rel0 = 1"]["initial_check"]["reference"] == pytest.approx(
        runs["b0 = -10"]["initial_check"]["reference"], rel=1e-12)
    hist = np.load(out_dir / "bias_init" / "runs_history.npz")
    assert hist["00/loss"].shape == (runs["b0 = -10"]["steps"],)
    assert (out_dir / "bias_init" / "curves.png").is_file()
    assert "not judged (quick scale)" in (out_dir / "bias_init" / "summary.md").read_text()


def test_quick_bottleneck(out_dir):
    rows = _read(out_dir, "bottleneck", "summary.json")
    cfg = _read(out_dir, "bottleneck", "config.json")
    full = next(r for r in rows if r["K"] is None)
    english = len(data._english_vocabulary())
    assert full["vocab"] == (cfg["extra_languages"] + 1) * english + 3
    for r in rows:
        if r["K"] is not None:
            assert r["embedding_params"] == r["vocab"] * r["K"] + r["K"] * 32
            assert r["text_params"] < full["text_params"]
        assert math.isfinite(r["zs_languages"])
    assert (out_dir / "bottleneck" / "bottleneck.png").is_file()


def test_quick_memory(out_dir):
    """The compiled per-device bytes put the ring's largest batch above the softmax all-gather's at D = 4."""
    res = _read(out_dir, "memory", "results.json")
    budget = _read(out_dir, "memory", "config.json")["budget_mib"] * memory.MiB
    for key, s in res["searches"].items():
        assert 0 < s["bytes"] <= budget and (s["capped"] or s["next_bytes"] > budget), key
    assert res["searches"]["sigmoid_ring/D=4"]["batch"] > res["searches"]["softmax_all_gather/D=4"]["batch"]
    assert res["measured"]["sigmoid_ring"]["peak_increase"] > 0
    for r in res["reference"].values():
        assert r["value_error"] < 1e-5 and r["grad_error"] < 1e-4


def test_cli_bad_input_and_list(capsys):
    assert cli(["run", "nonsense", "--quick"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert cli(["run", "siglit", "--seed", "-1"]) == 2
    assert cli(["list"]) == 0
    assert "memory" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The bottlenecked token embedding.


def test_bottleneck_is_a_factored_embedding():
    """vocab -> K -> width: the tower equals the full-table tower whose table is E @ P (same other weights)."""
    V, K, W, L = 50, 4, 32, 6
    small = TextTransformer(width=W, depth=1, mlp_dim=64, num_heads=2, vocab_size=V, out_dim=16, embedding_bottleneck=K)
    full = TextTransformer(width=W, depth=1, mlp_dim=64, num_heads=2, vocab_size=V, out_dim=16)
    tokens = np.random.default_rng(0).integers(0, V, size=(5, L)).astype(np.int32)
    p_small = small.init(jax.random.key(0), tokens)["params"]
    assert p_small["embedding"]["embedding"].shape == (V, K)
    assert p_small["embedding_projection"]["kernel"].shape == (K, W)
    assert "bias" not in p_small["embedding_projection"]
    p_full = {k: v for k, v in p_small.items() if k not in ("embedding", "embedding_projection")}
    p_full["embedding"] = {"embedding": p_small["embedding"]["embedding"] @ p_small["embedding_projection"]["kernel"]}
    np.testing.assert_allclose(small.apply({"params": p_small}, tokens), full.apply({"params": p_full}, tokens),
                               rtol=2e-5, atol=2e-6)


def test_bottleneck_init_matches_the_full_tables_scale():
    """E (variance 1/K) times P (variance 1/width) has entries of variance 1/width, as the full table's."""
    V, K, W = 4000, 8, 32
    m = TextTransformer(width=W, depth=1, mlp_dim=64, num_heads=2, vocab_size=V, out_dim=16, embedding_bottleneck=K)
    p = m.init(jax.random.key(1), np.zeros((1, 4), np.int32))["params"]
    X = np.asarray(p["embedding"]["embedding"] @ p["embedding_projection"]["kernel"], np.float64)
    full = TextTransformer(width=W, depth=1, mlp_dim=64, num_heads=2, vocab_size=V, out_dim=16)
    F = np.asarray(full.init(jax.random.key(1), np.zeros((1, 4), np.int32))["params"]["embedding"]["embedding"])
    assert X.var() == pytest.approx(1 / W, rel=0.15)
    assert F.var() == pytest.approx(1 / W, rel=0.05)


def test_tower_configs_bottleneck_option():
    image, text = tower_configs({"image_variant": "mu/4"}, vocab_size=20, image_size=16, max_len=8)
    assert "embedding_bottleneck" not in text                     # off by default: the old towers exactly
    assert default_config().model.text_bottleneck is None
    _, text = tower_configs({"image_variant": "mu/4", "text_bottleneck": 6}, vocab_size=20, image_size=16, max_len=8)
    assert text["embedding_bottleneck"] == 6
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="text_bottleneck"):
            tower_configs({"image_variant": "mu/4", "text_bottleneck": bad}, vocab_size=20, image_size=16, max_len=8)


# ---------------------------------------------------------------------------------------------
# Generated languages in the shapes captions.


def test_generated_languages_leave_the_default_data_unchanged():
    plain = data.ShapesDataset(seed=2).get(np.arange(40))
    assert plain["captions"] == [data.shapes_attributes(2, i)["caption"] for i in range(40)]
    assert "language" not in plain["labels"]
    multi = data.ShapesDataset(seed=2, extra_languages=3).get(np.arange(40))
    np.testing.assert_array_equal(plain["images"], multi["images"])
    for k in data.ATTRIBUTES:
        np.testing.assert_array_equal(plain["labels"][k], multi["labels"][k])
    assert default_config().data.extra_languages == 0


def test_generated_languages_are_word_for_word_translations():
    L = 3
    ds = data.ShapesDataset(seed=5, extra_languages=L)
    english = data._english_vocabulary()
    tables = data.generated_languages(L)
    words = [w for t in tables for w in t.values()]
    assert len(set(words)) == len(words) == L * len(english) and not set(words) & set(english)
    assert ds.vocabulary() == sorted(set(english) | set(words))
    out = ds.get(np.arange(400))
    langs = out["labels"]["language"]
    assert set(np.unique(langs)) == set(range(L + 1)) and np.bincount(langs).min() > 60
    tok = WordTokenizer(ds.vocabulary())
    for i, (cap, lang) in enumerate(zip(out["captions"], langs)):
        eng = data.shapes_attributes(5, i)["caption"]
        inverse = {v: k for k, v in tables[lang - 1].items()} if lang else {w: w for w in english}
        assert " ".join(inverse[w] for w in cap.split()) == eng
        assert ds.translate(eng, int(lang)) == cap
        assert UNK not in tok.tokens(cap)
    assert data.generated_languages(L) is tables                  # cached, deterministic
    assert ds.translate("a picture of a circle", 2) == " ".join(tables[1][w] for w in "a picture of a circle".split())


def test_generated_languages_bad_input():
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="generated languages"):
            data.ShapesDataset(extra_languages=bad)
    ds = data.ShapesDataset(extra_languages=2)
    with pytest.raises(ValueError, match="language must be in"):
        ds.translate("a circle", 3)
    with pytest.raises(ValueError, match="not in the shapes vocabulary"):
        ds.translate("a bicycle", 1)
    with pytest.raises(ValueError, match="option of the shapes data set"):
        data.make_dataset({"name": "folder", "root": "/nowhere", "extra_languages": 2}, seed=0)


# ---------------------------------------------------------------------------------------------
# The studies' machinery against the trainer.


def _lit_cfg(**updates):
    base = dict(total_steps=5, batch_size=8, log_steps=1, checkpoint_steps=100, progress=False,
                data=dict(name="shapes", image_size=16, max_len=8, num_examples=40),
                model=dict(image_variant="mu/4"), lit=dict(enabled=True, cache_image_embeddings=True),
                eval=dict(every_steps=0, num_examples=16, batch_size=16))
    return merge(merge(default_config(), base), updates)


def test_embed_image_pool_equals_embedding_everything_at_once():
    setup = build(_lit_cfg())
    params = init_params(setup)
    idx = np.arange(37)
    z, norms = embed_image_pool(setup, params, idx, chunk=10, batch_size=16)   # chunk rounded up to 16
    embed_images, _ = make_embedders(setup, params, 16)
    z_all, n_all = embed_images(setup.dataset.get(idx)["images"], with_norms=True)
    np.testing.assert_array_equal(z, z_all)
    np.testing.assert_array_equal(norms, n_all)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="non-empty"):
        embed_image_pool(setup, params, [])


def test_training_stream_is_the_trainers():
    stream = common.training_stream(40, 8, 12, seed=4)
    for s in range(12):
        np.testing.assert_array_equal(stream[s], data.batch_indices(s, 8, 40, 4)[0])


def test_scan_loop_reproduces_the_trainer(tmp_path):
    """scan_training (train_steps on chunks of steps, batches gathered from the device pool) logs train()'s
    losses, t and b (one host batch per step), and ends at its parameters, for each parameterization and bias init."""
    for parameterization, bias in (("standard", -10.0), ("standard", 0.0), ("relative_bias", -10.0), ("softmax", -10.0)):
        cfg = _lit_cfg(loss=dict(parameterization=parameterization, bias_init=bias))
        reference = train(cfg, tmp_path / f"{parameterization}{bias}")
        setup = build(cfg)
        params = init_params(setup)
        z, norms = embed_image_pool(setup, params, np.arange(40), batch_size=cfg.eval.batch_size)
        captions = setup.dataset.get(np.arange(40), images=False)["captions"]
        pool = {"tokens": setup.tokenizer.encode(captions, setup.max_len), "zimg": z, "img_norm": norms}
        stream = common.training_stream(40, cfg.batch_size, cfg.total_steps, cfg.seed)
        host, history, _ = common.scan_training(setup, params, pool, stream)
        logged = [r for r in reference.metrics if "loss" in r]
        for key in ("loss", "t", "b"):
            np.testing.assert_allclose(history[key], [r[key] for r in logged], rtol=1e-5, atol=1e-6, err_msg=key)
        for a, b in zip(jax.tree.leaves(host["txt"]), jax.tree.leaves(reference.params["txt"])):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        for a, b in zip(jax.tree.leaves(host["img"]), jax.tree.leaves(reference.params["img"])):
            np.testing.assert_array_equal(a, b)                  # frozen


def test_lit_config_and_frozen_spec_bad_input():
    spec = common.FrozenSpec(pool_size=100)
    with pytest.raises(ValueError, match="multiple of the batch"):
        common.lit_config(spec, common.LitSpec(batch_size=32, examples_seen=100))
    with pytest.raises(ValueError, match="exceeds the training pool"):
        common.lit_config(spec, common.LitSpec(batch_size=128, examples_seen=256))
    with pytest.raises(ValueError, match="positive integer"):
        common.FrozenSpec(pool_size=0)


def test_same_attribute_fraction_counts_pairs():
    labels = {k: np.zeros(5, np.int32) for k in data.ATTRIBUTES}
    labels["shape"] = np.array([0, 0, 1, 1, 2], np.int32)           # 2 groups of 2: 4 ordered pairs of 20
    assert common.same_attribute_fraction(labels) == pytest.approx(4 / 20)


@pytest.mark.parametrize("quadratic", [(3.0, 50.0, 400.0), (0.01, 900.0, 5000.0)])
def test_memory_search_finds_the_largest_fitting_grid_point(monkeypatch, quadratic):
    """Bytes a n^2 + b n + c plus a bump (not quadratic): the search returns the largest grid n under budget."""
    a, b, c = quadratic

    def fake(label, D, n, width, tile=None):
        return {"total": int(a * n * n + b * n + c + (700 if n % 48 == 0 else 0))}

    monkeypatch.setattr(memory, "compiled_bytes", fake)
    for budget in (2e4, 3e5, 1e6):
        grid = 16
        truth = max((n for n in range(grid, 4097, grid) if fake("", 1, n, 0)["total"] <= budget), default=0)
        res = memory.largest_batch("x", 2, 8, budget, grid, 4096)
        assert res["n"] == truth and res["batch"] == 2 * truth
        assert res["capped"] == (truth + grid > 4096)
    tiny = memory.largest_batch("x", 1, 8, 10.0, 16, 4096)
    assert tiny["n"] == 0


def test_softmax_all_gather_matches_the_dense_softmax_on_two_devices():
    """The memory study's CLIP loss under shard_map equals constellations.loss.softmax_loss (values and grads)."""
    code = ("import json; from experiments.siglip_studies import memory; "
            "print('RESULT' + json.dumps(memory.reference_check(2, 12, 5, 7, labels=('softmax_all_gather',))))")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))[6:])
    assert set(res) == {"softmax_all_gather"}
    for label, r in res.items():
        assert r["value_error"] < 1e-5 and r["grad_error"] < 1e-4 and r["t_grad_error"] < 1e-4, (label, r)


# ---------------------------------------------------------------------------------------------
# How claims are judged.


def test_compare_judges_the_mean_against_its_standard_error():
    """A claim holds only beyond 2 standard errors of the paired differences; within them it is not shown."""
    from experiments.lab import compare, verdict

    assert compare([0.10, 0.12, 0.09]).status is True
    assert compare([-0.10, -0.12, -0.09]).status is False
    noisy = compare([0.10, -0.10, 0.05])
    assert noisy.status is None and noisy.se == pytest.approx(np.std([0.10, -0.10, 0.05], ddof=1) / math.sqrt(3))
    single = compare([0.5])
    assert single.status is None and math.isnan(single.se) and "n/a" in single.text()
    assert compare([0.010, 0.012, 0.011], threshold=0.02).status is False
    assert compare([0.030, 0.032, 0.031], threshold=0.02).status is True
    for bad in ([], [0.1, float("nan")]):
        with pytest.raises(ValueError, match="finite differences"):
            compare(bad)
    assert verdict(None, False) == "not shown (within seed noise)"
    assert verdict(True, True) == "not judged (quick scale)"
    assert verdict(False, False) == "did not hold"


def test_saturation_verdicts():
    """Rises by over a point then peaks before the largest batch: held; best at the smallest batch, or a rise clearly
    under a point: did not hold; else not shown."""
    from experiments.siglip_studies.siglit import saturation

    cfg = {"batch_sizes": [32, 64, 128, 256]}

    def runs(values_per_batch):
        return [[{"zeroshot/shape": v, "zeroshot/colour": v} for v in vs] for vs in values_per_batch]

    held = saturation(cfg, runs([[0.50, 0.51, 0.49], [0.60, 0.61, 0.60], [0.70, 0.71, 0.69], [0.70, 0.69, 0.70]]))
    assert held[0] is True and held[1] == 128
    falls = saturation(cfg, runs([[0.70, 0.71, 0.69], [0.60, 0.61, 0.60], [0.50, 0.5, 0.5], [0.4, 0.4, 0.4]]))
    assert falls[0] is False and falls[1] == 32
    still_rising = saturation(cfg, runs([[0.5, 0.5, 0.5], [0.6, 0.6, 0.61], [0.7, 0.7, 0.7], [0.8, 0.8, 0.81]]))
    assert still_rising[0] is None and still_rising[1] == 256
    tiny_rise = saturation(cfg, runs([[0.600, 0.610, 0.620], [0.605, 0.616, 0.624], [0.6, 0.6, 0.6], [0.5, 0.5, 0.5]]))
    assert tiny_rise[0] is False and tiny_rise[1] == 64      # significant, but well under one point
    noise = saturation(cfg, runs([[0.5, 0.7, 0.6], [0.7, 0.5, 0.62], [0.5, 0.6, 0.5], [0.5, 0.5, 0.6]]))
    assert noise[0] is None and noise[1] == 64          # best above the smallest, by less than the noise


def test_cli_trains_a_bottlenecked_multilingual_tower_and_resumes_it(tmp_path, capsys):
    """The two options through `python -m constellations.siglip train --set ...`: the checkpoint holds the
    (vocab, K) table and the (K, width) projection, the vocabulary covers every language, and eval reloads it."""
    from constellations.siglip.__main__ import main as siglip_cli
    from constellations.siglip.checkpoint import read_checkpoint

    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(
        "from constellations.siglip.config import Config\n"
        "def get_config(arg=None):\n"
        "    return Config(total_steps=2, batch_size=16, log_steps=1, progress=False,\n"
        "                  data=dict(image_size=16, max_len=12), model=dict(image_variant='mu/4'),\n"
        "                  eval=dict(every_steps=2, num_examples=24, batch_size=24))\n")
    wd = tmp_path / "run"
    assert siglip_cli(["train", "--config", str(cfg_file), "--workdir", str(wd), "--set", "data.extra_languages=2",
                       "--set", "model.text_bottleneck=4"]) == 0
    capsys.readouterr()
    saved = json.loads((wd / "config.json").read_text())
    assert saved["data"]["extra_languages"] == 2 and saved["model"]["text_bottleneck"] == 4
    words = set(json.loads((wd / "tokenizer.json").read_text())["words"])
    n_words = 3 * len(data._english_vocabulary())
    assert words == set(data.ShapesDataset(extra_languages=2).vocabulary()) and len(words) == n_words
    _, arrays = read_checkpoint(wd)
    projection = [a for name, a in arrays.items() if "embedding_projection" in name and "kernel" in name]
    table = [a for name, a in arrays.items() if "['txt']['embedding']['embedding']" in name]
    assert [p.shape for p in projection if p.ndim == 2][:1] == [(4, 32)]       # (K, width): optimizer moments too
    assert table and all(t.shape[1] == 4 and t.shape[0] >= n_words for t in table)
    assert siglip_cli(["eval", "--workdir", str(wd)]) == 0


def test_frozen_tower_cache_loads_what_was_saved_and_refuses_a_damaged_one(out_dir, tmp_path):
    """The quick studies' cached tower loads back equal (checkpoint + embeddings); a truncated embeddings
    file or checkpoint is a clear error, never a silently retrained or half-read tower."""
    import shutil

    spec = common.FrozenSpec(**_read(out_dir, "siglit", "config.json")["frozen"])
    first = common.frozen_image_tower(out_dir, spec, progress=False)
    assert first.loaded_from_cache
    for damaged in ("embeddings.npz", "checkpoints"):
        root = tmp_path / damaged
        shutil.copytree(out_dir / "siglip_frozen_tower", root / "siglip_frozen_tower")
        again = common.frozen_image_tower(root, spec, progress=False)
        np.testing.assert_array_equal(again.train_z, first.train_z)
        np.testing.assert_array_equal(again.eval_labels["shape"], first.eval_labels["shape"])
        for a, b in zip(jax.tree.leaves(again.img_params), jax.tree.leaves(first.img_params)):
            np.testing.assert_array_equal(a, b)
        target = root / "siglip_frozen_tower" / damaged
        if target.is_dir():
            target = next(target.glob("ckpt-*.npz"))
        target.write_bytes(target.read_bytes()[:200])
        with pytest.raises(ValueError, match="frozen-tower cache .* is damaged"):
            common.frozen_image_tower(root, spec, progress=False)


# ---------------------------------------------------------------------------------------------
# The studies' configs at every scale (the "large" one runs only where a GPU is at hand, so it is checked here).


@pytest.mark.parametrize("scale", ["quick", "full", "large"])
def test_study_configs_build_at_every_scale(scale):
    """get_config(scale) of siglit, bias_init and bottleneck: JSON data whose every planned run is a valid trainer config
    (batch within the pool, examples a multiple of the batch, variants known), seed lists that pair, and at "large" the
    accelerator scale: wider towers, batches up to 16k-32k, more seeds than full."""
    from constellations.siglip.models import decode_variant
    from constellations.siglip.train import validate_config
    from experiments.siglip_studies import bias_init, bottleneck, siglit

    arg = "seed=4" if scale == "full" else f"{scale},seed=4"
    configs = {m.NAME: m.get_config(arg) for m in (siglit, bias_init, bottleneck)}
    specs = {"siglit": [s for *_, s in siglit.plan(configs["siglit"])],
             "bias_init": [s for *_, s in bias_init.plan(configs["bias_init"])],
             "bottleneck": bottleneck.specs(configs["bottleneck"])}
    full = siglit.get_config("seed=4")
    for name, cfg in configs.items():
        assert json.loads(json.dumps(cfg)) == cfg.to_dict() and cfg["seed"] == 4 and cfg["quick"] == (scale == "quick")
        frozen = common.FrozenSpec(**cfg["frozen"])
        assert frozen.seed == 4 and specs[name]
        for spec in specs[name]:
            validate_config(common.lit_config(frozen, spec))
            assert spec.batch_size <= frozen.pool_size and spec.run_seed in cfg.get("small_batch_run_seeds", cfg["run_seeds"])
    cfg = configs["siglit"]
    assert cfg["small_batch_run_seeds"][:len(cfg["run_seeds"])] == cfg["run_seeds"]
    equal_steps = [s for arm, _, _, s in siglit.plan(cfg) if arm == "equal steps"]
    assert {s.steps for s in equal_steps} == {cfg["equal_steps"]["steps"]}
    assert {s.examples_seen for arm, _, _, s in siglit.plan(cfg) if arm == "equal examples"} == {cfg["examples_seen"]}
    if scale == "large":
        assert max(cfg["batch_sizes"]) >= 16384 and max(configs["bias_init"]["batch_sizes"]) >= 16384
        assert len(cfg["run_seeds"]) > len(full["run_seeds"])
        for name in ("siglit", "bottleneck"):
            wide = decode_variant(configs[name]["text_variant"])["width"]
            assert wide > decode_variant(siglit.get_config()["text_variant"])["width"] if name == "siglit" else \
                wide > decode_variant(bottleneck.get_config()["text_variant"])["width"]
        assert decode_variant(cfg["frozen"]["image_variant"])["width"] > decode_variant(full["frozen"]["image_variant"])["width"]


def test_study_config_errors_name_the_field():
    """A plan whose seeds do not pair, whose steps are not positive, or whose batch exceeds the pool is refused."""
    from experiments.siglip_studies import siglit

    base = siglit.get_config().to_dict()
    for field, value, match in (("small_batch_run_seeds", [9, 0, 1, 2], "small_batch_run_seeds"),
                                ("run_seeds", [], "run_seeds"),
                                ("equal_steps", dict(base["equal_steps"], steps=0), "equal_steps.steps"),
                                ("effect_to_detect", 2.0, "effect_to_detect"),
                                ("batch_sizes", [32, 1 << 15], "exceeds the training pool")):
        with pytest.raises(ValueError, match=match):
            siglit.check_config(dict(base, **{field: value}))


def test_saturation_pairs_the_common_seeds():
    """More seeds at the small batches than at the large ones: the best batch is paired with the smallest on the
    seeds both ran (the first ones), and the claim's Comparison carries the status and the MDE."""
    from experiments.siglip_studies.siglit import RISE, saturation

    def runs(values_per_batch):
        return [[{"zeroshot/shape": v, "zeroshot/colour": v} for v in vs] for vs in values_per_batch]

    status, best, rise = saturation({"batch_sizes": [32, 64, 128]},
                                    runs([[0.50, 0.52, 0.49, 0.45, 0.46], [0.60, 0.61, 0.60], [0.55, 0.56, 0.55]]))
    assert best == 64 and rise.n == 3 and status is True and rise.status is True
    assert rise.mean == pytest.approx(np.mean([0.10, 0.09, 0.11])) and rise.threshold == RISE and rise.mde > 0


def test_frozen_tower_lock_makes_a_second_process_wait(tmp_path):
    """Studies run side by side share the frozen tower: while one process holds the cache's lock (training), another
    waits for it instead of training the same tower again."""
    import subprocess
    import sys
    import time

    lock = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from experiments.siglip_studies import common\n"
        f"with common._exclusive(Path({str(lock)!r})):\n"
        "    print('locked', flush=True); time.sleep(1.5)\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.perf_counter()
    with common._exclusive(lock):
        waited = time.perf_counter() - t0
    holder.wait(timeout=30)
    assert waited > 0.5
