"""Command line: ``python -m constellations.siglip {train,eval} ...``.

    python -m constellations.siglip train --config experiments/siglip/shapes_tiny.py --workdir runs/tiny
    python -m constellations.siglip train --config CONFIG --workdir DIR --set optim.lr=3e-4 --set loss.implementation=ring
    python -m constellations.siglip eval --workdir runs/tiny [--json OUT]
    python -m constellations.siglip embed --workdir runs/tiny --out emb.npz   # then: python -m constellations analyze

Several processes (one per host): add ``--coordinator HOST:PORT --num-processes P --process-id I``
(or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID); see README.md beside this file.
Exit status 2 for bad input (a ValueError, message on stderr), 3 when training diverges.
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
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    t.add_argument("--stop-at-step", type=int, default=None, help="stop (with a checkpoint) at this step")
    e = sub.add_parser("eval", help="evaluate a run's latest checkpoint (or a checkpoint file)")
    e.add_argument("--workdir", required=True, help="run folder or checkpoint file")
    e.add_argument("--num-examples", type=int, default=None)
    e.add_argument("--json", default=None, help="also write the results here")
    x = sub.add_parser("embed", help="export a checkpoint's held-out image/text embeddings (.npz) for `analyze`")
    x.add_argument("--workdir", required=True, help="run folder or checkpoint file")
    x.add_argument("--out", required=True, help="the .npz to write")
    x.add_argument("--num-examples", type=int, default=None)
    for q in (t, e, x):
        q.add_argument("--coordinator", default=None, help="HOST:PORT of process 0 (multi-process runs)")
        q.add_argument("--num-processes", type=int, default=None)
        q.add_argument("--process-id", type=int, default=None)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .distributed import initialize

    try:
        initialize(args.coordinator, args.num_processes, args.process_id)
        if args.command == "train":
            from .config import apply_overrides, load_config
            from .train import TrainingDiverged, train

            cfg = apply_overrides(load_config(args.config), args.set)
            try:
                result = train(cfg, args.workdir, stop_at_step=args.stop_at_step)
            except TrainingDiverged as err:
                print(f"training diverged: {err}", file=sys.stderr)
                return 3
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
        return 0
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
