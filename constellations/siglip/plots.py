"""Training curves of SigLIP runs: what a SigLIP user looks at, from any workdir's ``metrics.jsonl``.

``plot_runs([workdir, ...], out)`` draws, for one run or several overlaid (to compare
parameterizations or batch sizes), the loss, the inverse temperature t, the bias b and the learned
relative bias b_rel = -b / t, the positive and negative logits (mean, with the min..max band), the
learning rate, zero-shot accuracy per task (chance dotted) and retrieval recall@1 over steps. The
trainer writes ``curves.png`` into its workdir at the end of training; ``python -m constellations.siglip
plot WORKDIR [WORKDIR ...] --out FILE.png`` draws any set of workdirs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import io


def read_metrics(workdir) -> tuple[list[dict], list[dict]]:
    """The training records (with a "loss") and the evaluation records (with "zeroshot/..." keys) of a workdir.

    Raises ValueError naming the file when it is missing or a line is not JSON. A resumed run may log a
    step twice: the later record wins.
    """
    path = Path(workdir) / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"workdir {str(workdir)!r} has no metrics.jsonl (is it a training run's workdir?)")
    train, evals = {}, {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n} is not a JSON record ({e.msg})") from None
        if "loss" in record:
            train[record["step"]] = record
        elif any(k.startswith(("zeroshot/", "retrieval/")) for k in record):
            evals[record["step"]] = record
    return [train[s] for s in sorted(train)], [evals[s] for s in sorted(evals)]


def _series(records: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    if not rows:
        return np.empty(0), np.empty(0)
    steps, values = zip(*rows)
    return np.asarray(steps, float), np.asarray(values, float)


def _b_rel(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    steps, b = _series(records, "b")
    _, t = _series(records, "t")
    return (steps, -b / t) if len(b) and len(b) == len(t) else (np.empty(0), np.empty(0))


def plot_runs(workdirs, out, *, labels=None) -> Path:
    """Draw the training curves of one or several workdirs (overlaid, one colour each) to ``out`` (PNG)."""
    workdirs = [Path(w) for w in ([workdirs] if isinstance(workdirs, (str, Path)) else workdirs)]
    if not workdirs:
        raise ValueError("plot_runs needs at least one workdir")
    labels = [w.name for w in workdirs] if labels is None else list(labels)
    if len(labels) != len(workdirs):
        raise ValueError(f"labels must name every workdir: {len(labels)} labels for {len(workdirs)} workdirs")
    runs = [read_metrics(w) for w in workdirs]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    ax = dict(zip(["loss", "t", "b", "b_rel", "logits", "lr", "zeroshot", "retrieval"], axes.ravel()))
    for k, ((train, evals), label) in enumerate(zip(runs, labels)):
        color = f"C{k % 10}"
        for key in ("loss", "t", "b", "lr"):
            ax[key].plot(*_series(train, key), color=color, label=label)
        ax["b_rel"].plot(*_b_rel(train), color=color, label=label)
        for side, ls in (("pos", "-"), ("neg", "--")):
            steps, mean = _series(train, f"{side}_mean")
            ax["logits"].plot(steps, mean, color=color, ls=ls, label=f"{label}: {'positive' if side == 'pos' else 'negative'}")
            _, lo = _series(train, f"{side}_min")
            _, hi = _series(train, f"{side}_max")
            if len(lo) == len(hi) == len(steps) and len(steps):
                ax["logits"].fill_between(steps, lo, hi, color=color, alpha=0.12, lw=0)
        tasks = sorted({key[len("zeroshot/"):] for r in evals for key in r
                        if key.startswith("zeroshot/") and not key.endswith("_chance")})
        for j, task in enumerate(tasks):
            ls = ["-", "--", "-.", ":"][j % 4]
            ax["zeroshot"].plot(*_series(evals, f"zeroshot/{task}"), color=color, ls=ls, marker=".", label=f"{label}: {task}")
            chance = _series(evals, f"zeroshot/{task}_chance")[1]
            if len(chance) and k == 0:
                ax["zeroshot"].axhline(chance[0], color="0.5", ls=ls, lw=0.6)
        for direction, ls in (("img2txt", "-"), ("txt2img", "--")):
            ax["retrieval"].plot(*_series(evals, f"retrieval/{direction}_recall@1"), color=color, ls=ls, marker=".",
                                 label=f"{label}: {direction.replace('2', ' -> ')}")
    losses = np.concatenate([_series(train, "loss")[1] for train, _ in runs])
    spread = losses.size and losses.min() > 0 and losses.max() / losses.min() > 20
    ax["loss"].set(yscale="log" if spread else "linear", title="loss (per example)", xlabel="step")
    ax["t"].set(title="inverse temperature t", xlabel="step")
    ax["b"].set(title="bias b", xlabel="step")
    ax["b_rel"].set(title="relative bias b_rel = -b / t", xlabel="step")
    ax["logits"].set(title="logits: positive (solid), negative (dashed); min..max shaded", xlabel="step")
    ax["lr"].set(title="learning rate", xlabel="step")
    ax["zeroshot"].set(title="zero-shot accuracy (grey: chance)", xlabel="step", ylim=(0, 1.02))
    ax["retrieval"].set(title="retrieval recall@1", xlabel="step", ylim=(0, 1.02))
    for a in axes.ravel():
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    fig.tight_layout()
    path = io.save_figure(fig, Path(out))
    plt.close(fig)
    return path


class TensorBoardLog:
    """Scalars to TensorBoard event files in ``<workdir>/tensorboard`` where the ``tensorboard`` package is
    installed (an optional dependency: ``pip install tensorboard``; nothing needs it). Without it,
    :meth:`create` returns None and the run writes metrics.jsonl and curves.png only.
    """

    def __init__(self, folder: Path):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer = EventFileWriter(str(folder))

    @classmethod
    def create(cls, workdir) -> "TensorBoardLog | None":
        try:
            return cls(Path(workdir) / "tensorboard")
        except ImportError:
            return None

    def write(self, record: dict) -> None:
        """One metrics record (a dict with "step"): every real number becomes a scalar at that step."""
        import time

        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [Summary.Value(tag=k, simple_value=float(v)) for k, v in record.items()
                  if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)]
        if values:
            self._writer.add_event(Event(wall_time=time.time(), step=int(record["step"]), summary=Summary(value=values)))
            self._writer.flush()

    def close(self) -> None:
        self._writer.close()
