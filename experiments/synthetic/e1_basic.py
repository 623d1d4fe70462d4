"""E1, the basic picture: N = 20 pairs in d = 3, b_rel = 0 frozen, t trainable -> a constellation.

Paper (theory.md s.5): loss -> 0, t grows to ~10^3, a (~0.01, 0)-constellation; the figures show the
vectors on the sphere and the histogram of inner products (positives above, negatives below 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from constellations.synthetic import train_grid

from experiments.lab import Config, fmt_range, Outcome, Timer, claim_text, fmt, mean_sd, progress_bar, pyplot, parse_arg, save_config, save_fig, table

from .common import consistency_checks, save_result

NAME = "e1"
TITLE = "E1 basic picture (N = 20, d = 3, b_rel = 0 frozen, t trainable)"
REFERENCE = {"final_loss": 0.0, "t": 1e3, "margin": 0.01, "relative_bias": 0.0}


def get_config(arg=None) -> Config:
    """The experiment as data; ``arg`` is "quick" (the test-suite scale) and/or "seed=N" (lab.parse_arg)."""
    quick, seed = parse_arg(arg)
    return Config({"experiment": NAME, "seed": seed, "quick": quick, "N": 20, "d": 3, "steps": 300 if quick else 10_000,
            "seeds": 2 if quick else 5, "parameterization": "relative_bias", "t0": 10.0, "b_rel0": 0.0,
            "trainable": ["U", "V", "t"], "lr": 1e-2})


def run(config, out_root, *, progress: bool = False) -> Outcome:
    c = config
    quick, seed = c["quick"], c["seed"]
    out = Path(out_root) / NAME
    save_config(out, c)
    with Timer() as timer:
        with progress_bar(c["seeds"] * c["steps"], NAME, progress) as bar:
            r = train_grid(c["N"], c["d"], [{}], seeds=c["seeds"], steps=c["steps"], parameterization=c["parameterization"],
                           t0=c["t0"], b_rel0=c["b_rel0"], trainable=c["trainable"], lr=c["lr"], seed=seed, progress=bar)
        save_result(out, "runs", r)
        figures = _figures(r, out)
    checks = consistency_checks(r, NAME)
    m, loss, t = r.margin[0], r.final_loss[0], r.t[0]
    checks["E1: every seed reaches a constellation (m* > 0)"] = (bool(np.all(m > 0)), "claim")
    checks["E1: loss -> 0 (final mean loss < 1e-3) and t grows (> 100)"] = (bool(np.all(loss < 1e-3) and np.all(t > 100)), "claim")
    held = all(checks[k][0] for k in checks if k.startswith("E1:"))
    rows = [["final loss", mean_sd(loss), "-> 0"], ["t", mean_sd(t), "~10^3"], ["m*", mean_sd(m), "~0.01"],
            ["b*_rel", mean_sd(r.relative_bias[0]), "~0"], ["U->V retrieval", mean_sd(r.history["retrieval"][0, :, -1]), "1"]]
    md = [f"### {TITLE}", "",
          f"{c['seeds']} seeds x {c['steps']} steps; values are mean ± sd over seeds.", "",
          *table(["quantity", "ours", "paper"], rows), "",
          *[f"![{f}]({NAME}/{f})" for f in figures], "",
          claim_text(held, quick, f"Every seed ends as a constellation with m* = {fmt_range(m)} around the frozen "
                        f"threshold 0, the loss goes to {fmt(loss.max())} or below and t grows to {fmt_range(t)}.",
                  "Some seed did not reach a constellation or zero loss in the step budget; see runs.npz."), ""]
    return Outcome(NAME, TITLE, "\n".join(md), checks, quick, timer.elapsed)


def _figures(r, out: Path) -> list[str]:
    plt = pyplot()
    U, V = r.U[0, 0].astype(np.float64), r.V[0, 0].astype(np.float64)
    fig = plt.figure(figsize=(12, 4))
    ax = fig.add_subplot(131, projection="3d")
    u_grid, v_grid = np.mgrid[0:2 * np.pi:30j, 0:np.pi:15j]
    ax.plot_wireframe(np.cos(u_grid) * np.sin(v_grid), np.sin(u_grid) * np.sin(v_grid), np.cos(v_grid), color="0.85", lw=0.4)
    ax.scatter(*U.T, color="tab:blue", label="U", s=18)
    ax.scatter(*V.T, color="tab:red", label="V", s=18, marker="^")
    for u, v in zip(U, V):
        ax.plot(*np.stack([u, v]).T, color="0.4", lw=0.6)
    ax.set_title("final vectors (seed 0)")
    ax.legend(loc="upper left", fontsize=7)
    S = U @ V.T
    ax = fig.add_subplot(132)
    bins = np.linspace(-1, 1, 101)
    ax.hist(S[~np.eye(len(S), dtype=bool)], bins=bins, color="tab:red", alpha=0.7, label="negatives s_ij (i != j)")
    ax.hist(np.diag(S), bins=bins, color="tab:blue", label="positives s_ii", zorder=3)
    ax.axvline(0.0, color="k", lw=0.6, ls=":", label="frozen b_rel = 0")
    ax.set(xlabel="inner product", ylabel="count", title=f"m* = {r.margin[0, 0]:.4f}, b*_rel = {r.relative_bias[0, 0]:.4f}")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(133)
    for s in range(r.loss.shape[1]):
        ax.plot(r.loss[0, s], lw=0.8)
    ax2 = ax.twinx()
    ax2.plot(r.history_steps, r.history["t"][0].T, color="0.5", ls="--", lw=0.8)
    ax.set(yscale="log", xlabel="step", ylabel="loss (mean)", title="loss (solid) and t (dashed)")
    ax2.set(yscale="log", ylabel="t")
    fig.tight_layout()
    return [save_fig(fig, out, "basic_picture.png")]
