"""The synthetic experiments E1-E9 of theory.md section 5, one module each.

Each module has ``NAME`` ("e1".."e9"), ``TITLE``, ``config(quick, seed) -> dict`` (the experiment as
data) and ``run(out_root, *, quick, seed, progress) -> Outcome`` (writes ``<out_root>/<NAME>/``:
config.json, raw numbers, figures). Run one with ``python -m constellations.synthetic run e6``.
"""

from __future__ import annotations

import importlib

MODULES = {
    "e1": "e1_basic",
    "e2": "e2_locked_modality",
    "e3": "e3_modalities",
    "e4": "e4_ablation",
    "e5": "e5_bias_drift",
    "e6": "e6_frozen_bias_sweep",
    "e7": "e7_initialization_grid",
    "e8": "e8_xi",
    "e9": "e9_region",
}


def load(name: str):
    """The module of experiment ``name`` ("e6" or "e6_frozen_bias_sweep")."""
    key = name.lower()
    for short, module in MODULES.items():
        if key in (short, module):
            return importlib.import_module(f"{__name__}.{module}")
    raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(MODULES)} (or 'all')")
