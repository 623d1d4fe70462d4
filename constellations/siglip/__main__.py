"""Command line: ``python -m constellations.siglip {train,eval} ...``.

    python -m constellations.siglip train --config experiments/siglip/shapes_tiny.py --workdir runs/tiny
    python -m constellations.siglip train --config CONFIG --workdir DIR --set optim.lr=3e-4 --set loss.implementation=ring
    python -m constellations.siglip eval --workdir runs/tiny [--json OUT]
    python -m constellations.siglip embed --workdir runs/tiny --out emb.npz   # then: python -m constellations analyze
    python -m constellations.siglip embed --pretrained HF_DIR --images VAL --class-names NAMES.txt --out emb.npz
    python -m constellations.siglip report emb.npz [more.npz ...] [--names ...] [--out table.md]
    python -m constellations.siglip plot runs/a runs/b [--out curves.png]   # training curves, runs overlaid
    python -m constellations.siglip config experiments/siglip/shapes_tiny.py [--set ...]   # every field, resolved

Several processes (one per host): add ``--coordinator HOST:PORT --num-processes P --process-id I``
(or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID); see README.md beside this file.
Exit status 2 for bad input (a ValueError, message on stderr; also a resume with a changed config,
which ``--allow-config-change`` permits), 3 when training diverges, 128 + the signal number (130 for
Ctrl-C, 143 for SIGTERM) when a signal stopped training after saving a checkpoint: run the same
command again to resume.
"""

from __future__ import annotations

import argparse
import json
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m constellations.siglip", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train or resume a run")
    t.add_argument("--config", required=True, help="a config file (path.py or path.py:arg)")
    t.add_argument("--workdir", required=True, help="run folder: checkpoints, metrics.jsonl, config.json")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (python -m constellations.siglip config FILE lists them all)")
    t.add_argument("--stop-at-step", type=int, default=None, help="stop (with a checkpoint) at this step")
    t.add_argument("--allow-config-change", action="store_true",
                   help="resume even though the config differs from the checkpoint's (beyond total_steps and "
                        "the logging, checkpointing and eval fields, which may always change)")
    e = sub.add_parser("eval", help="evaluate a run's latest checkpoint (or a checkpoint file)")
    e.add_argument("--workdir", required=True, help="run folder or checkpoint file")
    e.add_argument("--num-examples", type=int, default=None)
    e.add_argument("--json", default=None, help="also write the results here")
    x = sub.add_parser("embed", help="export a checkpoint's held-out image/text embeddings (.npz) for `analyze`")
    src = x.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="run folder or checkpoint file")
    src.add_argument("--pretrained", help="a Hugging Face SigLIP / SigLIP 2 folder (see pretrained.py)")
    x.add_argument("--out", required=True, help="the .npz to write")
    x.add_argument("--num-examples", type=int, default=None)
    x.add_argument("--images", help="with --pretrained: FOLDER/<class>/<image> (class names) or FOLDER (captions)")
    txt = x.add_mutually_exclusive_group()
    txt.add_argument("--class-names", help="one class a line: SUBFOLDER<TAB>name, or names in sorted subfolder order")
    txt.add_argument("--captions", help="IMAGE<TAB>caption lines, paths relative to --images")
    x.add_argument("--template", default="{}", help="prompt around each class name (default: the bare name)")
    x.add_argument("--batch-size", type=int, default=64)
    x.add_argument("--limit", type=int, default=None, help="embed only the first N images")
    x.add_argument("--no-progress", action="store_true")
    pl = sub.add_parser("plot", help="training curves of one or more workdirs (overlaid) to a PNG")
    pl.add_argument("workdirs", nargs="+", help="run folders (each with metrics.jsonl)")
    pl.add_argument("--out", default="curves.png", help="the PNG to write (default curves.png)")
    pl.add_argument("--labels", nargs="+", default=None, help="legend names (default: the folder names)")
    c = sub.add_parser("config", help="print a config file's resolved fields with what each one means")
    c.add_argument("config", help="a config file (path.py or path.py:arg)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    r = sub.add_parser("report", help="the E10 table (markdown) of embedding files written by `embed --pretrained`")
    r.add_argument("embeddings", nargs="+", help=".npz files")
    r.add_argument("--names", nargs="+", default=None, help="row names (default: the file names)")
    r.add_argument("--out", default=None, help="also write the table here")
    for q in (t, e, x):
        q.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (multi-process runs)")
        q.add_argument("--num-processes", type=int, default=None)
        q.add_argument("--process-id", type=int, default=None)
    return p


def _check_outputs(args) -> None:
    """Refuse an output file that cannot be written before any work is done (ValueError naming the option)."""
    from pathlib import Path

    from .. import io

    for option in ("out", "json"):
        path = getattr(args, option, None)
        if path in (None, "-") or (option == "out" and args.command not in ("embed", "plot", "report")):
            continue
        if Path(path).is_dir():
            raise ValueError(f"--{option} {path} is a folder; give a file name")
        try:
            io.check_writable_dir(Path(path).parent)
        except ValueError as e:
            raise ValueError(f"--{option}: {e}") from None


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check_outputs(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command in ("report", "embed") and getattr(args, "workdir", None) is None:
        return _pretrained_command(args)
    if args.command in ("plot", "config"):
        return _local_command(args)
    from .distributed import initialize

    try:
        initialize(args.coordinator, args.num_processes, args.process_id)
        if args.command == "train":
            from .config import apply_overrides, load_config
            from .train import TrainingDiverged, TrainingInterrupted, train

            cfg = apply_overrides(load_config(args.config), args.set)
            try:
                result = train(cfg, args.workdir, stop_at_step=args.stop_at_step,
                               allow_config_change=args.allow_config_change)
            except TrainingDiverged as err:
                print(f"training diverged: {err}", file=sys.stderr)
                return 3
            except TrainingInterrupted as err:
                print(f"interrupted: {err}", file=sys.stderr)
                return 128 + err.signum
            final = result.evals[-1] if result.evals else {}
            print(json.dumps({"step": result.step, "workdir": str(result.workdir), **final}, indent=2))
            return 0
        from pathlib import Path

        from .. import io
        from .train import evaluate_checkpoint, export_embeddings

        if args.command == "embed":
            shapes = export_embeddings(args.workdir, args.out, num_examples=args.num_examples)
            print(json.dumps({"out": args.out, "arrays": {k: list(v) for k, v in shapes.items()}}, indent=2))
            return 0

        res = evaluate_checkpoint(args.workdir, num_examples=args.num_examples)
        print(json.dumps(res, indent=2))
        out = Path(args.json) if args.json else None
        if out is None and Path(args.workdir).is_dir():
            out = Path(args.workdir) / f"eval_step{res['step']}.json"
        if out is not None:
            io.write_json(out, res)
            print(f"wrote {out}", file=sys.stderr)
        return 0
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _local_command(args) -> int:
    """``plot`` and ``config``: read files, run nothing."""
    try:
        if args.command == "plot":
            from .plots import plot_runs

            print(f"wrote {plot_runs(args.workdirs, args.out, labels=args.labels)}")
            return 0
        from .config import apply_overrides, describe_config, load_config

        print(describe_config(apply_overrides(load_config(args.config), args.set)))
        return 0
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _pretrained_command(args) -> int:
    """``embed --pretrained`` and ``report`` (see pretrained.py): single process, no trainer."""
    from pathlib import Path

    from . import pretrained

    try:
        if args.command == "report":
            names = args.names or [Path(p).stem for p in args.embeddings]
            if len(names) != len(args.embeddings):
                raise ValueError(f"--names gives {len(names)} names for {len(args.embeddings)} files")
            table, _ = pretrained.e10_table(dict(zip(names, args.embeddings)))
            print(table, end="")
            if args.out:
                from .. import io

                io.write_text(args.out, table)
            return 0
        if not args.images or not (args.class_names or args.captions):
            raise ValueError("embed --pretrained needs --images and one of --class-names / --captions")
        shapes = pretrained.export_pretrained_embeddings(
            args.pretrained, args.images, args.out, class_names=args.class_names, captions=args.captions,
            template=args.template, batch_size=args.batch_size, limit=args.limit, progress=not args.no_progress)
        labels = f" --labels {args.out} --labels-key labels" if "labels" in shapes else ""
        print(json.dumps({"out": args.out, "arrays": {k: list(v) for k, v in shapes.items()},
                          "analyze": f"python -m constellations analyze {args.out} {args.out} --image-key image "
                                     f"--text-key text{labels}"}, indent=2))
        return 0
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
