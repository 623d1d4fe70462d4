"""How a study's claims are judged against seed noise; the Outcome record is the synthetic experiments' one.

A study's checks are name -> (status, kind) as in :class:`experiments.synthetic.common.Outcome`;
its claims may also be None (not shown: the difference is within the seed-to-seed noise).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from experiments.synthetic.common import Outcome

__all__ = ["Comparison", "Outcome", "Z", "compare", "load_average", "machine_note", "verdict"]

#: A claim holds when the mean paired difference is beyond this many standard errors of the threshold.
Z = 2.0


def verdict(status, quick: bool) -> str:
    """How a claim's status reads in the report."""
    if quick:
        return "not judged (quick scale)"
    if status is None:
        return "not shown (within seed noise)"
    return "held" if status else "did not hold"


@dataclass(frozen=True)
class Comparison:
    """Paired differences x_k (one per seed, or per seed and batch) judged against a threshold."""

    mean: float
    se: float               # standard error of the mean (nan with one difference)
    n: int
    status: bool | None     # True: mean - Z se > threshold; False: mean + Z se < threshold; None: neither

    def text(self, digits: int = 3) -> str:
        se = "n/a" if math.isnan(self.se) else f"{self.se:.{digits}f}"
        return f"{self.mean:+.{digits}f} (standard error {se}, n = {self.n})"


def compare(differences, threshold: float = 0.0) -> Comparison:
    """Is the mean of ``differences`` above ``threshold`` by more than Z standard errors (or below by as much)?

    With fewer than two differences there is no noise estimate and the status is None.
    """
    x = np.asarray(differences, float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"compare needs finite differences; got {x}")
    mean = float(x.mean())
    if x.size < 2:
        return Comparison(mean, float("nan"), 1, None)
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    status = True if mean - Z * se > threshold else (False if mean + Z * se < threshold else None)
    return Comparison(mean, se, int(x.size), status)


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_note() -> str:
    """Cores, JAX version and the load average now (other people's jobs share the cores)."""
    from importlib.metadata import version

    return f"{os.cpu_count()} CPU cores, jax {version('jax')}, load average {load_average():.1f}"
