"""The lab's shared vocabulary: the record every experiment, report section and study returns, how a
claim is judged and worded, one number formatter, one progress bar, figures and configs on disk.

Every runnable entry of the lab (E1-E9 in ``experiments/synthetic/``, the report sections, the SigLIP
studies in ``experiments/siglip_studies/``) is a module with::

    NAME = "e6"; TITLE = "E6 frozen b_rel sweep"
    def get_config(arg=None) -> Config        # the experiment as data; arg "quick,seed=3" (see parse_arg)
    def run(config, out_root, *, progress=False) -> Outcome

(big_vision's configs-as-data: the argument switches the scale and sets the seed). The one
command line over all of them is :mod:`experiments.runner` (``python -m experiments``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from constellations import io
from constellations.siglip.config import Config

__all__ = ["POWER", "Comparison", "Config", "Outcome", "Timer", "Z", "claim_text", "compare", "fmt", "fmt_range", "load_average",
           "machine_note", "mean_sd", "progress_bar", "parse_arg", "pyplot", "run_section", "save_config", "save_fig", "status_of",
           "table", "verdict"]

#: A claim holds when the mean paired difference is beyond this many standard errors of its threshold.
Z = 2.0


SCALES = ("quick", "full", "large")


def parse_options(arg) -> tuple[str, int]:
    """The argument of every ``get_config(arg)``, big_vision style: comma-separated options, a scale
    ("quick": the test-suite scale; absent: "full", the lab scale of ``make reproduce``; "large": the
    SigLIP studies' accelerator scale, wider towers and larger batches) and "seed=N" (default 0).
    Returns (scale, seed).

    >>> parse_options("large,seed=3")
    ('large', 3)
    """
    scale, seed = "full", 0
    for part in filter(None, (p.strip() for p in str(arg or "").split(","))):
        key, eq, value = part.partition("=")
        if part in ("quick", "large") and not eq and scale == "full":
            scale = part
        elif key == "seed" and eq and value.isdigit():
            seed = int(value)
        else:
            raise ValueError("config argument: expected at most one of 'quick' / 'large' and 'seed=N' (N >= 0), "
                             f"comma-separated; got {arg!r}")
    return scale, seed


def parse_arg(arg) -> tuple[bool, int]:
    """(quick, seed) of a ``get_config`` argument (:func:`parse_options`), for configs with no "large" scale.

    >>> parse_arg("quick,seed=3")
    (True, 3)
    """
    scale, seed = parse_options(arg)
    if scale == "large":
        raise ValueError(f"config argument: this entry has no 'large' scale (only the SigLIP studies do); got {arg!r}")
    return scale == "quick", seed


@dataclass
class Outcome:
    """What an experiment, report section or study hands back to the runner and the report.

    Attributes:
      name, title: "e6", "E6 frozen b_rel sweep".
      markdown: the report fragment (our numbers next to the paper's, figures, verdict).
      checks: check name -> (status, kind). kind "consistency" must hold at every scale (status True
        or False; a False is a bug in our code). kind "claim" is a claim of a paper, judged at full
        scale only: True (held), False (did not hold), or None (not shown: within seed noise), or the
        :class:`Comparison` that judged it (its status, with what the study could detect, which
        :func:`verdict` prints beside it); a claim that does not hold is a finding, not a failure.
      quick: run at the test-suite scale (claims not judged).
      wall_time_s: time of the whole run.
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
        """Claim name -> status (True, False or None) or its Comparison, as the check holds it (:func:`verdict`
        reads both; :func:`status_of` gives the status)."""
        return {n: passed for n, (passed, kind) in self.checks.items() if kind == "claim"}


def run_section(name: str, title: str, config, out_root, body) -> Outcome:
    """A report section's ``run``: ``body(config, out_dir) -> (markdown, checks)`` timed and wrapped in an Outcome."""
    t0 = time.perf_counter()
    markdown, checks = body(config, Path(out_root) / name)
    return Outcome(name, title, markdown, checks, bool(config["quick"]), time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------
# Judging a claim and saying so.


def status_of(claim) -> bool | None:
    """The status (True, False or None) of a claim given as a status or as a :class:`Comparison`."""
    return claim.status if isinstance(claim, Comparison) else claim


def verdict(status, quick: bool) -> str:
    """How a claim's status reads: one rule for the CLI, the tables and the sentences.

    ``status`` is True, False or None, or the :class:`Comparison` that judged the claim; a Comparison's
    verdict also says what the study could detect (:meth:`Comparison.power_text`), so a "not shown"
    carries its minimal detectable effect wherever it is printed.
    """
    if quick:
        return "not judged (quick scale)"
    if isinstance(status, Comparison):
        return status.verdict()
    if status is None:
        return "not shown (within seed noise)"
    return "held" if status else "did not hold"


def claim_text(status, quick: bool, held: str, not_held: str, not_shown: str = "") -> str:
    """The verdict sentence of a report section: the label of :func:`verdict` and the text for what happened.

    ``held`` / ``not_held`` / ``not_shown`` are generated from the numbers; at quick scale the
    section says what the numbers show without judging the claim. ``status`` may be a
    :class:`Comparison`, whose power statement then follows the label.
    """
    plain = status_of(status)
    text = held if plain else (not_shown if plain is None and not_shown else not_held)
    if quick:
        return f"**Claim not judged at quick scale.** {text}"
    label = {True: "Claim held.", False: "Claim did not hold.", None: "Claim not shown (within seed noise)."}[plain]
    if isinstance(status, Comparison):
        label = f"{label[:-1]}; {status.power_text()}."
    return f"**{label}** {text}"


#: Power at which the minimal detectable effect is stated: a true difference of that size (from the threshold) is
#: judged beyond the threshold with this probability.
POWER = 0.8


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


@dataclass(frozen=True)
class Comparison:
    """Paired differences x_k (one per seed, or per seed and batch) judged against a threshold, with its power.

    ``unit`` and ``unit_scale`` only change how numbers print (0.017 with scale 100 and unit " points"
    prints "1.7 points"); every field is in the units of the differences.
    """

    mean: float
    se: float               # standard error of the mean (nan with one difference)
    n: int
    status: bool | None     # True: mean - Z se > threshold; False: mean + Z se < threshold; None: neither
    threshold: float = 0.0
    unit: str = ""
    unit_scale: float = 1.0

    @property
    def sd(self) -> float:
        """Standard deviation of one difference (nan with one difference)."""
        return self.se * math.sqrt(self.n)

    @property
    def mde(self) -> float:
        """Minimal detectable effect at this n: (Z + z_POWER) se.

        A true mean difference this far above the threshold is judged "held" with probability POWER
        (normal approximation, one side of the same two-sided Z = 2 test the status uses: alpha = 4.6%,
        z_0.8 = 0.84, so 2.84 standard errors). nan with one difference.
        """
        return (Z + _normal_quantile(POWER)) * self.se

    def n_needed(self, effect: float) -> int:
        """Differences needed to detect ``effect`` (distance from the threshold) with power POWER, from the observed sd:
        ceil(((Z + z_POWER) sd / effect)^2), at least 2. Raises ValueError for effect <= 0 or a single difference."""
        if not (isinstance(effect, (int, float)) and effect > 0 and math.isfinite(effect)):
            raise ValueError(f"n_needed: effect must be a positive number; got {effect!r}")
        if self.n < 2:
            raise ValueError("n_needed: a single difference has no noise estimate")
        return max(2, math.ceil(((Z + _normal_quantile(POWER)) * self.sd / effect) ** 2))

    def value(self, x: float, digits: int = 3, sign: bool = False) -> str:
        """``x`` in the comparison's unit."""
        return f"{x * self.unit_scale:{'+' if sign else ''}.{digits}f}{self.unit}"

    def text(self, digits: int = 3) -> str:
        se = "n/a" if math.isnan(self.se) else self.value(self.se, digits)
        return f"{self.value(self.mean, digits, sign=True)} (standard error {se}, n = {self.n})"

    def power_text(self, digits: int = 3) -> str:
        """What the study could detect: the MDE at this n, or that one difference cannot say."""
        if self.n < 2:
            return "one difference: no noise estimate, so no detectable effect"
        above = "" if self.threshold == 0 else f" from its threshold {self.value(self.threshold, digits, sign=True)}"
        return (f"the study could detect a difference of >= {self.value(self.mde, digits)}{above} "
                f"({POWER:.0%} power, n = {self.n})")

    def verdict(self) -> str:
        """The full-scale verdict with its numbers: mean ± Z se, and the MDE beside it."""
        if self.status is None:
            return f"not shown: {self.power_text()}; observed {self.value(self.mean, sign=True)}"
        ci = "" if math.isnan(self.se) else f" ± {self.value(Z * self.se)}"
        label = "held" if self.status else "did not hold"
        return f"{label}: {self.value(self.mean, sign=True)}{ci} ({Z:g} SE); MDE {self.value(self.mde)}"


def compare(differences, threshold: float = 0.0, *, unit: str = "", unit_scale: float = 1.0) -> Comparison:
    """Is the mean of ``differences`` above ``threshold`` by more than Z standard errors (or below by as much)?

    With fewer than two differences there is no noise estimate and the status is None. The result
    carries its power (:attr:`Comparison.mde`, :meth:`Comparison.n_needed`); ``unit`` / ``unit_scale``
    say how its numbers print.
    """
    x = np.asarray(differences, float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"compare needs finite differences; got {x}")
    mean = float(x.mean())
    if x.size < 2:
        return Comparison(mean, float("nan"), 1, None, threshold, unit, unit_scale)
    se = float(x.std(ddof=1) / math.sqrt(x.size))
    status = True if mean - Z * se > threshold else (False if mean + Z * se < threshold else None)
    return Comparison(mean, se, int(x.size), status, threshold, unit, unit_scale)


# ----------------------------------------------------------------------------------------------
# Numbers and tables.


def fmt(x, digits: int = 3, *, decimals: int | None = None) -> str:
    """One number for a report: ``digits`` significant digits (scientific below 1e-3 and from 1e5; 0 stays
    0), or a fixed number of ``decimals`` (accuracies, costs)."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    if decimals is not None:
        return f"{x:.{decimals}f}"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{max(digits - 1, 0)}e}"
    return f"{x:.{digits}g}" if abs(x) >= 1 else f"{x:.{digits}f}"


def fmt_range(values) -> str:
    """The range of ``values`` as "lo to hi" (a hyphen would read as a minus sign: "-0.912 to 0.580")."""
    v = np.asarray(values, np.float64)
    return f"{fmt(v.min())} to {fmt(v.max())}"


def mean_sd(x) -> str:
    x = np.asarray(x, np.float64)
    return fmt(x.mean()) if x.size == 1 else f"{fmt(x.mean())} ± {fmt(x.std(ddof=1))}"


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


# ----------------------------------------------------------------------------------------------
# Progress, time, the machine.


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "step"):
    """A tqdm bar (a null context yielding None when disabled)."""
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, leave=False, dynamic_ncols=True)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.t0


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_note() -> str:
    """Cores, JAX version and the load average now (other people's jobs share the cores)."""
    from importlib.metadata import version

    return f"{os.cpu_count()} CPU cores, jax {version('jax')}, load average {load_average():.1f}"


# ----------------------------------------------------------------------------------------------
# Files.


def save_config(out: Path, config) -> Path:
    """``<out>/config.json``: the run's config (with its seed) next to its results."""
    return io.write_json(Path(out) / "config.json", config.to_dict() if isinstance(config, Config) else config)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_fig(fig, out: Path, name: str) -> str:
    io.save_figure(fig, Path(out) / name)
    pyplot().close(fig)
    return name
