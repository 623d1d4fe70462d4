"""Benchmark of the synthetic engine (issue 5): step cost against the raw matrix products, the E6 sweep, the suite.

Measured in one process, interleaved and repeated, so the ratios hold even when other jobs share the
cores (the load average is printed; say so when quoting the numbers):

1. raw: the three matrix products of one step of one run (N = 100, d = 10): S = U V^T, G V, G^T U,
   in a compiled lax.scan (the floor any implementation pays);
2. engine, one run: one full training step (loss, gradient, Adam, re-projection, masks), same scan;
3. engine, batched: per-run cost of a step inside a vmapped chunk;
4. the full E6 sweep (10 b_rel x 100 seeds x 5000 steps) through ``train_grid`` on 2 workers;
5. the whole E1-E9 suite at full scale (``--skip-suite`` to leave it out; it takes minutes).

Goals: single-run step within 3x of the raw matrix products; the full suite under 10 minutes.
Usage: ``python experiments/bench_engine.py [--repeats 5] [--skip-suite] [--out results/bench_engine]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path


import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from constellations import io  # noqa: E402
from constellations.synthetic import engine, train_grid  # noqa: E402
from constellations.synthetic.train import _resolve_variant, _run_inputs  # noqa: E402

N, D = 100, 10


def _load() -> str:
    return "%.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else "n/a"


def raw_matmul_step(steps: int):
    """The matrix products of one run's step, chained so that none can be hoisted or skipped."""
    @jax.jit
    def f(U, V):
        def body(c, _):
            U, V = c
            S = U @ V.T
            return (U + 1e-6 * (S @ V), V + 1e-6 * (S.T @ U)), None
        return jax.lax.scan(body, (U, V), None, length=steps)[0]
    return f


def engine_chunk(runs: int, steps: int, loss: str = "exact"):
    """A ready-to-call engine advance of ``runs`` E6-style runs by ``steps`` steps (compiled on first call)."""
    cfg = engine.make_config(N, D, steps=steps, loss=loss, metric_every=steps)
    base = dict(parameterization="relative_bias", t0=10.0, b_rel0=0.778, trainable=("U", "V", "t"), lr=1e-2, adapter_x0=0.0)
    inputs = _run_inputs([_resolve_variant(base, {}, 2, False)], runs, 2)
    data = {f.name: jnp.asarray(getattr(inputs, f.name)) for f in dataclasses.fields(inputs)}
    for k in ("t0", "bias0", "lr", "adapter_x0"):
        data[k] = data[k].astype(jnp.float32)
    state, _ = engine._init_chunk(cfg, 0, data)
    return lambda: jax.block_until_ready(engine._advance_chunk(cfg, 1, state, data))


def time_call(fn, repeats: int) -> list[float]:
    fn()  # compile / warm up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(times, per: float) -> dict:
    t = np.asarray(times) / per * 1e6
    return {"median_us": float(np.median(t)), "min_us": float(t.min()), "max_us": float(t.max())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=2000, help="steps per timed call of the step benchmarks")
    p.add_argument("--skip-sweep", action="store_true", help="leave out the full E6 sweep")
    p.add_argument("--skip-suite", action="store_true", help="leave out the full E1-E9 suite")
    p.add_argument("--out", type=Path, default=Path("results/bench_engine"))
    args = p.parse_args(argv)
    report = {"cpu_count": os.cpu_count(), "jax": jax.__version__, "load_average_start": _load(), "N": N, "d": D}
    print(f"[bench] {os.cpu_count()} CPU cores, jax {jax.__version__}, load average {_load()} "
          "(other jobs on these cores inflate every number; the ratios are measured interleaved)")

    steps = args.steps
    U = jax.random.normal(jax.random.PRNGKey(0), (N, D), jnp.float32)
    V = jax.random.normal(jax.random.PRNGKey(1), (N, D), jnp.float32)
    raw_f = raw_matmul_step(steps)
    raw = lambda: jax.block_until_ready(raw_f(U, V))  # noqa: E731
    single = engine_chunk(1, steps)
    batched = {c: engine_chunk(c, steps // 4) for c in (8, 32)}
    for fn in (raw, single, *batched.values()):
        fn()
    times = {"raw": [], "single": [], **{f"batch{c}": [] for c in batched}}
    for _ in range(args.repeats):  # interleaved, so contention hits every variant alike
        for name, fn in (("raw", raw), ("single", single)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        for c, fn in batched.items():
            t0 = time.perf_counter()
            fn()
            times[f"batch{c}"].append(time.perf_counter() - t0)
    res = {"raw_matmuls_per_step": summary(times["raw"], steps),
           "engine_single_run_per_step": summary(times["single"], steps),
           **{f"engine_chunk{c}_per_run_step": summary(times[f"batch{c}"], c * (steps // 4)) for c in batched}}
    ratios = np.asarray(times["single"]) / np.asarray(times["raw"])
    res["ratio_single_over_raw"] = {"median": float(np.median(ratios)), "min": float(ratios.min()), "max": float(ratios.max())}
    for c in batched:
        r = (np.asarray(times[f"batch{c}"]) / (c * (steps // 4))) / (np.asarray(times["raw"]) / steps)
        res[f"ratio_chunk{c}_per_run_over_raw"] = {"median": float(np.median(r)), "min": float(r.min()), "max": float(r.max())}
    report["step"] = res
    print(f"[bench] per step, N = {N}, d = {D} (median [min, max] over {args.repeats} interleaved repeats):")
    for k, v in res.items():
        if k.startswith("ratio"):
            print(f"  {k:45s} {v['median']:8.2f}x  [{v['min']:.2f}, {v['max']:.2f}]")
        else:
            print(f"  {k:45s} {v['median_us']:8.1f} us [{v['min_us']:.1f}, {v['max_us']:.1f}]")
    print(f"  goal: single-run step within 3x of the raw matrix products -> "
          f"{'met' if res['ratio_single_over_raw']['median'] <= 3 else 'NOT met'} (median ratio)")

    if not args.skip_sweep:
        b_rel = np.linspace(-1, 1, 10)
        t0, c0 = time.perf_counter(), time.process_time()
        r = train_grid(N, D, [dict(b_rel0=float(b)) for b in b_rel], seeds=100, steps=5000, trainable=("U", "V", "t"))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        runs = 10 * 100
        report["e6_sweep"] = {"runs": runs, "steps": 5000, "wall_s": wall, "engine_s": r.wall_time_s, "cpu_s": cpu,
                              "per_run_s": wall / runs, "per_run_step_us": wall / runs / 5000 * 1e6,
                              "mean_margin_at_0.778": float(r.margin[8].mean()), "load_average_end": _load()}
        print(f"[bench] full E6 sweep (10 b_rel x 100 seeds x 5000 steps, one compiled function, 2 workers): "
              f"{wall:.1f} s wall ({cpu:.1f} s CPU), {wall / runs * 1e3:.1f} ms per run, "
              f"{wall / runs / 5000 * 1e6:.1f} us per run-step; mean m* at b_rel 0.778 = {r.margin[8].mean():.4f} "
              f"(paper 0.2814); load average now {_load()}")

    if not args.skip_suite:
        from constellations.synthetic.cli import run_experiments

        t0 = time.perf_counter()
        outcomes = run_experiments(["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"], args.out / "suite",
                                   quick=False, seed=0, progress=False)
        wall = time.perf_counter() - t0
        report["suite"] = {"wall_s": wall, "per_experiment_s": {o.name: o.wall_time_s for o in outcomes},
                           "all_ok": all(o.ok for o in outcomes), "load_average_end": _load()}
        print(f"[bench] full E1-E9 suite: {wall:.1f} s wall (goal < 600 s: {'met' if wall < 600 else 'NOT met'}); "
              + ", ".join(f"{o.name} {o.wall_time_s:.0f} s" for o in outcomes) + f"; load average now {_load()}")
    io.write_json(args.out / "bench.json", report)
    print(f"[bench] wrote {args.out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
