"""E4, ablation: b_rel frozen at -1, -0.5, 0, 0.5, 1 with t fixed at 100 or trainable (from 10).

Paper (theory.md s.5): fixed t = 100 ends at loss 18.2, 0.17, 0.16, 0.12, 0.18; trainable t at
0.693, 0, 0, 0, 0.007. The two ends are forced by the geometry whatever the training: at b_rel = -1
every negative pair has s_ij >= -1 = b_rel, so each of the N^2 - N negatives costs >= log 2 once t -> 0
(mean loss -> (1 - 1/N) log 2 = 0.686); at b_rel = 1 every positive has s_ii <= 1, so the mean loss is
>= log 2 / N = 0.0069. Everything is run with the exact loss and with the authors' float32 epsilon form: the fixed-t stall
of the paper is a saturation effect of that form (see the report text).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from constellations.synthetic import train_grid

from experiments.lab import Config, Outcome, Timer, claim_text, fmt, mean_sd, progress_bar, pyplot, parse_arg, save_config, save_fig, table

from .common import consistency_checks, save_result

NAME = "e4"
TITLE = "E4 ablation: frozen b_rel, fixed vs trainable t"
B_REL = [-1.0, -0.5, 0.0, 0.5, 1.0]
REFERENCE = {"fixed_t100": [18.2, 0.17, 0.16, 0.12, 0.18], "trainable_t": [0.693, 0.0, 0.0, 0.0, 0.007]}


def get_config(arg=None) -> Config:
    """The experiment as data; ``arg`` is "quick" (the test-suite scale) and/or "seed=N" (lab.parse_arg)."""
    quick, seed = parse_arg(arg)
    return Config({"experiment": NAME, "seed": seed, "quick": quick, "N": 30 if quick else 100, "d": 6 if quick else 10,
            "steps": 300 if quick else 10_000, "loss_every": 1 if quick else 10, "seeds": 1 if quick else 3, "lr": 1e-2, "t0": 100.0, "t0_trainable": 10.0, "b_rel": B_REL,
            "parameterization": "relative_bias",
            "assumption": "trainable t starts from t0 = 10 (the paper's default start; from t0 = 100 the authors' "
                          "eps form stalls for b_rel = 0, 0.5, unlike the paper's trainable-t row)"})


def run(config, out_root, *, progress: bool = False) -> Outcome:
    c = config
    quick, seed = c["quick"], c["seed"]
    out = Path(out_root) / NAME
    save_config(out, c)
    fixed = [dict(b_rel0=b, trainable=("U", "V")) for b in B_REL]
    free_t = [dict(b_rel0=b, trainable=("U", "V", "t"), t0=c["t0_trainable"]) for b in B_REL]
    common = dict(seeds=c["seeds"], steps=c["steps"], t0=c["t0"], lr=c["lr"], seed=seed, loss_every=c["loss_every"])
    with Timer() as timer:
        with progress_bar(4 * len(B_REL) * c["seeds"] * c["steps"], NAME, progress) as bar:
            exact = train_grid(c["N"], c["d"], fixed + free_t, progress=bar, **common)
            eps = train_grid(c["N"], c["d"], fixed + free_t, loss="epsilon", progress=bar, **common)
        save_result(out, "exact", exact, keep_loss_every=10)
        save_result(out, "epsilon", eps, keep_loss_every=10)
        figures = _figures(exact, eps, out)
    n = len(B_REL)
    inner = slice(1, n - 1)
    checks = {**consistency_checks(exact, "e4 exact"), **consistency_checks(eps, "e4 epsilon", tol=1e-4)}
    N = c["N"]
    floor_lo, floor_hi = (1 - 1 / N) * np.log(2), np.log(2) / N
    ends = bool(np.all(exact.final_loss[n] >= floor_lo - 1e-4) and np.all(exact.final_loss[2 * n - 1] >= floor_hi - 1e-6))
    free_zero = bool(np.all(exact.final_loss[n:][inner] < 1e-3) and np.all(eps.final_loss[n:][inner] < 1e-3))
    eps_fixed_stalls = bool(np.all(eps.final_loss[:n][inner] > 0.05))
    exact_fixed_zero = bool(np.all(exact.final_loss[:n][inner] < 1e-3))
    checks["E4: trainable t reaches ~0 for b_rel in (-1, 1) (both loss forms) and the forced floors at +-1"] = (
        ends and free_zero, "claim")
    checks["E4 (authors' eps form): fixed t = 100 stalls (> 0.05) for b_rel in (-1, 1)"] = (eps_fixed_stalls, "claim")
    rows = [[fmt(b), mean_sd(exact.final_loss[i]), mean_sd(eps.final_loss[i]), fmt(REFERENCE["fixed_t100"][i]),
             mean_sd(exact.final_loss[n + i]), mean_sd(eps.final_loss[n + i]), fmt(REFERENCE["trainable_t"][i]),
             mean_sd(exact.t[n + i]), mean_sd(exact.margin[n + i])] for i, b in enumerate(B_REL)]
    md = [f"### {TITLE}", "",
          f"N = {c['N']}, d = {c['d']}, {c['seeds']} seeds x {c['steps']} steps; fixed t = {c['t0']:g}; trainable t from "
          f"t0 = {c['t0_trainable']:g} (our assumption: the paper does not give the start; from t0 = 100 the authors' "
          "form also stalls at b_rel = 0 and 0.5 (0.12, 0.06), unlike its trainable-t row); relative-bias form with b_rel frozen; mean ± sd over seeds. "
          "'eps' = the authors' float32 form -log(sigmoid(x) + 1e-8).", "",
          *table(["frozen b_rel", "fixed t=100: loss", "fixed t=100: loss (eps)", "paper", "trainable t: loss",
                  "trainable t: loss (eps)", "paper", "trainable t: final t", "trainable t: m*"], rows), "",
          *[f"![{f}]({NAME}/{f})" for f in figures], "",
          claim_text(ends and free_zero and eps_fixed_stalls, quick,
                  "With t trainable the loss goes to ~0 for every interior b_rel and to the floors the geometry forces at "
                  f"b_rel = -1 ((1 - 1/N) log 2 = {fmt(floor_lo)}, t -> 0 or a collapse to s_ij = -1) and b_rel = 1 "
                  f"(log 2 / N = {fmt(floor_hi)}); with t fixed at 100 the authors' loss form stalls at the paper's values.",
                  "See the table and the failed checks."), "",
          "**Difference from the paper, and why.** The fixed-t failure is a property of the authors' float32 loss, "
          "not of the sigmoid loss: with the exact loss, t fixed at 100 also reaches ~0 for every interior b_rel "
          f"({'yes' if exact_fixed_zero else 'no'}: {', '.join(mean_sd(x) for x in exact.final_loss[:n][inner])}), "
          f"while with the eps form it stalls at {', '.join(mean_sd(x) for x in eps.final_loss[:n][inner])} (paper 0.17, "
          "0.16, 0.12). At t = 100 a pair whose logit passes ~16.6 is saturated in float32 (constant 18.42 on a "
          "negative, or a positive below -18.4, with zero gradient), so the pairs that start badly placed never move. "
          "At b_rel = -1 the paper's 18.2 is exactly that saturation (ours with eps: "
          f"{mean_sd(eps.final_loss[0])}); the exact loss there ends at {mean_sd(exact.final_loss[0])} = log 2, all "
          "vectors collapsing so that every logit is 0.", ""]
    return Outcome(NAME, TITLE, "\n".join(md), checks, quick, timer.elapsed)


def _figures(exact, eps, out: Path) -> list[str]:
    plt = pyplot()
    n = len(B_REL)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    x = exact.loss_steps
    for i, b in enumerate(B_REL):
        axes[0].plot(x, exact.loss[i].mean(axis=0), color=f"C{i}", label=f"b_rel = {b:g}")
        axes[0].plot(x, eps.loss[i].mean(axis=0), color=f"C{i}", ls=":", lw=0.8)
        axes[1].plot(x, exact.loss[n + i].mean(axis=0), color=f"C{i}", label=f"b_rel = {b:g}")
        axes[1].plot(x, eps.loss[n + i].mean(axis=0), color=f"C{i}", ls=":", lw=0.8)
    axes[0].set(yscale="log", xlabel="step", ylabel="loss (mean)", title="t fixed at 100 (dotted: authors' eps form)")
    axes[1].set(yscale="log", xlabel="step", ylabel="loss (mean)", title="t trainable from 10 (dotted: eps form)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return [save_fig(fig, out, "ablation.png")]
