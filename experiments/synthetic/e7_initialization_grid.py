"""E7, initialization grid: t0 in {1, 3, 10, 30, 100} x b_rel0 in {-1, -0.8, ..., 1}, both trainable.

Paper (theory.md s.5, values are 2 m*): small t0 (<= 3) gives 2 m* ~0.55-0.57; t0 = 10 needs
b_rel0 >= ~0.4; t0 >= 30 mostly fails (negative margin). We run the grid with the exact loss and with the authors'
float32 form: the failures at large t0 are float32 saturation of that form (see the report text).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from constellations.synthetic import train_grid

from experiments.lab import Config, fmt_range, Outcome, Timer, claim_text, fmt, progress_bar, pyplot, parse_arg, save_config, save_fig, table

from .common import consistency_checks, save_result

NAME = "e7"
TITLE = "E7 initialization grid (t0 x b_rel0, t and b_rel trainable)"
T0 = [1.0, 3.0, 10.0, 30.0, 100.0]
REFERENCE = {"small_t0_full_gap": [0.55, 0.57], "t0_10_needs_b_rel0_at_least": 0.4, "t0_at_least_30": "mostly fails"}


def get_config(arg=None) -> Config:
    """The experiment as data; ``arg`` is "quick" (the test-suite scale) and/or "seed=N" (lab.parse_arg)."""
    quick, seed = parse_arg(arg)
    return Config({"experiment": NAME, "seed": seed, "quick": quick, "N": 30 if quick else 100, "d": 6 if quick else 10,
            "steps": 300 if quick else 10_000, "loss_every": 1 if quick else 10, "seeds": 1, "lr": 1e-2, "t0": T0,
            "b_rel0": np.round(np.linspace(-1, 1, 6 if quick else 11), 10).tolist(), "parameterization": "relative_bias",
            "trainable": ["U", "V", "t", "bias"]})


def run(config, out_root, *, progress: bool = False) -> Outcome:
    c = config
    quick, seed = c["quick"], c["seed"]
    out = Path(out_root) / NAME
    save_config(out, c)
    b0 = np.array(c["b_rel0"])
    variants = [dict(t0=t, b_rel0=float(b)) for t in T0 for b in b0]
    with Timer() as timer:
        with progress_bar(2 * len(variants) * c["seeds"] * c["steps"], NAME, progress) as bar:
            common = dict(seeds=c["seeds"], steps=c["steps"], lr=c["lr"], seed=seed, loss_every=c["loss_every"])
            r = train_grid(c["N"], c["d"], variants, progress=bar, **common)
            r_eps = train_grid(c["N"], c["d"], variants, loss="epsilon", progress=bar, **common)
        save_result(out, "grid", r, keep_loss_every=10)
        save_result(out, "grid_epsilon", r_eps, keep_loss_every=10)
        gap = 2 * r.margin.mean(axis=1).reshape(len(T0), len(b0))
        gap_eps = 2 * r_eps.margin.mean(axis=1).reshape(len(T0), len(b0))
        figures = _figures(gap, gap_eps, b0, out)
    checks = {**consistency_checks(r, NAME), **consistency_checks(r_eps, f"{NAME} epsilon", tol=1e-4)}
    low = b0 <= 0
    small_ok = bool(np.all(gap[:2] > 0) and np.all(gap_eps[:2] > 0))
    eps_large_fail = bool(np.mean(gap_eps[3:] < 0) >= 0.5 and np.mean(gap_eps[3:, low] < 0) >= 0.5)
    exact_large_worse = bool(np.all(gap[4, low] < gap[0, low] - 0.1))
    checks["E7: t0 <= 3 succeeds (m* > 0) for every b_rel0 (both loss forms)"] = (small_ok, "claim")
    checks["E7 (authors' eps form): t0 >= 30 mostly fails, also at b_rel0 <= 0 (m* < 0 in >= half the cells)"] = (
        eps_large_fail, "claim")
    checks["E7 (exact loss): t0 = 100 with b_rel0 <= 0 ends with a margin smaller by > 0.1 (2 m*) than t0 = 1"] = (
        exact_large_worse, "claim")
    header = ["t0 \\ b_rel0"] + [fmt(b, 2) for b in b0]
    md = [f"### {TITLE}", "",
          f"N = {c['N']}, d = {c['d']}, {c['seeds']} seed x {c['steps']} steps per cell, relative-bias form; the tables give "
          "the final full gap 2 m* (negative: not a constellation), with the exact loss and with the authors' float32 form "
          "-log(sigmoid(x) + 1e-8) ('eps').", "", "Exact loss:", "",
          *table(header, [[fmt(t)] + [fmt(g, 2) for g in gap[i]] for i, t in enumerate(T0)]), "",
          "Authors' eps form:", "",
          *table(header, [[fmt(t)] + [fmt(g, 2) for g in gap_eps[i]] for i, t in enumerate(T0)]), "",
          f"Paper: 2 m* ~0.55-0.57 for t0 <= 3 (ours: {fmt_range(gap[:2])}); t0 = 10 needs "
          "b_rel0 >= ~0.4; t0 >= 30 mostly fails.", "",
          *[f"![{f}]({NAME}/{f})" for f in figures], "",
          claim_text(small_ok and eps_large_fail and exact_large_worse, quick,
                  "Small t0 always ends as a constellation; large t0 fails with the authors' loss form "
                  f"({100 * np.mean(gap_eps[3:] < 0):.0f}% of the t0 >= 30 cells, "
                  f"{100 * np.mean(gap_eps[3:, low] < 0):.0f}% of those with b_rel0 <= 0), and with the exact loss a "
                  f"large t0 with a low b_rel0 costs most of the margin (2 m* {fmt_range(gap[4, low])} "
                  f"at t0 = 100 against {fmt_range(gap[0, low])} at t0 = 1).",
                  "See the tables and the failed checks."), "",
          "**Differences from the paper, and why.** " + _differences(gap, gap_eps, b0), ""]
    return Outcome(NAME, TITLE, "\n".join(md), checks, quick, timer.elapsed)


def _t10_claim(g, b0) -> bool:
    """The paper's 't0 = 10 needs b_rel0 >= ~0.4': success at b_rel0 >= 0.4, failure below (most cells)."""
    return bool(np.all(g[2, b0 >= 0.4] > 0) and np.mean(g[2, b0 < 0.4] < 0) >= 0.5)


def _differences(gap, gap_eps, b0) -> str:
    exact_fail, eps_fail, n = int(np.sum(gap[3:] < 0)), int(np.sum(gap_eps[3:] < 0)), gap[3:].size
    parts = [f"Cells with t0 >= 30 that end with m* < 0: {exact_fail} of {n} with the exact loss, {eps_fail} of {n} with "
             "the authors' eps form."]
    if eps_fail > exact_fail:
        parts.append("The difference is float32 saturation in the authors' loss: at large t0 many pairs start with "
                     "|logit| > 16.6, where sigmoid rounds to 0 or 1, so they cost a constant (18.42) and get no gradient; "
                     "they never move and the run ends with m* < 0. With the exact loss their gradient is small but not "
                     "zero, and training still separates them, at the cost of a smaller margin.")
    held = {"exact": _t10_claim(gap, b0), "eps": _t10_claim(gap_eps, b0)}
    parts.append("The paper's 't0 = 10 needs b_rel0 >= ~0.4' " + (
        "reproduces with both forms." if all(held.values()) else
        f"reproduces with {' and '.join(k for k, v in held.items() if v)} only." if any(held.values()) else
        f"does not reproduce with either form (t0 = 10 cells with m* < 0: exact {int(np.sum(gap[2] < 0))}, "
        f"eps {int(np.sum(gap_eps[2] < 0))} of {gap.shape[1]}).") + " One seed per cell, as the paper.")
    return " ".join(parts)


def _figures(gap, gap_eps, b0, out: Path) -> list[str]:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(16, 3.8))
    lim = max(np.abs(gap).max(), np.abs(gap_eps).max())
    for ax, g, name in ((axes[0], gap, "exact loss"), (axes[1], gap_eps, "authors' eps form")):
        im = ax.imshow(g, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(b0)), [f"{b:.1f}" for b in b0])
        ax.set_yticks(range(len(T0)), [f"{t:g}" for t in T0])
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                ax.text(j, i, f"{g[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set(xlabel="initial b_rel0", ylabel="initial t0", title=f"final 2 m* ({name}; blue: constellation)")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return [save_fig(fig, out, "initialization_grid.png")]
