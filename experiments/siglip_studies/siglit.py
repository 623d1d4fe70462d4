"""SigLiT batch-size study: sigmoid vs softmax with a frozen image tower, same number of examples seen.

The SigLIP paper's claims (its SigLiT batch-size figure): the sigmoid loss does better than the
softmax loss at small batch sizes, both improve with the batch and then saturate at a moderate
batch. Here a text tower (the trainer's ``mu`` text transformer, from scratch) learns against the
frozen image embeddings of :mod:`.common` with each loss at batch sizes B from 32 to 4096 (full
scale), every run seeing the same number of examples, then is evaluated on held-out shapes:
zero-shot shape and colour (prompt ensembles), retrieval R@1 both ways, the learned t, b, b_rel = -b/t, and
the learned embeddings' geometry (m*, b*_rel of the held-out pairs; the trimmed 5%/95% versions of
``constellations.analysis.analyze_embeddings``; the same for the images against the shape-class
prompt embeddings).

Every (loss, B) point is trained with several run seeds (text-tower init and batch order; the
frozen tower and the data are the same). Sigmoid and softmax runs with the same run seed share the
init and the batches, so their differences are paired; a claim is judged on the mean paired
difference against its standard error (:func:`.outcome.compare`), because one seed's accuracy moves
by several points from seed to seed at this scale.

Same examples seen means fewer steps at larger B. Adam moves each parameter by about lr per step,
so a fixed lr would leave the large-batch runs step-starved; the lr is scaled as
lr(B) = lr0 sqrt(B / B0) (Adam's square-root rule), the same for both losses.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from constellations import io

from .common import FrozenSpec, LitSpec, frozen_note, same_attribute_fraction, save_runs, start_study, \
    train_lit, zero_shot_mean
from experiments.lab import Config, Outcome, fmt, parse_arg, compare, machine_note, verdict

NAME = "siglit"
TITLE = "SigLiT batch size: sigmoid vs softmax with a frozen image tower"
LOSSES = {"sigmoid": "standard", "softmax": "softmax"}
SMALL_BATCH = 256          # "small batch" for the first claim: B <= this
RISE = 0.01                # "accuracy rises with batch": the best batch beats the smallest by more than a point


def get_config(arg=None) -> Config:
    """The study as data; ``arg`` is "quick" (the test-suite scale) and/or "seed=N" (lab.parse_arg)."""
    quick, seed = parse_arg(arg)
    return Config(_config(quick, seed), quick=quick)


def _config(quick: bool, seed: int) -> dict:
    if quick:
        frozen = FrozenSpec(seed=seed, pool_size=1024, eval_size=256, image_variant="mu/8", train_images=512,
                            train_steps=30, train_batch=64)
        return dict(seed=seed, run_seeds=[seed], frozen=dataclasses.asdict(frozen), batch_sizes=[16, 64],
                    examples_seen=2048, lr0=1e-3, lr_reference_batch=128, text_variant="mu")
    return dict(seed=seed, run_seeds=[seed, seed + 1, seed + 2], frozen=dataclasses.asdict(FrozenSpec(seed=seed)),
                batch_sizes=[32, 64, 128, 256, 512, 1024, 2048, 4096], examples_seen=1 << 18,
                lr0=1e-3, lr_reference_batch=128, text_variant="mu")


def learning_rate(cfg: dict, batch_size: int) -> float:
    """lr(B) = lr0 sqrt(B / B0)."""
    return cfg["lr0"] * math.sqrt(batch_size / cfg["lr_reference_batch"])


def metric(summaries: list[dict], key) -> np.ndarray:
    """One value per run (seed) of ``key``: a summary field, or a function of the summary."""
    return np.array([key(s) if callable(key) else s[key] for s in summaries], float)


def retrieval_mean(s: dict) -> float:
    return 0.5 * (s["retrieval/img2txt_recall@1"] + s["retrieval/txt2img_recall@1"])


def _errorbar(ax, Bs, per_batch, key, style, **kw):
    values = [metric(rs, key) for rs in per_batch]
    sd = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values]
    ax.errorbar(Bs, [v.mean() for v in values], yerr=sd, fmt=style, capsize=3, **kw)


def _figures(cfg: dict, results: dict, runs: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Bs = cfg["batch_sizes"]
    n_seeds = len(cfg["run_seeds"])
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.4))
    for loss, style in zip(LOSSES, ("o-", "s--")):
        r = results[loss]
        _errorbar(ax[0], Bs, r, "zeroshot/shape", style, label=f"{loss}: shape")
        _errorbar(ax[0], Bs, r, "zeroshot/colour", style, alpha=0.6, label=f"{loss}: colour")
        _errorbar(ax[1], Bs, r, "retrieval/img2txt_recall@1", style, label=f"{loss}: image->text")
        _errorbar(ax[1], Bs, r, "retrieval/txt2img_recall@1", style, alpha=0.6, label=f"{loss}: text->image")
        _errorbar(ax[2], Bs, r, zero_shot_mean, style, label=loss)
    ax[0].axhline(1 / 6, color="gray", lw=0.8, ls=":", label="chance (shape)")
    ax[0].axhline(1 / 8, color="gray", lw=0.8, ls="--", label="chance (colour)")
    ax[0].set(title="zero-shot accuracy (held-out)", ylabel="accuracy")
    ax[1].set(title="retrieval recall@1 (held-out)", ylabel="recall@1")
    ax[2].set(title="mean zero-shot accuracy (shape, colour)", ylabel="accuracy")
    for a in ax:
        a.set(xscale="log", xlabel="batch size B (same examples seen)")
        a.set_xticks(Bs, [str(b) for b in Bs], fontsize=7)
        a.legend(fontsize=7)
    fig.suptitle(f"SigLiT: mean over {n_seeds} run seed(s), bars = seed-to-seed standard deviation", fontsize=9)
    io.save_figure(fig, out / "accuracy_vs_batch.png")
    plt.close(fig)

    fig, ax = plt.subplots(1, 4, figsize=(20, 4.4))
    for loss, style in zip(LOSSES, ("o-", "s--")):
        _errorbar(ax[0], Bs, results[loss], "t", style, label=f"{loss}: t")
    sig = results["sigmoid"]
    _errorbar(ax[1], Bs, sig, "b", "d-", color="C3", label="sigmoid: learned b")
    ax[1].plot(Bs, [math.log(1 / B) for B in Bs], ":", color="gray", label="log(1/B)")
    ax[1].axhline(-10, color="k", lw=0.6, ls="--", label="b0 = -10")
    _errorbar(ax[2], Bs, sig, "b_rel", "d-", color="C3", label="sigmoid: learned b_rel = -b/t")
    for loss, style in zip(LOSSES, ("o-", "s--")):
        _errorbar(ax[2], Bs, results[loss], "geometry/relative_bias", style, alpha=0.7, label=f"{loss}: b*_rel")
        _errorbar(ax[2], Bs, results[loss], "analysis/trimmed_relative_bias", style, alpha=0.4,
                  label=f"{loss}: trimmed b*_rel")
        _errorbar(ax[3], Bs, results[loss], "geometry/margin", style, label=f"{loss}: m*")
        _errorbar(ax[3], Bs, results[loss], "analysis/trimmed_margin", style, alpha=0.5, label=f"{loss}: trimmed margin")
    ax[0].set(title="learned inverse temperature t", ylabel="t")
    ax[1].set(title="learned bias b (sigmoid)", ylabel="b")
    ax[2].set(title="relative bias: learned b_rel = -b/t vs b*_rel", ylabel="cosine similarity")
    ax[3].axhline(0, color="k", lw=0.5)
    ax[3].set(title="margin (held-out pairs)", ylabel="margin")
    for a in ax:
        a.set(xscale="log", xlabel="batch size B")
        a.set_xticks(Bs, [str(b) for b in Bs], fontsize=7)
        a.legend(fontsize=7)
    io.save_figure(fig, out / "learned_scalars_and_geometry.png")
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(13, 4))
    cmap = plt.get_cmap("viridis")
    for k, loss in enumerate(LOSSES):
        for i, B in enumerate(Bs):
            loss_curve = runs[loss][B][0].history["loss"]          # the first run seed
            seen = (np.arange(len(loss_curve)) + 1) * B
            w = max(1, len(loss_curve) // 100)
            smooth = np.convolve(loss_curve, np.ones(w) / w, mode="valid")
            ax[k].plot(seen[w - 1:], smooth, color=cmap(i / max(len(Bs) - 1, 1)), label=f"B={B}")
        ax[k].set(title=f"{loss} training loss (run seed {cfg['run_seeds'][0]})", xlabel="examples seen",
                  ylabel="loss per example", yscale="log")
        ax[k].legend(fontsize=7)
    io.save_figure(fig, out / "training_curves.png")
    plt.close(fig)


def _mean_sd(values: np.ndarray, digits: int = 3) -> str:
    if len(values) < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def saturation(cfg: dict, per_batch: list[list[dict]]):
    """Does the mean zero-shot accuracy rise with B and peak before the largest batch?

    Returns (status, best B, comparison of the best batch against the smallest, paired by run seed).
    The rise is judged against RISE (one point): False when the smallest batch is the best or the
    rise is significantly below a point; True when it is significantly above a point and the best
    batch is not the largest; else None (within noise, or still rising at the largest batch).
    """
    Bs = cfg["batch_sizes"]
    means = np.array([metric(rs, zero_shot_mean).mean() for rs in per_batch])
    best = int(np.argmax(means))
    rise = compare(metric(per_batch[best], zero_shot_mean) - metric(per_batch[0], zero_shot_mean), threshold=RISE)
    if best == 0 or rise.status is False:
        return False, Bs[best], rise
    if rise.status is True and best < len(Bs) - 1:
        return True, Bs[best], rise
    return None, Bs[best], rise


def run(config, out_root, *, progress: bool = True) -> Outcome:
    t0 = time.perf_counter()
    note_before = machine_note()
    cfg = config
    quick = cfg["quick"]
    out, frozen = start_study(out_root, NAME, cfg, progress=progress)
    Bs = cfg["batch_sizes"]
    runs = {loss: {B: [] for B in Bs} for loss in LOSSES}
    for run_seed in cfg["run_seeds"]:
        for B in Bs:
            for loss, parameterization in LOSSES.items():
                spec = LitSpec(parameterization=parameterization, batch_size=B, examples_seen=cfg["examples_seen"],
                               lr=learning_rate(cfg, B), text_variant=cfg["text_variant"], run_seed=run_seed,
                               label=f"{loss} B={B} seed={run_seed}")
                runs[loss][B].append(train_lit(frozen, spec, progress=progress))
    all_runs = [r for loss in LOSSES for B in Bs for r in runs[loss][B]]
    save_runs(out, all_runs)
    results = {loss: [[r.summary() for r in runs[loss][B]] for B in Bs] for loss in LOSSES}
    _figures(cfg, results, runs, out)

    # Checks.
    checks = {}
    worst = max(r.initial_check["relative_error"] for r in all_runs)
    checks["first logged loss of every run equals the float64 reference loss of its initial towers (rel. 1e-4)"] = (
        worst < 1e-4, "consistency")
    gap = max(abs(s["geometry/margin"] - s["analysis/margin"]) + abs(s["geometry/relative_bias"] - s["analysis/relative_bias"])
              for loss in LOSSES for rs in results[loss] for s in rs)
    checks["m*, b*_rel of geometry and of analyze_embeddings agree (1e-9)"] = (gap < 1e-9, "consistency")
    small = [i for i, B in enumerate(Bs) if B <= SMALL_BATCH]

    def paired(key, indices):
        return np.concatenate([metric(results["sigmoid"][i], key) - metric(results["softmax"][i], key) for i in indices])

    zs_small = compare(paired(zero_shot_mean, small))
    r1_small = compare(paired(retrieval_mean, small))
    claim_small = f"sigmoid beats softmax at small batch (B <= {SMALL_BATCH}, mean zero-shot, paired by run seed)"
    checks[claim_small] = (zs_small.status, "claim")
    sat = {loss: saturation(cfg, results[loss]) for loss in LOSSES}
    for loss in LOSSES:
        checks[f"{loss}: accuracy rises with batch, then saturates before the largest batch"] = (sat[loss][0], "claim")

    # Report.
    p_same = same_attribute_fraction(frozen.pool_labels)
    n_seeds = len(cfg["run_seeds"])
    rows = ["| B | steps | lr | sigmoid 0-shot shape / colour | softmax 0-shot shape / colour | sigmoid R@1 (mean of both) "
            "| softmax R@1 | sigmoid - softmax, mean 0-shot | sigmoid - softmax, R@1 |", "|---|---|---|---|---|---|---|---|---|"]
    for i, B in enumerate(Bs):
        s, f = results["sigmoid"][i], results["softmax"][i]
        rows.append(f"| {B} | {s[0]['steps']} | {s[0]['lr']:.2g} | {_mean_sd(metric(s, 'zeroshot/shape'))} / "
                    f"{_mean_sd(metric(s, 'zeroshot/colour'))} | {_mean_sd(metric(f, 'zeroshot/shape'))} / "
                    f"{_mean_sd(metric(f, 'zeroshot/colour'))} | {_mean_sd(metric(s, retrieval_mean))} | "
                    f"{_mean_sd(metric(f, retrieval_mean))} | {compare(paired(zero_shot_mean, [i])).text()} | "
                    f"{compare(paired(retrieval_mean, [i])).text()} |")
    geo = ["| B | sigmoid t | b | b_rel = -b/t | softmax t | sigmoid m* / b*_rel | trimmed m / b*_rel "
           "| softmax m* / b*_rel | trimmed m / b*_rel | sigmoid shape-class trimmed m / b*_rel |", "|---|---|---|---|---|---|---|---|---|---|"]
    for i, B in enumerate(Bs):
        s, f = results["sigmoid"][i], results["softmax"][i]

        def m(rs, key):
            return float(metric(rs, key).mean())

        geo.append(f"| {B} | {m(s, 't'):.2f} | {m(s, 'b'):.2f} | {m(s, 'b_rel'):.3f} | {m(f, 't'):.2f} | "
                   f"{fmt(m(s, 'geometry/margin'), decimals=3)} / {fmt(m(s, 'geometry/relative_bias'), decimals=3)} | "
                   f"{fmt(m(s, 'analysis/trimmed_margin'), decimals=3)} / {fmt(m(s, 'analysis/trimmed_relative_bias'), decimals=3)} | "
                   f"{fmt(m(f, 'geometry/margin'), decimals=3)} / {fmt(m(f, 'geometry/relative_bias'), decimals=3)} | "
                   f"{fmt(m(f, 'analysis/trimmed_margin'), decimals=3)} / {fmt(m(f, 'analysis/trimmed_relative_bias'), decimals=3)} | "
                   f"{fmt(m(s, 'analysis/shape_classes_trimmed_margin'), decimals=3)} / "
                   f"{fmt(m(s, 'analysis/shape_classes_trimmed_relative_bias'), decimals=3)} |")
    wall = time.perf_counter() - t0
    small_bs = [Bs[i] for i in small]
    md = [
        f"### {TITLE}", "",
        frozen_note(frozen), "",
        f"Text tower `{cfg['text_variant']}` from scratch (captions of at most 15 words, sticky EOS), each run "
        f"{cfg['examples_seen']:,} examples from the pool (so {cfg['examples_seen'] // frozen.spec.pool_size} epochs), "
        f"the trainer's optax chain (Adam b2 = 0.95, 5% warmup, cosine), lr(B) = {cfg['lr0']:g} sqrt(B / "
        f"{cfg['lr_reference_batch']}), t0 = 10 for both losses, b0 = -10 for the sigmoid; run seeds "
        f"{cfg['run_seeds']} at every point (mean ± seed-to-seed standard deviation; differences are paired by run "
        f"seed, with their standard error). Held-out set: {frozen.spec.eval_size} shapes (chance: shape 1/6, colour "
        f"1/8, R@1 1/{frozen.spec.eval_size}).", "",
        *rows, "",
        "Learned scalars and the learned geometry, seed means (held-out pairs; m* = (min positive - max negative)/2, "
        "b*_rel = (min positive + max negative)/2; trimmed: 5th-percentile positive and 95th-percentile negative):", "",
        *geo, "",
        f"- Claim 'sigmoid beats softmax at small batch': **{verdict(zs_small.status, quick)}**: mean zero-shot "
        f"difference sigmoid - softmax over B in {small_bs} and {n_seeds} run seed(s): {zs_small.text()}; "
        f"retrieval R@1: {r1_small.text()}. A claim holds when the mean is more than 2 standard errors above 0, "
        "does not hold when it is more than 2 below, and is not shown otherwise.",
        *[f"- Claim 'accuracy rises with batch, then saturates' ({loss}): **{verdict(sat[loss][0], quick)}**: best "
          f"mean zero-shot {metric(results[loss][Bs.index(sat[loss][1])], zero_shot_mean).mean():.3f} at "
          f"B = {sat[loss][1]}; best minus B = {Bs[0]}: {sat[loss][2].text()} (a rise needs more than {RISE:g}, "
          "2 standard errors clear)."
          for loss in LOSSES],
        f"- Where this scale cannot show it: with the same examples seen, B = {Bs[-1]} gets "
        f"{cfg['examples_seen'] // Bs[-1]} steps against {cfg['examples_seen'] // Bs[0]} at B = {Bs[0]}, so the large "
        f"batches test the step budget as much as the loss (t and b move about lr per Adam step). The pool's "
        f"attribute combinations repeat: two pool examples share all six attributes with probability {p_same:.2e}, so "
        f"at B = {Bs[-1]} each image meets on average {p_same * (Bs[-1] - 1):.2f} same-attribute 'negatives' "
        "(false negatives for both losses), and the shape zero-shot is capped by what the frozen tower encodes "
        f"(its own linear shape head reaches {frozen.head_accuracy['shape']:.2f}). The paper's batches (up to 1M, "
        "saturation near 32k) are 3 orders of magnitude beyond these.", "",
        f"Figures: `{out / 'accuracy_vs_batch.png'}`, `{out / 'learned_scalars_and_geometry.png'}`, "
        f"`{out / 'training_curves.png'}`. Raw numbers: `{out / 'runs.json'}`, `{out / 'runs_history.npz'}`. "
        f"Wall time {wall:.0f} s ({len(all_runs)} runs); {machine_note()} (at the start: {note_before}).",
    ]
    outcome = Outcome(NAME, TITLE, "\n".join(md), checks, quick, wall)
    io.write_text(out / "summary.md", outcome.markdown)
    return outcome
