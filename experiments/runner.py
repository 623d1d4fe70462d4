"""``python -m experiments``: the one command line of the lab. It lists and runs every experiment,
report section and study, and writes the reports.

    python -m experiments list
    python -m experiments run e6 [--quick] [--seed 0] [--out results]     # one entry (or several)
    python -m experiments run report [--quick]    # make reproduce: foundation ... E1-E9 -> OUT/REPORT.md
    python -m experiments run studies [--quick]   # make siglip-studies: the SigLIP studies -> OUT/SIGLIP_STUDIES.md
    python -m experiments run synthetic           # E1-E9 only (no report file)
    python -m experiments report studies          # the report again from the entries' saved results

Each entry writes ``OUT/<name>/`` (config.json with the seed, raw numbers, figures) and
``OUT/<name>/summary.md`` (its report fragment) and prints its checks. Exit status: 0 when every
consistency check passed, 1 when one failed (a bug in our code), 2 for bad arguments. A claim of a
paper that does not hold is a reported result, not an error; at --quick scale no claim is judged.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class Group:
    """Entries run together; a group with a ``report`` writes one markdown file from their outcomes."""

    names: tuple
    report: str | None
    title: str
    command: str


#: Every runnable entry: name -> module (each has NAME, TITLE, get_config(arg), run(config, out_root, *, progress));
#: the runner calls get_config("quick,seed=N") or get_config("seed=N").
ENTRIES = {
    "foundation": "experiments.foundation",
    "spherical_codes": "experiments.spherical_codes",
    "theory": "experiments.theory",
    **{f"e{i}": f"experiments.synthetic.{m}" for i, m in enumerate(
        ["e1_basic", "e2_locked_modality", "e3_modalities", "e4_ablation", "e5_bias_drift", "e6_frozen_bias_sweep",
         "e7_initialization_grid", "e8_xi", "e9_region"], start=1)},
    "siglit": "experiments.siglip_studies.siglit",
    "bias_init": "experiments.siglip_studies.bias_init",
    "bottleneck": "experiments.siglip_studies.bottleneck",
    "memory": "experiments.siglip_studies.memory",
    "hard_negatives": "experiments.siglip_studies.hard_negatives",
}

SYNTHETIC = tuple(f"e{i}" for i in range(1, 10))
GROUPS = {
    "report": Group(("foundation", "spherical_codes", "theory", *SYNTHETIC), "REPORT.md",
                    "constellations: reproduction report", "make reproduce"),
    "synthetic": Group(SYNTHETIC, None, "synthetic experiments E1-E9", "python -m experiments run synthetic"),
    "studies": Group(("siglit", "bias_init", "bottleneck", "memory", "hard_negatives"), "SIGLIP_STUDIES.md",
                     "The SigLIP paper's own studies at lab scale", "make siglip-studies"),
}


def load(name: str):
    """The module of entry ``name`` (case and '-' / '_' ignored), or ValueError listing the choices."""
    key = name.lower().replace("-", "_")
    if key not in ENTRIES:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(ENTRIES)} "
                         f"or a group: {', '.join(GROUPS)}")
    return importlib.import_module(ENTRIES[key])


def resolve(names) -> list[str]:
    """Entry names from names and groups, in order, without repeats."""
    out = []
    for n in names:
        key = n.lower().replace("-", "_")
        for e in (GROUPS[key].names if key in GROUPS else (key,)):
            load(e)
            if e not in out:
                out.append(e)
    return out


def check_label(passed, kind: str, quick: bool) -> str:
    from experiments.lab import verdict

    if kind == "consistency":
        return "ok" if passed else "FAIL"
    return f"claim {verdict(passed, quick)}"


#: Entries that read another entry's results from OUT (run after it when entries run in parallel).
AFTER = {"e9": ("e6", "e7")}
#: Rough seconds of each full-scale entry on one core (measured; only orders the parallel queue, longest first).
COST = {"e6": 150, "e3": 70, "e7": 45, "theory": 40, "e4": 30, "e5": 30, "e2": 15, "spherical_codes": 15,
        "e8": 6, "e9": 3, "e1": 3, "foundation": 2,
        "siglit": 5100, "bottleneck": 1600, "bias_init": 1240, "hard_negatives": 930, "memory": 300}


def _config_arg(scale: str, seed: int) -> str:
    return f"seed={seed}" if scale == "full" else f"{scale},seed={seed}"


def _prepare_jax() -> None:
    import jax

    from constellations.synthetic import enable_compilation_cache

    # Geometry and reference checks are float64; the engines ask for float32 themselves. Compiled programs are
    # kept across processes (off with CONSTELLATIONS_NO_COMPILATION_CACHE=1), so a second run starts warm.
    jax.config.update("jax_enable_x64", True)
    enable_compilation_cache()


def run_one(name: str, out, *, scale: str = "full", seed: int = 0, progress: bool = True):
    """Run one entry: writes OUT/<name>/ and its summary.md, prints its checks; returns its Outcome."""
    return _run_module(ENTRIES[name.lower().replace("-", "_")] if name.lower().replace("-", "_") in ENTRIES
                       else load(name).__name__, out, scale=scale, seed=seed, progress=progress)


def _run_module(module_name: str, out, *, scale: str, seed: int, progress: bool):
    from constellations import io

    _prepare_jax()
    out = Path(out)
    module = importlib.import_module(module_name)
    config = module.get_config(_config_arg(scale, seed))
    print(f"[{module.NAME}] {module.TITLE} ({scale} scale, seed {seed})", flush=True)
    outcome = module.run(config, out, progress=progress)
    io.write_text(out / module.NAME / "summary.md", outcome.markdown)
    # The whole Outcome (checks with their Comparisons), so a group report can be assembled later from
    # entries run separately (``report`` below) without running them again.
    io.write_bytes(out / module.NAME / OUTCOME_FILE, pickle.dumps({"outcome": outcome, "scale": scale, "seed": seed}))
    for check, (passed, kind) in outcome.checks.items():
        print(f"  [{check_label(passed, kind, scale == 'quick')}] {check}")
    print(f"[{module.NAME}] {outcome.wall_time_s:.1f} s -> {out / module.NAME}", flush=True)
    return outcome


OUTCOME_FILE = "outcome.pickle"


def _run_captured(module_name: str, out, scale: str, seed: int):
    """An entry's module run in a worker process with its printout captured: (outcome, text, CPU seconds)."""
    import contextlib
    import io as stdio

    buffer = stdio.StringIO()
    cpu = time.process_time()
    with contextlib.redirect_stdout(buffer):
        outcome = _run_module(module_name, out, scale=scale, seed=seed, progress=False)
    return outcome, buffer.getvalue(), time.process_time() - cpu


def default_jobs() -> int:
    """Entries run at once by the command line: one per usable core, at most 2."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, usable))


def run_entries(names, out, *, quick: bool = False, seed: int = 0, progress: bool = True, scale: str | None = None,
                jobs: int = 1) -> list:
    """Run entries by name at one scale and seed; each writes OUT/<name>/ and its summary.md. Returns the
    outcomes in the order of ``names``.

    ``scale`` is "quick", "full" or "large" (:func:`experiments.lab.parse_options`); ``quick=True`` is "quick".
    ``jobs`` > 1 runs that many entries at once, each in its own process (the longest first, by
    :data:`COST`; an entry of :data:`AFTER` waits for the entries it reads); each entry's printout
    appears whole when it finishes, and a bar counts finished entries. The processes are not pinned
    to cores: on a machine shared with other jobs the scheduler moves them to whichever core is free.
    """
    scale = scale or ("quick" if quick else "full")
    out = Path(out)
    if jobs <= 1 or len(names) <= 1:
        return [run_one(name, out, scale=scale, seed=seed, progress=progress) for name in names]
    import concurrent.futures
    import multiprocessing

    from experiments.lab import progress_bar

    context = multiprocessing.get_context("spawn")
    pending = sorted(names, key=lambda n: -COST.get(n, 10))
    done, outcomes, running = set(), {}, {}
    print(f"[runner] {len(names)} entries, {jobs} at a time (one process each): {', '.join(pending)}", flush=True)
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool, \
            progress_bar(len(names), "entries", progress, unit="entry") as bar:
        while pending or running:
            while pending and len(running) < jobs:
                ready = [n for n in pending if all(d in done or d not in names for d in AFTER.get(n, ()))]
                if not ready:
                    break
                name = ready[0]
                pending.remove(name)
                running[pool.submit(_run_captured, ENTRIES[name], out, scale, seed)] = (name, time.perf_counter())
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                name, t0 = running.pop(future)
                outcome, text, cpu = future.result()
                print(text, end="", flush=True)
                print(f"[runner] {name} done: {time.perf_counter() - t0:.1f} s wall, {cpu:.1f} s CPU", flush=True)
                outcomes[name] = outcome
                done.add(name)
                if bar is not None:
                    bar.update(1)
    return [outcomes[n] for n in names]


def report_markdown(group: Group, outcomes, *, quick: bool, seed: int, seconds: float, note: str,
                    scale: str | None = None) -> str:
    """One report for a group: the scale and machine, a table of every paper claim and its verdict, each section."""
    from experiments.lab import verdict

    claims = [(o.name, c, s) for o in outcomes for c, s in o.claims().items()]
    failed = [f"{o.name}: {c}" for o in outcomes for c in o.failed()]
    n_checks = sum(1 for o in outcomes for _, kind in o.checks.values() if kind == "consistency")
    parts = [
        f"# {group.title}", "",
        f"Scale: {'quick (test-suite sizes: no claim is judged)' if quick else (scale or 'full')}; seed {seed}; {note} at the "
        f"start; total {seconds:.0f} s (" + ", ".join(f"{o.name} {o.wall_time_s:.0f} s" for o in outcomes) + "). "
        f"Rerun with `{group.command}`.", "",
        f"Consistency checks of our own code: {n_checks - len(failed)} of {n_checks} passed.", "",
    ]
    if claims:
        parts += ["| section | claim | at this scale |", "|---|---|---|",
                  *[f"| {name} | {c} | {verdict(s, quick)} |" for name, c, s in claims], ""]
    from experiments.synthetic import INTRO

    for o in outcomes:
        if o.name == SYNTHETIC[0]:
            parts += [INTRO]
        parts += [o.markdown, f"_({o.name}: {o.wall_time_s:.1f} s)_", ""]
    if failed:
        parts += ["**Failed consistency checks (bugs):**", "", *[f"- {f}" for f in failed], ""]
    return "\n".join(parts)


def saved_outcomes(names, out) -> tuple[list, str, int]:
    """The Outcomes entries ``names`` saved in ``OUT/<name>/`` (:data:`OUTCOME_FILE`) and their common
    scale and seed; ValueError naming what is missing or does not agree."""
    found, missing = [], []
    for name in names:
        f = Path(out) / load(name).NAME / OUTCOME_FILE
        if not f.is_file():
            missing.append(name)
            continue
        found.append(pickle.loads(f.read_bytes()))
    if missing:
        raise ValueError(f"no saved result of {', '.join(missing)} in {out} (run them first: "
                         f"python -m experiments run {' '.join(missing)} --out {out})")
    runs = {(r["scale"], r["seed"]) for r in found}
    if len(runs) > 1:
        raise ValueError(f"the saved results in {out} mix scales and seeds: "
                         + ", ".join(f"{r['outcome'].name} ({r['scale']}, seed {r['seed']})" for r in found))
    (scale, seed), = runs
    return [r["outcome"] for r in found], scale, seed


def machine_note() -> str:
    from experiments.lab import machine_note as note

    return f"{note()} ({platform.processor() or platform.machine()})"


def build_parser(prog: str = "python -m experiments") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run entries or groups (report, synthetic, studies)")
    r.add_argument("names", nargs="+", metavar="NAME", help="entries (see list) or groups: " + ", ".join(GROUPS))
    r.add_argument("--quick", action="store_true", help="small sizes (the test-suite scale; claims are not judged)")
    r.add_argument("--scale", choices=("quick", "full", "large"), default=None,
                   help="quick (= --quick), full (the default) or large (the SigLIP studies at accelerator scale: "
                        "wider towers, larger batches; run it where a GPU is at hand)")
    r.add_argument("--seed", type=int, default=0, help="seed of the data, initial vectors and towers (default 0)")
    r.add_argument("--out", type=Path, default=Path("results"), help="output folder (default results/)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--jobs", type=int, default=None,
                   help="entries run at once, each in its own process on one core (default: the usable cores, "
                        "at most 2; 1 runs them in this process, with a progress bar per entry)")
    rep = sub.add_parser("report", help="write a group's report from its entries' saved results (no rerun)")
    rep.add_argument("group", choices=[g for g, v in GROUPS.items() if v.report], help="the group")
    rep.add_argument("--out", type=Path, default=Path("results"), help="the folder the entries wrote (default results/)")
    sub.add_parser("list", help="list every entry and group")
    return p


def main(argv=None, *, prog: str = "python -m experiments") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        if args.command == "list":
            for name in ENTRIES:
                print(f"{name}: {load(name).TITLE}")
            for name, g in GROUPS.items():
                print(f"{name} (group{', writes ' + g.report if g.report else ''}): {', '.join(g.names)}")
            return 0
        if args.command == "report":
            group = GROUPS[args.group]
            outcomes, scale, seed = saved_outcomes(group.names, args.out)
            from constellations import io

            text = report_markdown(group, outcomes, quick=scale == "quick", seed=seed,
                                   seconds=sum(o.wall_time_s for o in outcomes),
                                   note=f"assembled from the entries' saved results; {machine_note()}", scale=scale)
            print(f"wrote {io.write_text(args.out / group.report, text)}")
            return 0
        if args.quick and args.scale not in (None, "quick"):
            raise ValueError(f"--quick and --scale {args.scale} disagree: give one")
        args.scale = args.scale or ("quick" if args.quick else "full")
        args.quick = args.scale == "quick"
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1; got {args.jobs}")
        args.jobs = args.jobs or default_jobs()
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0; got {args.seed}")
        names = resolve(args.names)
        for name in names:   # a scale an entry does not have is refused before anything runs
            load(name).get_config(f"seed={args.seed}" if args.scale == "full" else f"{args.scale},seed={args.seed}")
        from constellations import io

        io.check_writable_dir(args.out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    t0 = time.perf_counter()
    note = machine_note()
    outcomes = run_entries(names, args.out, scale=args.scale, seed=args.seed, jobs=args.jobs,
                           progress=not args.no_progress and sys.stderr.isatty())
    from constellations import io

    for key in args.names:
        group = GROUPS.get(key.lower().replace("-", "_"))
        if group is not None and group.report:
            mine = [o for o in outcomes if o.name in group.names]
            text = report_markdown(group, mine, quick=args.quick, seed=args.seed, seconds=time.perf_counter() - t0,
                                   note=note, scale=args.scale)
            print(f"wrote {io.write_text(args.out / group.report, text)}", flush=True)
    failed = [f"{o.name}: {c}" for o in outcomes for c in o.failed()]
    if failed:
        print("consistency checks failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0

