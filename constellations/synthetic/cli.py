"""Command line of the synthetic engine: ``python -m constellations.synthetic train N d [options]``.

Trains ``--seeds`` runs of free unit vectors (theory.md section 5) with :func:`train_synthetic` and
writes ``OUT/config.json`` (every option, the seed) and ``OUT/result.npz`` (final t, b_rel, m*,
b*_rel, the loss curves and the final vectors), then prints one line per run. It needs nothing but
the installed package; the paper's experiments E1-E9 are defined in the repository's lab
(``python -m experiments run e6`` from a checkout).

Compiled programs are kept in JAX's persistent compilation cache (``~/.cache/constellations/jax``,
or under ``$XDG_CACHE_HOME``), so a second run of the same sizes starts at once; set
``CONSTELLATIONS_NO_COMPILATION_CACHE=1`` to turn that off.

Example::

    python -m constellations.synthetic train 100 10 --seeds 4 --b-rel0 0.778 --freeze bias --out runs/e6_point
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m constellations.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train seeds x one configuration and save the result")
    t.add_argument("N", type=int, help="pairs (>= 2)")
    t.add_argument("d", type=int, help="dimension (>= 1)")
    t.add_argument("--seeds", type=int, default=1, help="independent runs (default 1)")
    t.add_argument("--steps", type=int, default=5000, help="Adam steps (default 5000)")
    t.add_argument("--parameterization", choices=("relative_bias", "standard"), default="relative_bias")
    t.add_argument("--t0", type=float, default=10.0, help="initial inverse temperature (default 10)")
    t.add_argument("--b-rel0", type=float, default=0.0, help="initial relative bias b_rel = -b/t (default 0)")
    t.add_argument("--freeze", default="", help="comma-separated names among U,V,t,bias to keep frozen")
    t.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 1e-2)")
    t.add_argument("--seed", type=int, default=0, help="base seed of the initial vectors (default 0)")
    t.add_argument("--out", type=Path, default=None, help="folder for config.json and result.npz (default: print only)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .. import io
    from .compilation import enable_compilation_cache
    from .engine import TRAINABLE_NAMES
    from .train import train_synthetic

    frozen = [n.strip() for n in args.freeze.split(",") if n.strip()]
    bad = [n for n in frozen if n not in TRAINABLE_NAMES]
    if bad:
        print(f"error: --freeze names must be among {','.join(TRAINABLE_NAMES)}; got {','.join(bad)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out is not None:
        try:
            io.check_writable_dir(args.out)
        except ValueError as e:
            print(f"error: --out: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    enable_compilation_cache()
    try:
        res = train_synthetic(args.N, args.d, seeds=args.seeds, steps=args.steps, parameterization=args.parameterization,
                              t0=args.t0, b_rel0=args.b_rel0, trainable=[n for n in TRAINABLE_NAMES if n not in frozen],
                              lr=args.lr, seed=args.seed, progress=not args.no_progress and sys.stderr.isatty())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for s in range(args.seeds):
        print(f"run {s}: final loss {res.loss[s, -1]:.6g}, t {res.t[s]:.4g}, b_rel {res.b_rel[s]:.4f}, "
              f"margin {res.margin[s]:+.4f}, relative_bias {res.relative_bias[s]:.4f}")
    if args.out is not None:
        io.write_json(args.out / "config.json", {**res.config, "command": "train"})
        io.save_npz(args.out / "result.npz", U=res.U, V=res.V, t=res.t, b_rel=res.b_rel, loss=res.loss,
                    margin=res.margin, relative_bias=res.relative_bias)
        print(f"wrote {args.out / 'config.json'} and {args.out / 'result.npz'}")
    return 0
