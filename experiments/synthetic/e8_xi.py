"""E8, the xi statistic during training (claim C13): xi -> 0, N = 100, d in {10, 100}.

xi = (1/N) sum_i |x_i|^2 - |mean x|^2 with x_i = U_i - V_i, the variance of the differences; xi = 0
iff U_i - V_i is the same vector for every i (a pure shift between the modalities). The paper
observes xi -> 0 in synthetic training, which is what the double-constant family of C14 looks like.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from constellations import xi_statistic
from constellations.synthetic import train_grid

from experiments.lab import Config, Outcome, Timer, claim_text, mean_sd, progress_bar, pyplot, parse_arg, save_config, save_fig, table

from .common import consistency_checks, save_result

NAME = "e8"
TITLE = "E8 xi statistic during training (C13)"
REFERENCE = {"xi": "-> 0 during synthetic training"}


def get_config(arg=None) -> Config:
    """The experiment as data; ``arg`` is "quick" (the test-suite scale) and/or "seed=N" (lab.parse_arg)."""
    quick, seed = parse_arg(arg)
    return Config({"experiment": NAME, "seed": seed, "quick": quick, "N": 30 if quick else 100,
            "d": [6, 20] if quick else [10, 100], "steps": 300 if quick else 10_000, "seeds": 1 if quick else 3,
            "lr": 1e-2, "t0": 10.0, "b_rel0": 0.0, "parameterization": "relative_bias", "trainable": ["U", "V", "t", "bias"]})


def run(config, out_root, *, progress: bool = False) -> Outcome:
    c = config
    quick, seed = c["quick"], c["seed"]
    out = Path(out_root) / NAME
    save_config(out, c)
    results = {}
    with Timer() as timer:
        with progress_bar(len(c["d"]) * c["seeds"] * c["steps"], NAME, progress) as bar:
            for d in c["d"]:
                results[d] = train_grid(c["N"], d, [{}], seeds=c["seeds"], steps=c["steps"], t0=c["t0"],
                                        b_rel0=c["b_rel0"], lr=c["lr"], seed=seed, progress=bar)
        xi_final = {}
        for d, r in results.items():
            xi_final[d] = np.array([xi_statistic(r.U[0, s].astype(np.float64), r.V[0, s].astype(np.float64), normalize=True)
                                    for s in range(c["seeds"])])
            save_result(out, f"d{d}", r, keep_loss_every=10, extra={"xi_final_geometry": xi_final[d]})
        figures = _figures(results, out)
    checks = {}
    for d, r in results.items():
        checks.update(consistency_checks(r, f"e8 d={d}"))
        logged = r.history["xi"][0, :, -1].astype(np.float64)
        checks[f"e8 d={d}: logged xi matches geometry.xi_statistic within 1e-5"] = (
            bool(np.max(np.abs(logged - xi_final[d])) < 1e-5), "consistency")
    shrinks = all(np.all(xi_final[d] < 0.05 * results[d].history["xi"][0, :, 0]) for d in results)
    checks["E8: xi falls below 5% of its initial value for every d and seed"] = (bool(shrinks), "claim")
    rows = [[d, mean_sd(r.history["xi"][0, :, 0]), mean_sd(xi_final[d]), mean_sd(r.final_loss[0]), mean_sd(r.margin[0])]
            for d, r in results.items()]
    md = [f"### {TITLE}", "",
          f"N = {c['N']}, {c['seeds']} seeds x {c['steps']} steps, relative-bias form, everything trainable from t = "
          f"{c['t0']:g}, b_rel = {c['b_rel0']:g}; final xi from geometry.xi_statistic (float64).", "",
          *table(["d", "initial xi", "final xi", "final loss", "m*"], rows), "",
          *[f"![{f}]({NAME}/{f})" for f in figures], "",
          claim_text(shrinks, quick, "xi goes to ~0 during training in both dimensions: the trained modalities differ by an "
                           "almost constant shift U_i - V_i, as the paper observes.",
                  "xi did not fall below 5% of its initial value in some run; see the table."), ""]
    return Outcome(NAME, TITLE, "\n".join(md), checks, quick, timer.elapsed)


def _figures(results, out: Path) -> list[str]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (d, r) in enumerate(results.items()):
        for s, xi in enumerate(r.history["xi"][0]):
            ax.plot(r.history_steps, xi, color=f"C{i}", lw=0.8, label=f"d = {d}" if s == 0 else None)
    ax.set(yscale="log", xlabel="step", ylabel="xi", title="xi = variance of U_i - V_i during training")
    ax.legend()
    fig.tight_layout()
    return [save_fig(fig, out, "xi.png")]
