"""A short SigLIP run on procedural shapes: does the trainer learn, and what geometry does it learn?

    python experiments/siglip_shapes_run.py [--out results] [--seed 0] [--steps N] [--quick]

Trains the small CPU config (``experiments/siglip/shapes_tiny.py``: lab-xs towers, standard t, b
parameterization at t = 10, b = -10) from scratch for a few minutes on 2 cores, then reports on 512
held-out shapes: zero-shot shape and colour accuracy (prompt ensembles) against chance (1/6, 1/8),
retrieval recall@1 in both directions against chance (1/512), and the learned embeddings' margin m*,
relative bias b*_rel, modality-gap statistics, and the loss's learned b_rel = -b/t (``constellations.geometry``).
Writes ``OUT/siglip_shapes/``: config.json, metrics.jsonl, checkpoints, summary.json and figures.
Also a section of ``make reproduce`` (``NAME``, ``run``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from constellations import io  # noqa: E402
from constellations.siglip.config import load_config, merge  # noqa: E402
from constellations.siglip.data import ShapesDataset  # noqa: E402
from constellations.siglip.embed import make_embedders  # noqa: E402
from constellations.siglip.train import build, train  # noqa: E402

NAME = "SigLIP trainer: a short run on procedural shapes"
CONFIG = Path(__file__).resolve().parent / "siglip" / "shapes_tiny.py"


def _figures(records, final, sims, out: Path):
    train_recs = [r for r in records if "loss" in r]
    evals = [r for r in records if "retrieval/img2txt_recall@1" in r]
    steps = [r["step"] for r in train_recs]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].plot(steps, [r["loss"] for r in train_recs])
    ax[0].set(xlabel="step", ylabel="loss per example", yscale="log", title="training loss")
    ax[1].plot(steps, [r["t"] for r in train_recs], label="t")
    ax[1].plot(steps, [-r["b"] for r in train_recs], label="-b")
    ax[1].set(xlabel="step", title="inverse temperature and bias")
    ax[1].legend()
    ax[2].plot(steps, [r["pos_mean"] for r in train_recs], label="positive logits (mean)")
    ax[2].plot(steps, [r["neg_mean"] for r in train_recs], label="negative logits (mean)")
    ax[2].plot(steps, [r["neg_max"] for r in train_recs], label="negative logits (max)", alpha=0.6)
    ax[2].axhline(0, color="k", lw=0.5)
    ax[2].set(xlabel="step", title="logits t s + b")
    ax[2].legend()
    io.save_figure(fig, out / "training.png")
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    es = [r["step"] for r in evals]
    for key, label in (("zeroshot/shape", "zero-shot shape"), ("zeroshot/colour", "zero-shot colour"),
                       ("retrieval/img2txt_recall@1", "image->text R@1"), ("retrieval/txt2img_recall@1", "text->image R@1")):
        ax[0].plot(es, [r[key] for r in evals], marker="o", label=label)
    ax[0].axhline(1 / 6, ls="--", color="C0", lw=0.8, label="chance (shape)")
    ax[0].axhline(1 / 8, ls=":", color="C1", lw=0.8, label="chance (colour)")
    ax[0].axhline(final["retrieval/chance@1"], ls="--", color="C2", lw=0.8, label="chance (R@1)")
    ax[0].set(xlabel="step", ylabel="accuracy / recall", ylim=(0, 1), title="held-out evaluation")
    ax[0].legend(fontsize=7)
    pos, neg = sims
    ax[1].hist(neg, bins=80, density=True, alpha=0.6, label="negative pairs s_ij")
    ax[1].hist(pos, bins=40, density=True, alpha=0.6, label="positive pairs s_ii")
    ax[1].axvline(final["geometry/relative_bias"], color="k", ls="--", label="b*_rel (geometry)")
    ax[1].axvline(final["geometry/b_rel"], color="r", ls=":", label="learned b_rel = -b/t")
    ax[1].set(xlabel="cosine similarity", title="held-out similarities after training")
    ax[1].legend(fontsize=7)
    io.save_figure(fig, out / "evaluation.png")
    plt.close(fig)


def run(out_dir, *, quick: bool = False, seed: int = 0, steps: int | None = None):
    """Train from scratch into OUT/siglip_shapes and return (markdown, ok)."""
    out = Path(out_dir) / "siglip_shapes"
    for stale in ("checkpoints", "metrics.jsonl"):
        p = out / stale
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    cfg = load_config(str(CONFIG))
    total = steps or (300 if quick else cfg.total_steps)
    cfg = merge(cfg, dict(seed=seed, total_steps=total, eval=dict(every_steps=max(total // 4, 1)),
                          checkpoint_steps=max(total // 4, 1)))
    result = train(cfg, out)
    final = result.evals[-1]
    # Similarity histogram of the final towers on the same held-out examples the evaluation used.
    setup = build(cfg, out)
    embed_images, embed_texts = make_embedders(setup, result.params, cfg.eval.batch_size)
    ex = ShapesDataset(seed, cfg.data.image_size).eval_examples(cfg.eval.num_examples)
    zi, zt = embed_images(ex["images"]), embed_texts([c[0] for c in ex["captions"]])
    S = zi @ zt.T
    pos, neg = np.diag(S), S[~np.eye(len(S), dtype=bool)]
    _figures(result.metrics, final, (pos, neg), out)
    last = [r for r in result.metrics if "loss" in r][-1]
    summary = {
        "seed": seed, "steps": total, "examples_per_sec": last["examples_per_sec"],
        "final_loss": last["loss"], "t": last["t"], "b": last["b"], "b_rel": last["b_rel"],
        **{k: v for k, v in final.items() if k != "step"},
    }
    io.write_json(out / "summary.json", summary)
    shape, colour = final["zeroshot/shape"], final["zeroshot/colour"]
    r1_i2t, r1_t2i, chance = final["retrieval/img2txt_recall@1"], final["retrieval/txt2img_recall@1"], final["retrieval/chance@1"]
    ok = shape >= 2 * (1 / 6) and min(r1_i2t, r1_t2i) >= 10 * chance
    md = "\n".join([
        f"## {NAME}", "",
        f"Config `experiments/siglip/shapes_tiny.py`, seed {seed}, {total} steps of batch {cfg.batch_size} "
        f"({last['examples_per_sec']:.0f} examples/s at the end); held-out set of {cfg.eval.num_examples} shapes.", "",
        "| metric | value | chance |", "|---|---|---|",
        f"| zero-shot shape accuracy | {shape:.3f} | {1 / 6:.3f} |",
        f"| zero-shot colour accuracy | {colour:.3f} | {1 / 8:.3f} |",
        f"| image->text recall@1 | {r1_i2t:.3f} | {chance:.4f} |",
        f"| text->image recall@1 | {r1_t2i:.3f} | {chance:.4f} |",
        f"| image->text recall@10 | {final['retrieval/img2txt_recall@10']:.3f} | {final['retrieval/chance@10']:.4f} |",
        "", f"Learned t = {last['t']:.2f}, b = {last['b']:.2f} (b_rel = -b/t = {last['b_rel']:.3f}); "
        f"geometry of the held-out pairs: m* = {final['geometry/margin']:.3f}, b*_rel = {final['geometry/relative_bias']:.3f}, "
        f"mean positive {final['geometry/mean_positive']:.3f}, mean negative {final['geometry/mean_negative']:.3f}, "
        f"modality gap {final['geometry/centroid_distance']:.3f}, linearly separable: {final['geometry/linearly_separable']}.",
        "", f"Check (shape accuracy >= 2x chance, R@1 >= 10x chance): {'passed' if ok else 'FAILED'}.",
        f"Figures: `{out / 'training.png'}`, `{out / 'evaluation.png'}`.",
    ])
    return md, ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    md, ok = run(args.out, quick=args.quick, seed=args.seed, steps=args.steps)
    print(md)
    summary = json.loads((args.out / "siglip_shapes" / "summary.json").read_text())
    print(f"\nzero-shot shape accuracy {summary['zeroshot/shape']:.3f} (chance {1 / 6:.3f}); "
          f"recall@1 image->text {summary['retrieval/img2txt_recall@1']:.3f}, text->image "
          f"{summary['retrieval/txt2img_recall@1']:.3f} (chance {summary['retrieval/chance@1']:.4f})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
