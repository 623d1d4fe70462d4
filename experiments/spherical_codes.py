"""Report section: bounds on spherical codes A(n, s) against the literature, and how they scale with n.

Writes ``<out>/spherical_codes/``: config.json, kissing_table.csv / .json (n = 3..24: Levenshtein,
certified LP, raw grid LP, best known lower and upper bounds) and bounds_vs_n.png (log2 of the bounds
vs n for a few s, with the non-constructive CSW lower bound, the package's constructions and seeded
greedy codes; and (1/n) log2 against the asymptotic KL and CSW rates). Returns an Outcome whose
consistency checks are the section's checks. Seconds at full scale (< 60 s), less in quick.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from constellations import bounds, codes, io
from experiments.lab import Config, Outcome, parse_arg, run_section, save_config

NAME = "spherical_codes"
TITLE = "Spherical codes: certified bounds on A(n, s) against the literature"

# shared/docs/spherical_codes.md: s.3.4 (Levenshtein, exact), s.4.4 (LP, D = 40, M = 8000),
# s.10.1 (best known kissing bounds, Vallentin 2025 table).
LEVENSHTEIN = {3: 93 / 7, 4: 26, 5: 48, 6: 84, 7: 1848 / 13, 8: 240, 9: 28050 / 73, 10: 605, 11: 21736 / 23,
               12: 5915 / 4, 13: 25610 / 11, 14: 10640 / 3, 15: 70992 / 13, 16: 8364, 17: 160854 / 13,
               18: 127395 / 7, 19: 26771, 20: 39655, 21: 1014783 / 17, 22: 707135 / 8, 23: 104141700 / 799,
               24: 196560}
LP_CERTIFIED = {3: 13.1582, 4: 25.5584, 5: 46.3376, 6: 82.6312, 7: 140.1625, 8: 240.0, 9: 380.0991, 10: 595.8291,
                11: 915.39, 12: 1416.0905, 13: 2233.6339, 14: 3492.2163, 15: 5431.0286, 16: 8313.7889,
                17: 12218.71, 18: 17877.072, 19: 25900.795, 20: 37974.044, 21: 56851.984, 22: 86537.613,
                23: 128096.05, 24: 196560.85}
KNOWN_LOWER = dict(zip(range(3, 25), [12, 24, 40, 72, 126, 240, 306, 510, 593, 840, 1154, 1932, 2564, 4320, 5730,
                                       7654, 11692, 19448, 29768, 49896, 93150, 196560]))
KNOWN_UPPER = dict(zip(range(3, 25), [12, 24, 44, 77, 134, 240, 363, 553, 868, 1355, 2064, 3174, 4853, 7320, 10978,
                                       16406, 24417, 36195, 53524, 80810, 122351, 196560]))


def kissing_table(grid_size: int) -> tuple[list[dict], list[str]]:
    rows, failures = [], []
    for n in range(3, 25):
        lev = bounds.levenshtein(n, 0.5)
        lp = bounds.delsarte_lp_bound(n, 0.5, grid_size=grid_size)
        rows.append({"n": n, "levenshtein": lev.value, "levenshtein_degree": lev.m, "lp_certified": lp.value,
                     "lp_raw": lp.raw, "lp_source": lp.source, "lp_excursion": lp.excursion,
                     "best_known_lower": KNOWN_LOWER[n], "best_known_upper": KNOWN_UPPER[n],
                     "notes_levenshtein": LEVENSHTEIN[n], "notes_lp_certified": LP_CERTIFIED[n]})
        checks = {
            "Levenshtein = notes (1e-11)": abs(lev.value / LEVENSHTEIN[n] - 1) < 1e-11,
            "certified LP within 1e-3 of the notes": abs(lp.value / LP_CERTIFIED[n] - 1) < 1e-3,
            "certified LP >= best known lower bound": lp.value >= KNOWN_LOWER[n],
            "certified LP >= best known upper bound (LP is weaker than SDP)": lp.value >= KNOWN_UPPER[n] - 1e-9,
            "certified LP <= Levenshtein (1 + 1e-9)": lp.value <= lev.value * (1 + 1e-9),
        }
        failures += [f"n = {n}: {name}" for name, passed in checks.items() if not passed]
    return rows, failures


def constructions_check() -> list[str]:
    failures = []
    for label, C, size, s in [("E8", codes.e8(), 240, 0.5), ("E7", codes.e7(), 126, 0.5), ("E6", codes.e6(), 72, 0.5),
                              ("D4", codes.d_n_roots(4), 24, 0.5), ("Golay", codes.golay(), 4096, 1 / 3),
                              ("Nordstrom-Robinson", codes.nordstrom_robinson(), 256, 0.25),
                              ("600-cell", codes.six_hundred_cell(), 120, (1 + math.sqrt(5)) / 4)]:
        if len(C) != size or abs(codes.max_inner_product(C) - s) > 1e-14:
            failures.append(f"{label}: expected {size} points at {s}")
    return failures


def curves(n_values, s_values, lp_n, seed, greedy_max_n):
    """log2 of the bounds and constructions against n for each s."""
    out = {}
    for s in s_values:
        entry = {"n": list(n_values), "levenshtein": [], "rankin": [], "volume": [], "best_cheap": [], "csw": [],
                 "construction": [], "lp_n": [], "lp": [], "greedy_n": [], "greedy": []}
        for n in n_values:
            entry["levenshtein"].append(bounds.levenshtein(n, s).log_value / math.log(2))
            entry["rankin"].append(bounds.rankin_cap_bound(n, s).log_value / math.log(2))
            entry["volume"].append(bounds.volume_bound(n, s).log_value / math.log(2))
            entry["best_cheap"].append(bounds.best_upper_bound(n, s, use_lp=False).log_value / math.log(2))
            entry["csw"].append(bounds.csw_lower_bound(n, s).log_value / math.log(2))
            sizes = [c.size for d in range(1, n + 1) for c in codes.constructions_in_dimension(d)
                     if c.max_inner_product <= s]
            entry["construction"].append(math.log2(max(sizes)) if sizes else math.nan)
            if n in lp_n and bounds.levenshtein(n, s).value <= bounds.LP_MAX_VALUE:
                entry["lp_n"].append(n)
                entry["lp"].append(math.log2(bounds.delsarte_lp_bound(n, s, grid_size=400).value))
            if n <= greedy_max_n:
                C = codes.random_greedy_code(n, s, seed=seed + n, max_points=5000, max_failures=1000)
                entry["greedy_n"].append(n)
                entry["greedy"].append(math.log2(len(C)))
        out[s] = entry
    return out


def rate_curves(n_values):
    """(1/n) log2 of the finite-n bounds at s = 1/2, for n far beyond the table (log forms, no overflow)."""
    n_values = list(n_values)
    per_n = lambda f: [f(n).log_value / math.log(2) / n for n in n_values]  # noqa: E731
    return {"n": n_values, "levenshtein": per_n(lambda n: bounds.levenshtein(n, 0.5)),
            "rankin": per_n(lambda n: bounds.rankin_cap_bound(n, 0.5)),
            "csw": per_n(lambda n: bounds.csw_lower_bound(n, 0.5))}


def plot(data, rates, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    ax = axes[0]
    colors = dict(zip(data, ["tab:blue", "tab:orange", "tab:green", "tab:red"]))
    for s, e in data.items():
        c = colors[s]
        ax.plot(e["n"], e["best_cheap"], color=c, lw=2)
        ax.plot(e["n"], e["volume"], color=c, lw=0.8, ls=":")
        ax.plot(e["lp_n"], e["lp"], "D", color=c, ms=4)
        ax.plot(e["n"], e["csw"], color=c, ls="--")
        ax.plot(e["n"], e["construction"], "s", color=c, ms=3, mfc="none")
        ax.plot(e["greedy_n"], e["greedy"], "x", color=c, ms=4)
    handles = [Line2D([], [], color=colors[s], lw=2, label=f"s = {s}") for s in data] + [
        Line2D([], [], color="gray", lw=2, label="best upper bound (exact / Levenshtein / Rankin / volume)"),
        Line2D([], [], color="gray", marker="D", ls="", label="certified Delsarte LP"),
        Line2D([], [], color="gray", lw=0.8, ls=":", label="volume (cap packing) bound"),
        Line2D([], [], color="gray", ls="--", label="Chabauty-Shannon-Wyner lower bound (non-constructive)"),
        Line2D([], [], color="gray", marker="s", mfc="none", ls="", label="best construction in constellations.codes"),
        Line2D([], [], color="gray", marker="x", ls="", label="greedy random code (seeded)")]
    ax.legend(handles=handles, fontsize=7, loc="upper left")
    ax.set(xlabel="dimension n", ylabel="log2 of the bound on A(n, s)", title="Bounds on A(n, s) and codes")
    ax = axes[1]
    ax.plot(rates["n"], rates["levenshtein"], label="Levenshtein (finite n)")
    ax.plot(rates["n"], rates["rankin"], label="Rankin cap bound (finite n)")
    ax.plot(rates["n"], rates["csw"], ls="--", label="CSW lower bound (finite n)")
    for rate, name, ls in [(bounds.kl_rate(math.pi / 3), "KL rate (asymptotic)", ":"),
                           (bounds.kl_rate_refined(math.pi / 3), "refined KL rate (asymptotic)", "-."),
                           (bounds.csw_rate(math.pi / 3), "CSW rate (asymptotic)", ":")]:
        ax.axhline(rate, color="k", ls=ls, lw=0.8, label=f"{name} = {rate:.5f}")
    ax.set(xscale="log", xlabel="dimension n", ylabel="(1/n) log2 bound", ylim=(0, 1.6),
           title="Kissing (s = 1/2): finite-n bounds against the asymptotic rates")
    ax.legend(fontsize=7)
    io.save_figure(fig, path)
    plt.close(fig)


def get_config(arg=None) -> Config:
    """The section as data; ``arg`` is "quick" (the test-suite scale) and/or "seed=N" (lab.parse_arg)."""
    quick, seed = parse_arg(arg)
    return Config({"seed": seed, "quick": quick, "table": {"n": [3, 24], "s": 0.5, "lp_grid_size": 400 if quick else 1000},
                   "figure": {"s": [0.25, 0.5, 0.75], "n_max": 32 if quick else 96,
                              "lp_n": [4, 8, 16, 24] if quick else [4, 8, 12, 16, 24, 32, 48, 64],
                              "greedy_max_n": 8 if quick else 14, "rate_n_max": 500 if quick else 5000}})


def run(config, out_root, *, progress: bool = False) -> Outcome:
    return run_section(NAME, TITLE, config, out_root, _run)


def _run(config, out: Path):
    seed = config.seed
    save_config(out, config)

    rows, table_failures = kissing_table(config["table"]["lp_grid_size"])
    construction_failures = constructions_check()
    io.write_json(out / "kissing_table.json", rows)
    header = list(rows[0])
    io.write_text(out / "kissing_table.csv", "\n".join([",".join(header)] + [",".join(str(r[k]) for k in header)
                                                                               for r in rows]) + "\n")
    fig = config["figure"]
    data = curves(range(2, fig["n_max"] + 1), fig["s"], set(fig["lp_n"]), seed, fig["greedy_max_n"])
    rates = rate_curves(np.unique(np.geomspace(2, fig["rate_n_max"], 40).astype(int)).tolist())
    io.write_json(out / "curves.json", {"bounds_vs_n": {str(s): e for s, e in data.items()}, "rates_s_half": rates})
    plot(data, rates, out / "bounds_vs_n.png")
    failures = []
    for i, n in enumerate(rates["n"]):
        if not rates["csw"][i] <= min(rates["levenshtein"][i], rates["rankin"][i]):
            failures.append(f"s = 1/2, n = {n}: CSW exceeds an upper bound")
    for s, e in data.items():  # CSW (a lower bound) below every upper bound, constructions too
        for i, n in enumerate(e["n"]):
            if e["csw"][i] > e["best_cheap"][i] + 1e-9 or e["construction"][i] > e["best_cheap"][i] + 1e-9:
                failures.append(f"s = {s}, n = {n}: a lower bound exceeds an upper bound")
    checks = {
        "spherical codes: Levenshtein and certified LP agree with the notes and the best known bounds":
            (not table_failures, "consistency"),
        "spherical codes: E8, E7, E6, D4, Golay, Nordstrom-Robinson, 600-cell have their sizes and inner products":
            (not construction_failures, "consistency"),
        "spherical codes: CSW and the constructions stay below every upper bound": (not failures, "consistency"),
    }
    failures = table_failures + construction_failures + failures
    ok = not failures

    table = ["| n | Levenshtein | certified LP | raw grid LP | LP source | best known lower | best known upper |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {r['n']} | {r['levenshtein']:.4f} | {r['lp_certified']:.4f} | {r['lp_raw']:.4f} | {r['lp_source']} | "
              f"{r['best_known_lower']} | {r['best_known_upper']} |" for r in rows]
    markdown = "\n".join([
        "## Spherical codes: certified bounds on A(n, s) against the literature",
        "",
        "Kissing numbers tau_n = A(n, 1/2). Levenshtein is the closed form; the certified LP is Delsarte's "
        "bound with the polynomial's excursion on [-1, s] proven by an exact rational Sturm count and "
        "subtracted, so it is a true upper bound; the raw grid LP is the uncertified relaxation (it can "
        "lie below the truth: see n = 24). Best known bounds: Vallentin's 2025 table "
        "(shared/docs/spherical_codes.md s.10.1); the gap between LP and best known upper bounds is "
        "what SDP methods add.",
        "",
        *table,
        "",
        f"![bounds vs n]({NAME}/bounds_vs_n.png)",
        "",
        "Left: log2 of the upper bounds, the non-constructive Chabauty-Shannon-Wyner lower bound, the best "
        "construction of `constellations.codes` and seeded greedy codes. Right: (1/n) log2 of the finite-n "
        f"bounds at s = 1/2 up to n = {fig['rate_n_max']}, approaching the asymptotic Kabatiansky-Levenshtein "
        "and CSW rates (asymptotic "
        "statements, plotted as horizontal lines only).",
        "",
        "Checks: Levenshtein = the notes' exact values; certified LP within 1e-3 of the notes' LP table, "
        ">= best known lower and upper bounds, <= Levenshtein; E8, E7, E6, D4, Golay, Nordstrom-Robinson "
        "and the 600-cell have their sizes and maximal inner products; CSW and constructions stay below "
        "the upper bounds. " + ("All passed." if ok else "**Failed:** " + "; ".join(failures)),
        "",
    ])
    return markdown, checks

