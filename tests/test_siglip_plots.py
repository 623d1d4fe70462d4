"""Training curves (issue 17.3): any workdirs' metrics.jsonl drawn to one PNG, several runs overlaid."""

import json

import numpy as np
import pytest

from constellations.siglip.plots import plot_runs, read_metrics


def _workdir(path, t_end, b_end, steps=50):
    path.mkdir()
    lines = [{"step": 0, "zeroshot/shape": 0.2, "zeroshot/shape_chance": 1 / 6, "retrieval/img2txt_recall@1": 0.0,
              "retrieval/txt2img_recall@1": 0.0, "geometry/margin": -0.5}]
    for s in range(10, steps + 1, 10):
        f = s / steps
        lines.append({"step": s, "loss": 6 * (1 - f) + 0.1, "t": 10 + f * (t_end - 10), "b": -10 + f * (b_end + 10),
                      "lr": 1e-3 * (1 - f), "pos_mean": f * 5, "pos_min": f * 3, "pos_max": f * 6, "neg_mean": -5,
                      "neg_min": -7, "neg_max": -3})
    lines.append({"step": steps, "zeroshot/shape": 0.9, "zeroshot/shape_chance": 1 / 6,
                  "retrieval/img2txt_recall@1": 0.5, "retrieval/txt2img_recall@1": 0.4})
    lines.append({**lines[-2], "loss": 0.05})   # a resumed run logs the last step again: the later record wins
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return path


def test_read_metrics_splits_training_and_evaluation_records(tmp_path):
    train, evals = read_metrics(_workdir(tmp_path / "run", 20.0, -12.0))
    assert [r["step"] for r in train] == [10, 20, 30, 40, 50] and train[-1]["loss"] == 0.05
    assert [r["step"] for r in evals] == [0, 50] and evals[-1]["zeroshot/shape"] == 0.9


def test_plot_runs_overlays_workdirs(tmp_path):
    a = _workdir(tmp_path / "standard", 20.0, -12.0)
    b = _workdir(tmp_path / "relative_bias", 30.0, -20.0)
    out = plot_runs([a, b], tmp_path / "curves.png")
    assert out.stat().st_size > 20_000
    import matplotlib.image

    img = matplotlib.image.imread(out)
    assert img.shape[1] > img.shape[0] > 500 and np.std(img) > 0.05   # a drawn figure, not a blank page


def test_plot_runs_says_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="no metrics.jsonl"):
        plot_runs([tmp_path], tmp_path / "x.png")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.jsonl").write_text('{"step": 1, "loss": 2}\nnot json\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2"):
        read_metrics(bad)
    with pytest.raises(ValueError, match="labels"):
        plot_runs([_workdir(tmp_path / "r", 20.0, -12.0)], tmp_path / "y.png", labels=["a", "b"])


def test_tensorboard_event_files_hold_the_scalars(tmp_path):
    """Where tensorboard is installed, the run's metrics also go to event files that TensorBoard reads back."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from constellations.siglip.plots import TensorBoardLog

    log = TensorBoardLog.create(tmp_path)
    log.write({"step": 10, "loss": 2.5, "t": 10.0, "name": "text is skipped", "flag": True})
    log.write({"step": 20, "loss": 1.5, "t": 11.0})
    log.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"loss", "t"}
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(10, 2.5), (20, 1.5)]


def test_every_config_field_is_explained_and_the_config_command_prints_them(capsys):
    """Issue 17.4: `python -m constellations.siglip config FILE` lists every resolved field with its meaning."""
    from pathlib import Path

    from constellations.siglip.__main__ import main
    from constellations.siglip.config import FIELD_HELP, _flatten, default_config

    assert set(_flatten(default_config())) == set(FIELD_HELP)
    cfg = Path(__file__).resolve().parents[1] / "experiments" / "siglip" / "shapes_tiny.py"
    assert main(["config", str(cfg), "--set", "optim.lr=3e-4"]) == 0
    out = capsys.readouterr().out
    assert "optim.lr = 0.0003" in out and "peak learning rate" in out and "(undocumented)" not in out
    assert len(out.splitlines()) == len(FIELD_HELP)


def test_plot_command_draws_workdirs(tmp_path, capsys):
    from constellations.siglip.__main__ import main

    a = _workdir(tmp_path / "a", 20.0, -12.0)
    assert main(["plot", str(a), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 20_000
    assert main(["plot", str(tmp_path / "missing")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
