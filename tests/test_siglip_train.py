"""Tests of the SigLIP trainer: initial loss, bit-exact resume, LiT freezing, the NaN guard, the CLI.

All runs use BV's micro variant ("mu") on 16-pixel shapes, so each compiles and trains in seconds.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from constellations.siglip import checkpoint as ckpt
from constellations.siglip.__main__ import main as cli
from constellations.siglip.config import apply_overrides, default_config, load_config, merge
from siglip_runs import leaves_equal, tiny_config
from constellations.siglip.data import ShapesDataset
from constellations.siglip.losses import dense_sigmoid_loss
from constellations.siglip.models import TwoTowers, init_towers, tower_configs
from constellations.siglip.tokenizer import WordTokenizer
from constellations.siglip.train import TrainingDiverged, learning_rate_schedule, make_optimizer, kernel_mask, train


def tiny(**updates):
    return tiny_config(dict(total_steps=6, checkpoint_steps=100), updates)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_initial_loss_of_random_towers_is_about_10(seed):
    """SigLIP init t = 10, b = -10 (siglip_reference.md 6.4): each positive costs softplus(10 - 10 s_ii) ~ 10
    and the B - 1 negatives ~ (B - 1) e^{-10}, so the per-example loss is ~10 - 10 mean(s_ii), with
    s_ii ~ 0 for random towers."""
    ds = ShapesDataset(seed)
    tok = WordTokenizer(ds.vocabulary())
    image, text = tower_configs({"image_variant": "mu/4"}, vocab_size=tok.vocab_size, image_size=16, max_len=8)
    model = TwoTowers(image, text)
    params = init_towers(model, jax.random.key(seed), image_size=16, max_len=8)
    batch = ShapesDataset(seed, image_size=16).get(np.arange(64))
    zimg, ztxt, out = jax.jit(model.apply)({"params": params}, batch["images"], tok.encode(batch["captions"], 8))
    np.testing.assert_allclose(np.linalg.norm(zimg, axis=1), 1.0, atol=1e-5)
    loss, _ = dense_sigmoid_loss(zimg, ztxt, 10.0, -10.0)
    s_pos = float(jnp.mean(jnp.sum(zimg * ztxt, axis=1)))
    assert abs(s_pos) < 0.3
    assert 8.0 < float(loss) < 12.0
    assert abs(float(loss) - (10.0 - 10.0 * s_pos)) < 0.1


def test_resume_is_bit_exact(tmp_path):
    """k steps, stop, resume, n - k steps == n straight steps: same parameters, optimizer state and losses."""
    cfg = tiny()
    straight = train(cfg, tmp_path / "a")
    first = train(cfg, tmp_path / "b", stop_at_step=2)
    assert first.step == 2 and ckpt.latest_checkpoint(tmp_path / "b").name == "ckpt-000000002.npz"
    resumed = train(cfg, tmp_path / "b")
    assert resumed.step == 6
    assert leaves_equal(straight.params, resumed.params)
    assert not leaves_equal(straight.params, first.params)            # training moved them
    ha, a = ckpt.read_checkpoint(tmp_path / "a")
    hb, b = ckpt.read_checkpoint(tmp_path / "b")
    assert ha["names"] == hb["names"] and all(np.array_equal(a[k], b[k]) for k in a)
    losses = lambda wd: [r["loss"] for r in map(json.loads, (wd / "metrics.jsonl").read_text().splitlines())]
    assert losses(tmp_path / "a") == losses(tmp_path / "b") and len(losses(tmp_path / "a")) == 6


def test_lit_keeps_the_image_tower_bit_identical(tmp_path):
    """LiT: image params loaded by model_init are unchanged after training (text tower and t, b move);
    also with cached image embeddings of a finite data set."""
    base = train(tiny(), tmp_path / "base", stop_at_step=2)
    for cache in (False, True):
        cfg = tiny(total_steps=3, model_init=str(tmp_path / "base"), lit=dict(enabled=True, cache_image_embeddings=cache),
                   data=dict(num_examples=48))
        res = train(cfg, tmp_path / f"lit{cache}")
        assert leaves_equal(res.params["img"], base.params["img"])
        assert not leaves_equal(res.params["txt"], base.params["txt"])
        assert float(res.params["loss"]["b"]) != float(base.params["loss"]["b"])
    with pytest.raises(ValueError, match="finite"):
        train(tiny(lit=dict(enabled=True, cache_image_embeddings=True)), tmp_path / "inf")


def test_nan_guard_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    """A NaN batch at step 3 stops training with a clear message; LAST still names the step-2 checkpoint."""
    real_get = ShapesDataset.get

    def poisoned(self, indices, epochs=None, **kw):
        out = real_get(self, indices, epochs, **kw)
        if "images" in out and np.min(indices) >= 32:           # step 3 of batch 16 starts at index 32
            out["images"] = np.full_like(out["images"], np.nan)
        return out

    monkeypatch.setattr(ShapesDataset, "get", poisoned)
    with pytest.raises(TrainingDiverged, match="step 3"):
        train(tiny(checkpoint_steps=1), tmp_path)
    assert ckpt.latest_checkpoint(tmp_path).name == "ckpt-000000002.npz"
    header, _ = ckpt.read_checkpoint(tmp_path)
    assert header["step"] == 2


def test_optimizer_follows_big_vision():
    """Adam b2 = 0.95, weight decay only on kernels (not lr-scaled), warmup then cosine to 0."""
    optim = default_config().optim
    s = learning_rate_schedule(merge(optim, dict(warmup_steps=10)), 110)
    assert float(s(0)) == pytest.approx(0.1) and float(s(9)) == pytest.approx(1.0)
    assert float(s(60)) == pytest.approx(0.5, abs=1e-6) and float(s(109)) == pytest.approx(0.0, abs=1e-3)
    params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}, "loss": {"b": jnp.float32(1.0)}}
    mask = kernel_mask(params)
    assert mask["dense"]["kernel"] and not mask["dense"]["bias"] and not mask["loss"]["b"]
    tx = make_optimizer(merge(optim, dict(lr=0.0, weight_decay=0.5, warmup_steps=0, schedule="constant")), 10)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(updates["dense"]["kernel"], -0.5)          # -wd * p, no lr factor
    np.testing.assert_allclose(updates["dense"]["bias"], 0.0)


def test_clamp_is_off_by_default_and_works_when_asked(tmp_path):
    """No clamp on t unless asked (open_clip clamps t <= 100 and breaks t = 112 checkpoints)."""
    assert default_config().loss.max_temperature is None
    res = train(tiny(total_steps=2, loss=dict(temperature_init=200.0, max_temperature=100.0)), tmp_path)
    assert res.t <= 100.0 + 1e-3


def test_config_files_and_overrides(tmp_path):
    cfg = load_config("experiments/siglip/shapes_tiny.py")
    assert cfg.loss.bias_init == -10.0 and cfg.optim.b2 == 0.95
    cfg = apply_overrides(cfg, ["optim.lr=3e-4", "loss.implementation=ring"])
    assert cfg.optim.lr == 3e-4 and cfg.loss.implementation == "ring"
    with pytest.raises(ValueError, match="unknown config field"):
        apply_overrides(cfg, ["optim.learning_rate=1"])
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "nope.py")


def test_cli_train_then_eval(tmp_path, capsys):
    """`train` writes config, metrics and a checkpoint; `eval` reads them back; bad input exits 2."""
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(
        "from constellations.siglip.config import Config\n"
        "def get_config(arg=None):\n"
        "    return Config(total_steps=2, batch_size=16, log_steps=1, progress=False,\n"
        "                  data=dict(image_size=16, max_len=8), model=dict(image_variant='mu/4'),\n"
        "                  eval=dict(every_steps=2, num_examples=24, batch_size=24))\n")
    wd = tmp_path / "run"
    assert cli(["train", "--config", str(cfg_file), "--workdir", str(wd), "--set", "seed=3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 2 and 0.0 <= out["zeroshot/shape"] <= 1.0
    assert json.loads((wd / "config.json").read_text())["seed"] == 3
    assert (wd / "curves.png").stat().st_size > 20_000          # the run plots its curves at the end
    assert cli(["eval", "--workdir", str(wd)]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert res["step"] == 2 and res["zeroshot/shape"] == out["zeroshot/shape"]
    assert (wd / "eval_step2.json").is_file() and f"wrote {wd / 'eval_step2.json'}" in captured.err
    assert cli(["eval", "--workdir", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # `embed` exports the held-out embeddings; `python -m constellations analyze` reads them and finds the
    # same margin the trainer's own evaluation reported.
    from constellations.__main__ import main as analyze_main

    emb = tmp_path / "emb.npz"
    assert cli(["embed", "--workdir", str(wd), "--out", str(emb)]) == 0
    capsys.readouterr()
    arrays = np.load(emb)
    assert arrays["image"].shape == (24, arrays["text"].shape[1]) and arrays["shape_labels"].shape == (24,)
    assert analyze_main(["analyze", str(emb), str(emb), "--image-key", "image", "--text-key", "text",
                         "--json", str(tmp_path / "a.json")]) == 0
    capsys.readouterr()
    stats = json.loads((tmp_path / "a.json").read_text())
    assert stats["margin"] == pytest.approx(res["geometry/margin"], abs=1e-6)
    assert analyze_main(["analyze", str(emb), str(emb), "--image-key", "image", "--text-key", "shape_classes",
                         "--labels", str(emb), "--labels-key", "shape_labels", "--json", "-"]) == 0
    labelled = json.loads(capsys.readouterr().out)
    assert labelled["layout"] == "labelled" and labelled["image_to_text_accuracy"] == pytest.approx(res["zeroshot/shape"])


def test_compiled_loop_is_keyed_on_what_it_compiles():
    """Runs that differ only in initial values share one compiled loop (no config rewriting needed to reuse
    it); a different optimizer compiles another."""
    from constellations.siglip.train import _compiled_steps, build

    plain = build(tiny())
    other_init = build(tiny(loss=dict(temperature_init=5.0, bias_init=0.0)))
    other_lr = build(tiny(optim=dict(lr=1e-4)))
    assert _compiled_steps(plain) is _compiled_steps(other_init)
    assert _compiled_steps(plain) is not _compiled_steps(other_lr)


def test_train_result_reports_the_loss_scalars(tmp_path):
    """TrainResult.t, .b and .b_rel = -b/t come from the final loss parameters; the log's b_rel is -b/t of the
    parameters the step's loss was computed at (before its update)."""
    res = train(tiny(total_steps=2, loss=dict(parameterization="relative_bias", relative_bias_init=0.25)), tmp_path)
    p = res.params["loss"]
    assert res.t == pytest.approx(float(np.exp(p["t_prime"])), rel=1e-6)
    assert res.b_rel == pytest.approx(float(p["b_rel"]), rel=1e-6) and res.b == pytest.approx(-res.t * res.b_rel)
    assert res.metrics[0]["b_rel"] == pytest.approx(0.25, rel=1e-6) and res.b_rel != pytest.approx(0.25, rel=1e-6)
