"""``python -m experiments.siglip_studies run NAME [--quick] [--seed S] [--out results]``.

NAME is one of siglit, bias_init, bottleneck, memory, or ``all``; ``list`` prints them. Each study
writes ``OUT/<name>/`` (config.json with the seed, raw metrics, figures, summary.md) and prints its
checks; ``all`` also writes the report ``OUT/SIGLIP_STUDIES.md`` (a table of the SigLIP claims and
what became of them, then every study's section); ``make siglip-studies`` runs ``all`` at full scale.
Training runs show tqdm progress bars (``--no-progress`` turns them off). Exit status: 0 when every
consistency check passed, 1 when one failed, 2 for bad arguments. The SigLIP claims are reported as
held, did not hold, or not shown (within seed noise), and do not change the exit status: at lab
scale a claim that does not hold is a finding.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
REPORT = "SIGLIP_STUDIES.md"


def run_studies(names: list[str], out: Path, *, quick: bool, seed: int, progress: bool = True):
    """Run studies by name; returns their outcomes."""
    import jax

    # Geometry and the reference checks are float64; the trainer asks for float32 itself.
    jax.config.update("jax_enable_x64", True)
    from . import load
    from experiments.lab import verdict

    modules = [load(n) for n in names]
    outcomes = []
    for module in modules:
        print(f"[{module.NAME}] {module.TITLE} ({'quick' if quick else 'full'} scale, seed {seed})", flush=True)
        outcome = module.run(out, quick=quick, seed=seed, progress=progress)
        for check, (passed, kind) in outcome.checks.items():
            if kind == "consistency":
                status = "ok" if passed else "FAIL"
            else:
                status = f"claim {verdict(passed, quick)}"
            print(f"  [{status}] {check}")
        print(f"[{module.NAME}] {outcome.wall_time_s:.1f} s -> {Path(out) / module.NAME}", flush=True)
        outcomes.append(outcome)
    return outcomes


def report_markdown(outcomes, *, quick: bool, seed: int, seconds: float, note: str) -> str:
    """The SigLIP studies report: the claims and what became of them, then each study's section."""
    from experiments.lab import verdict

    failed = [f"{o.name}: {c}" for o in outcomes for c in o.failed()]
    parts = [
        "# The SigLIP paper's own studies at lab scale", "",
        f"Scale: {'quick (test-suite sizes: the claims are not judged)' if quick else 'full'}; seed {seed}; {note} at "
        f"the start; total {seconds:.0f} s (" + ", ".join(f"{o.name} {o.wall_time_s:.0f} s" for o in outcomes) + "). "
        "Rerun with `make siglip-studies` (or `python -m experiments.siglip_studies run all`).", "",
        "| study | SigLIP claim | at this scale |", "|---|---|---|",
        *[f"| {o.name} | {c} | {verdict(status, quick)} |" for o in outcomes for c, status in o.claims().items()], "",
    ]
    for o in outcomes:
        parts += [o.markdown, ""]
    if failed:
        parts += ["**Failed consistency checks (bugs):**", "", *[f"- {f}" for f in failed], ""]
    return "\n".join(parts)


def main(argv=None) -> int:
    from constellations import io

    from . import MODULES, load
    from experiments.lab import machine_note

    p = argparse.ArgumentParser(prog="python -m experiments.siglip_studies", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one study, or all")
    r.add_argument("name", help=f"{', '.join(MODULES)}, or all")
    r.add_argument("--quick", action="store_true", help="small sizes (the test-suite scale; claims are not judged)")
    r.add_argument("--seed", type=int, default=0, help="seed of the data, towers and batch order (default 0)")
    r.add_argument("--out", type=Path, default=Path("results"), help="output folder (default results/)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub.add_parser("list", help="list the studies")
    args = p.parse_args(argv)
    try:
        if args.command == "list":
            for name in MODULES:
                print(f"{name}: {load(name).TITLE}")
            return 0
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0; got {args.seed}")
        names = list(MODULES) if args.name.lower() == "all" else [args.name]
        for n in names:
            load(n)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    t0 = time.perf_counter()
    note = machine_note()
    outcomes = run_studies(names, args.out, quick=args.quick, seed=args.seed, progress=not args.no_progress)
    if args.name.lower() == "all":
        report = io.write_text(args.out / REPORT, report_markdown(outcomes, quick=args.quick, seed=args.seed,
                                                                  seconds=time.perf_counter() - t0, note=note))
        print(f"wrote {report}", flush=True)
    failed = [f"{o.name}: {c}" for o in outcomes for c in o.failed()]
    if failed:
        print("consistency checks failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
