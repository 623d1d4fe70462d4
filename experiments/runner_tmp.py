"""Command line: ``python -m constellations.synthetic run NAME [--quick] [--seed S] [--out DIR]``.

(``__main__.py`` calls :func:`main`; the report section of ``make reproduce`` calls
:func:`run_experiments`, so the CLI and the report run the same code.)

NAME is e1..e9 (theory.md section 5) or ``all``; ``list`` prints them. The experiment definitions
live in the repository's ``experiments/synthetic/`` folder, so this needs a checkout with the package
installed editable (``pip install -e .``); anything else ends with one ``error: ...`` line and exit 2.
Each experiment writes ``DIR/<name>/`` (config.json with the seed, raw numbers, figures) and
``DIR/<name>/summary.md`` (the report fragment), and prints its checks. Exit status 1 only when a
consistency check of our code fails; a claim of the paper that does not hold is reported, not an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def repository_root() -> Path:
    """The checkout that holds ``experiments/synthetic/`` next to this package, or ValueError."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "experiments" / "synthetic" / "__init__.py").is_file():
        raise ValueError(
            f"the experiment definitions (experiments/synthetic/) are not next to the installed package "
            f"({Path(__file__).resolve().parents[1]}); run from a checkout of the repository with the package "
            f"installed editable: `pip install -e .` in the checkout")
    return root


def load_registry():
    pass


    import experiments.synthetic as registry

    return registry


def run_experiments(names: list[str], out: Path, *, quick: bool, seed: int, progress: bool = True):
    """Run experiments by name through the same code path as the report; return their outcomes."""
    from constellations import io

    registry = load_registry()
    modules = [registry.load(n) for n in names]
    outcomes = []
    for module in modules:
        print(f"[{module.NAME}] {module.TITLE} ({'quick' if quick else 'full'} scale, seed {seed})", flush=True)
        outcome = module.run(out, quick=quick, seed=seed, progress=progress)
        io.write_text(Path(out) / module.NAME / "summary.md", outcome.markdown)
        for check, (passed, kind) in outcome.checks.items():
            label = "ok" if passed else "FAIL" if kind == "consistency" else "claim not held" + (" (quick scale)" if quick else "")
            print(f"  [{label}] {check}")
        print(f"[{module.NAME}] {outcome.wall_time_s:.1f} s -> {Path(out) / module.NAME}", flush=True)
        outcomes.append(outcome)
    return outcomes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m constellations.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one experiment (e1..e9) or all")
    r.add_argument("name", help="e1..e9, or all")
    r.add_argument("--quick", action="store_true", help="small sizes (the test-suite scale)")
    r.add_argument("--seed", type=int, default=0, help="base seed of the initial vectors (default 0)")
    r.add_argument("--out", type=Path, default=Path("results"), help="output folder (default results/)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    sub.add_parser("list", help="list the experiments")
    args = p.parse_args(argv)
    try:
        registry = load_registry()
        if args.command == "list":
            for short in registry.MODULES:
                print(f"{short}: {registry.load(short).TITLE}")
            return 0
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0; got {args.seed}")
        names = list(registry.MODULES) if args.name.lower() == "all" else [args.name]
        for n in names:
            registry.load(n)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    outcomes = run_experiments(names, args.out, quick=args.quick, seed=args.seed, progress=not args.no_progress)
    # A paper claim that does not hold is a result (reported in summary.md); only our own checks fail the run.
    failed = [f"{o.name}: {c}" for o in outcomes for c in o.failed()]
    if failed:
        print("consistency checks failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0
