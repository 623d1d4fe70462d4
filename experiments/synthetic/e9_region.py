"""E9, the (m, b_rel) plane: impossible region (C7), exponential-size region (C6/C8), modality gap (C9).

Regions (theory.md s.4): C7 rules out m + b_rel > 1 and (3 - 4/N) m > 1 + b_rel; inside, C6 gives
constellations of exponentially many pairs, ln N_max / d >= -(1/2) ln(1 - alpha^2) with
alpha = (1 + b_rel - 3m) / (1 + b_rel + m), and C8 caps the exponent at (1/2) ln((1 + b_rel + m) / (4m));
m > |b_rel| forces a modality gap (C9: s_ii > 0 > s_ij). Both exponents are asymptotic (d -> infinity).
The trained constellations of E6 and E7 (when their results are in the output folder) are drawn on
the plane; every one of them must lie outside C7's impossible region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from constellations.regions import asymptotic_lower_size_exponent, asymptotic_upper_size_exponent, impossible_region

from experiments.lab import Config, Outcome, Timer, claim_text, fmt, pyplot, parse_arg, save_config, save_fig, table

NAME = "e9"
TITLE = "E9 region plot: impossible (C7), exponential-size (C6/C8) and modality-gap (C9) regions"
#: (m, b_rel) points for the size bounds; near E6's best and mid-sweep trained constellations, and two others.
POINTS = {"near E6 best (0.27, 0.70)": (0.27, 0.70), "E6 at b_rel 0.11 (0.17, 0.11)": (0.17, 0.11),
          "(0.1, 0)": (0.1, 0.0), "(0.05, 0.5)": (0.05, 0.5)}


def get_config(arg=None) -> Config:
    """The experiment as data; ``arg`` is "quick" (the test-suite scale) and/or "seed=N" (lab.parse_arg)."""
    quick, seed = parse_arg(arg)
    return Config({"experiment": NAME, "seed": seed, "quick": quick, "grid": 60 if quick else 241, "N": 100,
            "d_range": [2, 200], "points": POINTS, "trained_sources": ["e6/sweep.npz", "e7/grid.npz"]})


def _exponent(f, m, b):
    try:
        return f(m, b)
    except ValueError:
        return np.nan


def run(config, out_root, *, progress: bool = False) -> Outcome:
    c = config
    quick = c["quick"]
    out = Path(out_root) / NAME
    save_config(out, c)
    with Timer() as timer:
        b_grid = np.linspace(-1, 1, c["grid"])
        m_grid = np.linspace(0, 1, c["grid"] // 2 + 1)[1:]
        feasible_N = np.array([[impossible_region(m, b, c["N"]).feasible for b in b_grid] for m in m_grid])
        feasible_inf = np.array([[impossible_region(m, b).feasible for b in b_grid] for m in m_grid])
        lower = np.array([[_exponent(asymptotic_lower_size_exponent, m, b) for b in b_grid] for m in m_grid])
        upper = np.array([[_exponent(asymptotic_upper_size_exponent, m, b) for b in b_grid] for m in m_grid])
        trained = _trained_points(Path(out_root))
        figures = _figures(c, b_grid, m_grid, feasible_N, lower, upper, trained, out)
    both = np.isfinite(lower) & np.isfinite(upper)
    ordered = bool(np.all(lower[both] <= upper[both] + 1e-12))
    checks = {"e9: C6 lower exponent <= C8 upper exponent wherever both are defined": (ordered, "consistency"),
              "e9: C6's region lies inside C7's feasible region": (bool(np.all(feasible_inf[np.isfinite(lower)])), "consistency")}
    lines = []
    for name, (m, b) in trained.items():
        pos = m > 0
        inside = [impossible_region(float(mi), float(bi), c["N"]).feasible for mi, bi in zip(m[pos], b[pos])]
        checks[f"e9: every trained constellation of {name} lies outside the impossible region"] = (bool(all(inside)), "consistency")
        lines.append(f"{name}: {int(pos.sum())} trained constellations, all outside C7's impossible region: {all(inside)}; "
                     f"largest m* = {fmt(m.max())} (C7 allows at most {fmt(1 / (2 - 2 / c['N']))} for N = {c['N']}).")
    rows = [[name, fmt(m), fmt(b), fmt(_exponent(asymptotic_lower_size_exponent, m, b)), fmt(_exponent(asymptotic_upper_size_exponent, m, b)),
             "yes" if m > abs(b) else "no"] for name, (m, b) in POINTS.items()]
    md = [f"### {TITLE}", "",
          "Exponents are ln N_max / d in nats per dimension, asymptotic in d (C6: achievable, C8: upper bound).", "",
          *table(["point", "m", "b_rel", "C6 exponent (lower)", "C8 exponent (upper)", "provable modality gap (m > abs(b_rel))"], rows),
          "", *(lines or ["No E6/E7 results in this output folder: trained points not drawn (run e6 and e7 first)."]), "",
          *[f"![{f}]({NAME}/{f})" for f in figures], "",
          claim_text(all(ok for ok, _ in checks.values()), quick,
                  "The C6 exponent never exceeds the C8 one, C6's region lies inside C7's feasible region, and every "
                  "trained constellation sits in the feasible part of the plane.",
                  "A region check failed: see the checks."), ""]
    return Outcome(NAME, TITLE, "\n".join(md), checks, quick, timer.elapsed)


def _trained_points(root: Path) -> dict:
    points = {}
    for name, rel in (("E6", "e6/sweep.npz"), ("E7", "e7/grid.npz")):
        p = root / rel
        if p.is_file():
            with np.load(p) as z:
                points[name] = (z["margin"].ravel(), z["relative_bias"].ravel())
    return points


def _figures(c, b_grid, m_grid, feasible, lower, upper, trained, out: Path) -> list[str]:
    plt = pyplot()
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    ax = axes[0]
    ext = [b_grid[0], b_grid[-1], m_grid[0], m_grid[-1]]
    ax.imshow(np.where(feasible, np.nan, 1.0), origin="lower", extent=ext, aspect="auto", cmap="Greys", vmin=0, vmax=1.6,
              alpha=0.6)
    norm = LogNorm(vmin=1e-3, vmax=np.nanmax(lower))
    im = ax.imshow(lower, origin="lower", extent=ext, aspect="auto", cmap="viridis", norm=norm)
    fig.colorbar(im, ax=ax, label="C6 exponent ln N / d (asymptotic, log scale)")
    bb = np.linspace(-1, 1, 201)
    ax.fill_between(bb, np.abs(bb), 1, color="tab:red", alpha=0.15, lw=0, label="m > |b_rel|: modality gap (C9)")
    ax.plot(bb, np.abs(bb), color="tab:red", lw=0.8)
    ax.plot(bb, 1 - bb, "k-", lw=1, label="m + b_rel = 1 (codes)")
    ax.plot(bb, (1 + bb) / (3 - 4 / c["N"]), "k--", lw=1, label=f"(3 - 4/N) m = 1 + b_rel, N = {c['N']}")
    for i, (name, (m, b)) in enumerate(trained.items()):
        pos = m > 0
        ax.scatter(b[pos], m[pos], s=6, color=f"C{i + 1}", label=f"trained {name} (m* > 0)", zorder=3)
    ax.set(xlim=(-1, 1), ylim=(0, 1), xlabel="b_rel", ylabel="m", title="grey: impossible (C7)")
    ax.legend(fontsize=6, loc="upper left")
    ax = axes[1]
    im = ax.imshow(upper, origin="lower", extent=ext, aspect="auto", cmap="magma",
                   norm=LogNorm(vmin=1e-3, vmax=np.nanmax(upper)))
    fig.colorbar(im, ax=ax, label="C8 exponent ln N / d (asymptotic, log scale)")
    ax.set(xlabel="b_rel", ylabel="m", title="C8 upper exponent")
    ax = axes[2]
    d = np.arange(c["d_range"][0], c["d_range"][1] + 1)
    for i, (name, (m, b)) in enumerate(POINTS.items()):
        lo, hi = _exponent(asymptotic_lower_size_exponent, m, b), _exponent(asymptotic_upper_size_exponent, m, b)
        ax.fill_between(d, d * lo / np.log(10), d * hi / np.log(10), color=f"C{i}", alpha=0.25)
        ax.plot(d, d * lo / np.log(10), color=f"C{i}", lw=1, label=f"{name}: C6 (lower)")
        ax.plot(d, d * hi / np.log(10), color=f"C{i}", lw=1, ls="--")
    ax.set(xlabel="d", ylabel="log10 N_max (asymptotic)", title="C6 (solid) and C8 (dashed) against d", yscale="log")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return [save_fig(fig, out, "region.png")]
