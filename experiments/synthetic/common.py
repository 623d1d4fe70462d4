"""What only the synthetic experiments E1-E9 share: saving an engine result, its consistency checks, steps to a loss.

The lab-wide pieces (Outcome, claim wording, fmt, tables, progress, figures) are in :mod:`experiments.lab`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from constellations import io
from experiments.lab import fmt


def save_result(out: Path, stem: str, result, *, keep_loss_every: int = 1, extra: dict | None = None) -> Path:
    """Write a SyntheticResult's raw numbers to ``<out>/<stem>.npz`` (loss kept every ``keep_loss_every``
    steps, or every recorded step when the engine recorded it more sparsely: ``loss_every``)."""
    steps = result.loss_steps if result.loss_steps is not None else np.arange(result.loss.shape[-1])
    stride = max(1, keep_loss_every // max(1, int(steps[1] - steps[0]) if len(steps) > 1 else 1))
    arrays = {
        "t": result.t, "b_rel": result.b_rel, "bias": result.bias, "delta": result.delta,
        "margin": result.margin, "relative_bias": result.relative_bias, "final_loss": result.final_loss,
        "loss": result.loss[..., ::stride], "loss_steps": steps[::stride],
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
