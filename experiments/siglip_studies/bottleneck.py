"""Bottlenecked token embedding: vocab -> K -> width against the full (vocab, width) table, many languages.

The SigLIP paper's multilingual model (mSigLIP, 250k-token vocabulary) factors the text tower's token
embedding through a K = 96 bottleneck at width 768 (vocab -> 96 -> 768) and reports almost no
quality cost for the large saving in parameters. Here the shapes captions are written in English or
in one of L generated languages (word-for-word pseudo-word translations,
``constellations.siglip.data.generated_languages``: a vocabulary (L + 1) times the English one),
and the trainer's text tower (``model.text_bottleneck``) is trained as a SigLiT run (:mod:`.common`:
frozen image tower, sigmoid loss, b0 = -10) with the full table and with K in a range around
width / 8 (the paper's ratio 96/768). The full table and K = width / 8 are trained with several run
seeds, so the cost is judged against the seed noise (:func:`.outcome.compare`); the other K once.
Reported: embedding and text-tower parameters, zero-shot accuracy with English prompts and with
prompts in some generated languages, retrieval R@1 on held-out captions in all languages. One run
with English captions only (vocabulary L + 1 times smaller) shows what the large vocabulary itself
costs. The claim's verdict states its minimal detectable effect (80% power) and the seeds a
departure of ``effect_to_detect`` from the 2% tolerance would need at the observed seed-to-seed sd.

**Scales.** "quick": the test-suite scale. Full (the default): one CPU core, ``lab-s`` text tower
(width 64, K = 8 at the paper's ratio), 8 languages. "large": a ``Ti`` text tower (width 192, K = 24
at the paper's ratio, K up to 96 as in the paper) with 16 languages, B = 4096 and 4 seeds on the
accelerator-scale frozen tower of :mod:`.siglit`; for a GPU, its size an estimate.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from constellations import io
from constellations.siglip.models import decode_variant

from .common import RUNS_CACHE, FrozenSpec, LitSpec, frozen_note, lit_config, save_runs, start_study, train_lit, \
    zero_shot_mean
from experiments.lab import Config, Outcome, fmt, compare, machine_note, verdict
from .siglit import POINTS, _config as siglit_config, scale_name, study_config, learning_rate, seeds_needed

NAME = "bottleneck"
TITLE = "bottlenecked token embedding: vocab -> K -> width vs the full table"
#: "almost no cost": the full table's mean zero-shot minus the bottleneck's is below this.
COST_TOLERANCE = 0.02


def get_config(arg=None) -> Config:
    """The study as data; ``arg`` is "quick" / "large" and/or "seed=N" (lab.parse_options)."""
    return study_config(arg, _config)


def _config(scale, seed: int) -> dict:
    scale = scale_name(scale)
    base = siglit_config(scale, seed)
    common = dict(seed=seed, run_seeds=base["run_seeds"], frozen=base["frozen"], examples_seen=base["examples_seen"],
                  lr0=base["lr0"], lr_reference_batch=base["lr_reference_batch"],
                  effect_to_detect=base["effect_to_detect"])
    if scale == "quick":
        cfg = dict(common, extra_languages=3, text_variant="mu", bottlenecks=[4], batch_size=16,
                   zero_shot_languages=[1, 2], english_baseline=False)
    elif scale == "large":
        cfg = dict(common, extra_languages=15, text_variant="Ti", bottlenecks=[8, 16, 24, 48, 96], batch_size=4096,
                   zero_shot_languages=[1, 2, 3, 4], english_baseline=True)
    else:
        cfg = dict(common, extra_languages=7, text_variant="lab-s", bottlenecks=[4, 8, 16, 32], batch_size=256,
                   zero_shot_languages=[1, 2, 3, 4], english_baseline=True)
    frozen = FrozenSpec(**cfg["frozen"])
    for spec in specs(cfg):
        lit_config(frozen, spec)
    return cfg


def paper_ratio_k(width: int) -> int:
    """K at the paper's ratio 96 / 768 = 1/8 of the width."""
    return max(1, width // 8)


def plan(cfg: dict, width: int) -> list[tuple[int | None, int, int]]:
    """(K or None for the full table, extra languages, run seed) of every run, in order."""
    seeds = cfg["run_seeds"]
    k_paper = paper_ratio_k(width)
    out = []
    for K in [None, *cfg["bottlenecks"]]:
        repeated = K is None or K == k_paper
        out += [(K, cfg["extra_languages"], s) for s in (seeds if repeated else seeds[:1])]
    if cfg["english_baseline"]:
        out.append((None, 0, seeds[0]))
    return out


def specs(cfg: dict) -> list[LitSpec]:
    """The LitSpec of every run of :func:`plan`, in order."""
    width = decode_variant(cfg["text_variant"])["width"]
    B = cfg["batch_size"]
    return [LitSpec(batch_size=B, examples_seen=cfg["examples_seen"], lr=learning_rate(cfg, B),
                    text_variant=cfg["text_variant"], text_bottleneck=K, extra_languages=languages, run_seed=run_seed,
                    label=f"{'full table' if K is None else f'K = {K}'}, {languages + 1} languages, seed {run_seed}")
            for K, languages, run_seed in plan(cfg, width)]


def _multilingual_zero_shot(evaluation: dict, languages) -> float:
    vals = [0.5 * (evaluation[f"zeroshot_language{lang}/shape"] + evaluation[f"zeroshot_language{lang}/colour"])
            for lang in languages]
    return float(np.mean(vals)) if vals else float("nan")


def _figure(rows: list[dict], cfg: dict, width: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    multi = [r for r in rows if r["languages"] > 0]
    Ks = sorted({r["K"] or width for r in multi})

    def by_k(key):
        return [np.array([r[key] for r in multi if (r["K"] or width) == k]) for k in Ks]

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.2))
    for key, style, label in (("zs_english", "o-", "zero-shot, English prompts"),
                              ("zs_languages", "s--", "zero-shot, generated-language prompts"),
                              ("r1", "^:", "R@1 (mean of both directions)")):
        vals = by_k(key)
        ax[0].errorbar(Ks, [v.mean() for v in vals], yerr=[v.std(ddof=1) if len(v) > 1 else 0 for v in vals],
                       fmt=style, capsize=3, label=label)
    for r in rows:
        if r["languages"] == 0:
            ax[0].axhline(r["zs_english"], color="gray", lw=0.8, ls="--", label="English-only captions (full table)")
    ax[0].set(xscale="log", xlabel=f"K (the rightmost point is the full table, width {width})", ylabel="accuracy",
              title=f"accuracy against the bottleneck K ({cfg['extra_languages'] + 1} languages)")
    ax[0].set_xticks(Ks, [str(k) if k != width else f"full ({width})" for k in Ks])
    ax[0].xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax[0].legend(fontsize=7)
    first = {}
    for r in multi:
        first.setdefault(r["K"] or width, r)
    names = [str(k) if k != width else "full" for k in Ks]
    emb = [first[k]["embedding_params"] for k in Ks]
    rest = [first[k]["text_params"] - first[k]["embedding_params"] for k in Ks]
    # A linear axis: stacked bars on a log axis would hide the small embeddings' share.
    ax[1].bar(names, emb, label="token embedding")
    ax[1].bar(names, rest, bottom=emb, label="rest of the text tower")
    for x, (e, r) in enumerate(zip(emb, rest)):
        ax[1].annotate(f"{e:,}\n({e / (e + r):.0%})", (x, e + r), ha="center", va="bottom", fontsize=7)
    ax[1].set(ylabel="parameters", xlabel="K", title="text-tower parameters (above each bar: the token embedding)",
              ylim=(0, 1.2 * max(e + r for e, r in zip(emb, rest))))
    ax[1].legend(fontsize=7)
    fig.suptitle("error bars: seed-to-seed standard deviation (full table and K = width/8)", fontsize=9)
    io.save_figure(fig, out / "bottleneck.png")
    plt.close(fig)


def run(config, out_root, *, progress: bool = True) -> Outcome:
    t0 = time.perf_counter()
    note_before = machine_note()
    cfg = config
    quick = cfg["quick"]
    out, frozen = start_study(out_root, NAME, cfg, progress=progress)
    width = decode_variant(cfg["text_variant"])["width"]
    B = cfg["batch_size"]
    runs, rows = [], []
    for spec in specs(cfg):
        K, languages, run_seed, name = spec.text_bottleneck, spec.extra_languages, spec.run_seed, spec.label
        langs = cfg["zero_shot_languages"] if languages else []
        r = train_lit(frozen, spec, progress=progress, zero_shot_languages=langs,
                      cache_dir=out / RUNS_CACHE)
        runs.append(r)
        rows.append(dict(name=name, K=K, languages=languages, run_seed=run_seed, vocab=r.vocab_size,
                         embedding_params=r.embedding_params, text_params=r.text_params,
                         zs_english=zero_shot_mean(r.evaluation), zs_languages=_multilingual_zero_shot(r.evaluation, langs),
                         r1=0.5 * (r.evaluation["retrieval/img2txt_recall@1"] + r.evaluation["retrieval/txt2img_recall@1"]),
                         shape=r.evaluation["zeroshot/shape"], colour=r.evaluation["zeroshot/colour"],
                         margin=r.evaluation["geometry/margin"], trimmed_margin=r.analysis["trimmed_margin"]))
    save_runs(out, runs)
    io.write_json(out / "summary.json", rows)
    _figure(rows, cfg, width, out)

    checks = {"first logged loss of every run equals the float64 reference loss of its initial towers (rel. 1e-4)": (
        max(r.initial_check["relative_error"] for r in runs) < 1e-4, "consistency")}
    multi = [r for r in rows if r["languages"] == cfg["extra_languages"]]
    full_rest = {r["text_params"] - r["embedding_params"] for r in rows if r["K"] is None}
    counts_ok = len(full_rest) == 1 and all(
        r["embedding_params"] == (r["vocab"] * r["K"] + r["K"] * width if r["K"] else r["vocab"] * width)
        and r["text_params"] - r["embedding_params"] in full_rest for r in rows)
    checks["embedding parameters = V K + K W (bottleneck) or V W (full); the rest of the tower is unchanged"] = (
        counts_ok, "consistency")

    def values(K, key):
        return np.array([r[key] for r in multi if r["K"] == K])

    k_paper = paper_ratio_k(width)
    target = k_paper if k_paper in cfg["bottlenecks"] else min(cfg["bottlenecks"], key=lambda k: abs(k - k_paper))
    # Paired by run seed (same batch order); the claim: cost = full - K is below the tolerance.
    cost = compare(values(None, "zs_english") - values(target, "zs_english"), **POINTS)
    claim = compare(COST_TOLERANCE - (values(None, "zs_english") - values(target, "zs_english")), **POINTS)
    cost_lang = compare(values(None, "zs_languages") - values(target, "zs_languages"), **POINTS)
    cost_r1 = compare(values(None, "r1") - values(target, "r1"), **POINTS)
    checks[f"a K = width/8 = {target} bottleneck costs less than {COST_TOLERANCE:.0%} of zero-shot accuracy"] = (
        claim, "claim")
    io.write_json(out / "claims.json", {c: dict(status=v.status, mean=v.mean, se=v.se, n=v.n, mde=v.mde)
                                        for c, (v, kind) in checks.items() if kind == "claim"})
    effect = cfg["effect_to_detect"]
    full_mean = values(None, "zs_english").mean()
    within = [K for K in cfg["bottlenecks"] if full_mean - values(K, "zs_english").mean() < COST_TOLERANCE]

    table = ["| token embedding | languages | vocabulary | embedding params | text-tower params | runs | 0-shot English "
             "(shape / colour) | 0-shot generated languages | R@1 (mean) | m* / trimmed m |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def cell(vals, digits=3):
        return f"{vals.mean():.{digits}f}" + (f" ± {vals.std(ddof=1):.{digits}f}" if len(vals) > 1 else "")

    groups = {}
    for r in rows:
        groups.setdefault((r["K"], r["languages"]), []).append(r)
    for (K, languages), rs in groups.items():
        def v(key, rs=rs):
            return np.array([r[key] for r in rs])

        table.append(f"| {'full table' if K is None else f'K = {K}'} | {languages + 1} | {rs[0]['vocab']} | "
                     f"{rs[0]['embedding_params']:,} | {rs[0]['text_params']:,} | {len(rs)} | {cell(v('zs_english'))} "
                     f"({fmt(v('shape').mean(), decimals=3)} / {fmt(v('colour').mean(), decimals=3)}) | "
                     + (cell(v("zs_languages")) if languages else "-") + f" | {cell(v('r1'))} | "
                     f"{fmt(v('margin').mean(), decimals=3)} / {fmt(v('trimmed_margin').mean(), decimals=3)} |")
    full_emb = groups[(None, cfg["extra_languages"])][0]
    k_emb = groups[(target, cfg["extra_languages"])][0]
    wall = time.perf_counter() - t0
    md = [
        f"### {TITLE}", "",
        frozen_note(frozen), "",
        f"Captions in English or one of {cfg['extra_languages']} generated languages (uniformly per example), text "
        f"tower `{cfg['text_variant']}` (width {width}) from scratch, sigmoid loss, B = {B}, {cfg['examples_seen']:,} "
        f"examples seen, lr {learning_rate(cfg, B):.2g}. Zero-shot 'generated languages' averages the prompts "
        f"translated into languages {cfg['zero_shot_languages']}. Run seeds {cfg['run_seeds']} for the full table and "
        f"K = {target} (mean ± seed-to-seed standard deviation), the first seed for the other K.", "",
        *table, "",
        f"- Claim (SigLIP, mSigLIP) 'a small bottleneck (K = width/8) costs almost nothing' (here: less than "
        f"{COST_TOLERANCE:.0%} of zero-shot accuracy, judged 2 standard errors clear of it; the margin under the "
        f"tolerance, 2% minus the cost: {claim.text(2)}): **{verdict(claim, quick)}**; seeds a {effect * 100:g}-point "
        f"margin would need at this sd: {seeds_needed(claim, effect)}. K = {target} saves "
        f"{1 - k_emb['embedding_params'] / full_emb['embedding_params']:.0%} of the embedding "
        f"({full_emb['embedding_params']:,} -> {k_emb['embedding_params']:,} parameters; text tower "
        f"{full_emb['text_params']:,} -> {k_emb['text_params']:,}); cost, full minus K = {target}, paired by run seed: "
        f"zero-shot (English prompts) {cost.text(2)}, zero-shot (generated-language prompts) {cost_lang.text(2)}, "
        f"R@1 {cost_r1.text(2)}.",
        f"- Bottlenecks within {COST_TOLERANCE:.0%} of the full table's mean zero-shot (one seed each except "
        f"K = {target}): {', '.join(f'K = {k}' for k in within) if within else 'none in the sweep'}.",
        f"- Where this scale cannot show it: the generated languages are word-for-word codes of about "
        f"{full_emb['vocab'] // (cfg['extra_languages'] + 1)} English words, so the vocabulary carries about that many "
        "meanings, and K must hold them all: the paper's K = 96 is small next to its 250k tokens but not next to "
        "the meanings one token embedding has to separate. The tower is tiny, so the embedding is a larger share of "
        "its parameters than at width 768; real languages share subwords and differ in grammar.", "",
        f"Figure: `{out / 'bottleneck.png'}`. Raw numbers: `{out / 'summary.json'}`, `{out / 'runs.json'}`. Wall time "
        f"{wall:.0f} s ({len(runs)} runs); {machine_note()} (at the start: {note_before}).",
    ]
    outcome = Outcome(NAME, TITLE, "\n".join(md), checks, quick, wall)
    io.write_text(out / "summary.md", outcome.markdown)
    return outcome
