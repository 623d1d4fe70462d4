"""Report section for ``make reproduce``: the synthetic experiments E1-E9 (theory.md section 5).

Runs every experiment of ``experiments/synthetic/`` through the same code as
``python -m constellations.synthetic run all`` and returns their markdown, each with our numbers
next to the paper's and a verdict on the paper's qualitative claim. ``ok`` is False when a
consistency check (of our code) fails; a claim of the paper that does not hold at full scale is a
result, listed in the report with the reason, and does not fail ``make reproduce``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import jax

from experiments.runner_tmp import run_experiments

NAME = "synthetic experiments E1-E9"


def run(out_dir, *, quick: bool = False, seed: int = 0):
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    outcomes = run_experiments(["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"], Path(out_dir), quick=quick,
                               seed=seed, progress=sys.stderr.isatty())
    total = time.perf_counter() - t0
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    ok = all(o.ok for o in outcomes)
    failed = [f"{o.name}: {c}" for o in outcomes for c in o.failed()]
    claims = [f"{o.name}: {c}" for o in outcomes if not o.quick for c, held in o.claims().items() if not held]
    timing = " | ".join(f"{o.name} {o.wall_time_s:.0f} s" for o in outcomes)
    parts = [
        "## Synthetic experiments E1-E9: bias parameterizations at the paper's scale",
        "",
        "Free unit vectors trained by full-batch Adam (lr 1e-2) with the loss's own row normalization and "
        "re-projection after every step, reduction 'mean', float32 as the paper's code (final m*, b*_rel recomputed "
        "in float64 by constellations.geometry). Every sweep is one compiled JAX function (vmap over runs, "
        "lax.scan over steps). The loss is the exact, stable sigmoid loss unless a table says 'eps' (the authors' "
        "float32 form -log(sigmoid(x) + 1e-8), run only to compare with the paper's numbers).",
        "",
        f"Scale: {'quick (CI sizes: claims are not judged)' if quick else 'full (the paper sizes, seeds and steps)'}; "
        f"seed {seed}; {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), jax {jax.__version__}, "
        f"load average {load_before:.1f} before / {load_after:.1f} after (other jobs share the cores). "
        f"Total {total:.0f} s: {timing}.",
        "",
    ]
    for o in outcomes:
        parts += [o.markdown, f"_({o.name}: {o.wall_time_s:.1f} s)_", ""]
    if failed:
        parts += ["**Failed consistency checks:**", "", *[f"- {f}" for f in failed], ""]
    if claims:
        parts += ["**Paper claims that did not hold here** (see each experiment's section for why):", "",
                  *[f"- {c}" for c in claims], ""]
    return "\n".join(parts), ok
