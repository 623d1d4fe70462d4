"""Shared pieces of the synthetic experiments E1-E9: outcome record, progress, saving, plotting, formatting."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from constellations import io


@dataclass
class Outcome:
    """What an experiment (E1-E9, or a SigLIP study) hands back to its CLI and the report.

    Attributes:
      name, title: "e6", "E6 frozen b_rel sweep".
      markdown: the report fragment (our numbers next to the paper's, figures, verdict).
      checks: check name -> (status, kind). kind "consistency" must hold at every scale (status True
        or False; a False is a bug). kind "claim" is a claim of a paper, judged at full scale only:
        True (held), False (did not hold), or None (not shown: within seed noise, SigLIP studies);
        a claim that does not hold is a finding, not a failure.
      wall_time_s: time of the whole experiment.
    """

    name: str
    title: str
    markdown: str
    checks: dict = field(default_factory=dict)
    quick: bool = False
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every consistency check passed."""
        return not self.failed()

    def failed(self) -> list[str]:
        """The consistency checks that failed."""
        return [n for n, (passed, kind) in self.checks.items() if kind == "consistency" and not passed]

    def claims(self) -> dict:
        """Claim name -> status (True, False or None)."""
        return {n: passed for n, (passed, kind) in self.checks.items() if kind == "claim"}


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar counting run-steps (None when disabled)."""
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", unit_scale=True, leave=False, dynamic_ncols=True)


def save_config(out: Path, config: dict) -> None:
    io.write_json(out / "config.json", config)


def save_result(out: Path, stem: str, result, *, keep_loss_every: int = 1, extra: dict | None = None) -> Path:
    """Write a SyntheticResult's raw numbers to ``<out>/<stem>.npz`` (loss subsampled every ``keep_loss_every``)."""
    arrays = {
        "t": result.t, "b_rel": result.b_rel, "bias": result.bias, "delta": result.delta,
        "margin": result.margin, "relative_bias": result.relative_bias, "final_loss": result.final_loss,
        "loss": result.loss[..., ::keep_loss_every], "loss_steps": np.arange(result.loss.shape[-1])[::keep_loss_every],
        "history_steps": result.history_steps,
        **{f"history_{k}": v for k, v in result.history.items()},
    }
    if extra:
        arrays.update(extra)
    return io.save_npz(out / f"{stem}.npz", **arrays)


def consistency_checks(result, label: str, tol: float = 1e-5) -> dict:
    """In-graph float32 metrics agree with geometry's float64 recomputation on the final vectors."""
    m_graph = result.history["margin"][..., -1].astype(np.float64)
    b_graph = result.history["relative_bias"][..., -1].astype(np.float64)
    finite = bool(np.all(np.isfinite(result.loss)) and np.all(np.isfinite(result.margin)))
    agree = bool(np.max(np.abs(m_graph - result.margin)) < tol and np.max(np.abs(b_graph - result.relative_bias)) < tol)
    return {f"{label}: losses finite": (finite, "consistency"),
            f"{label}: logged m*, b*_rel match geometry (float64) within {tol:g}": (agree, "consistency")}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_fig(fig, out: Path, name: str) -> str:
    io.save_figure(fig, out / name)
    pyplot().close(fig)
    return name


def fmt(x, digits: int = 3) -> str:
    """Compact number: 3 significant digits, scientific below 1e-3 (0 stays 0)."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{max(digits - 1, 0)}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"


def mean_sd(x) -> str:
    x = np.asarray(x, np.float64)
    return fmt(x.mean()) if x.size == 1 else f"{fmt(x.mean())} ± {fmt(x.std(ddof=1))}"


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def steps_to_reach(loss: np.ndarray, threshold: float) -> np.ndarray:
    """First step at which the loss is below ``threshold`` (NaN if never), along the last axis."""
    below = loss < threshold
    first = np.argmax(below, axis=-1).astype(np.float64)
    return np.where(below.any(axis=-1), first, np.nan)


def median_steps(reach: np.ndarray) -> float:
    """Median of :func:`steps_to_reach` counting a run that never got there as infinitely slow."""
    return float(np.median(np.where(np.isnan(reach), np.inf, reach)))


def fmt_steps(x) -> str:
    return fmt(x) if np.isfinite(x) else "never"


def verdict(held: bool, text_held: str, text_failed: str) -> str:
    return f"**Claim held.** {text_held}" if held else f"**Claim did not hold.** {text_failed}"


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.t0
