"""Benchmark of the trainer's sigmoid-loss implementations: per-device memory and loss+grad throughput.

    python experiments/bench_siglip_loss.py [--batch 8192] [--width 256] [--repeats 3] [--out results/bench_siglip_loss.json]

    python -m experiments.bench_siglip_loss --tiled [--tiled-parts memory speed] [--tiled-batches 16384 65536]
        [--speed-batches 8192 16384] [--tiles 256 512 1024 512x1024]     (pin it: taskset -c 0)

    python -m experiments.bench_siglip_loss --gpu [--gpu-batch 65536]    (on a machine with a GPU or TPU)

The open_clip baseline needs ``open_clip_torch`` beside torch. Its dependencies would pull a GPU
build of torch, so install it alone, into an environment that already has (CPU) torch:

    pip install --no-deps open_clip_torch

Its package ``__init__`` then fails for want of torchvision; the bench loads ``open_clip/loss.py``
(torch only) straight from the installed package and says so in its output.

Part 1, memory (8 emulated CPU devices, XLA's compiled memory analysis of jit(value_and_grad(loss)),
which is per device for a partitioned program):
  (a) global batch B fixed (default 8192) on D = 1, 2, 4, 8 devices;
  (b) per-device batch n = B / 8 fixed, so B grows with D: the ring (each block rematerialized) stays
      flat, dense and all-gather grow like n * B, and the ring without remat grows too (what open_clip's
      ring and big_vision's deprecated loop keep for the backward pass).
  A measured check: the peak resident memory of a subprocess running each implementation once
  (compiling excluded; ``experiments.siglip_studies.memory.run_peak``, shared with the memory study).
Part 2, throughput (loss + gradients w.r.t. both embeddings, t and b, at the same B and width):
  our dense (1 device), all-gather and ring (8 emulated devices) versus open_clip's SigLipLoss on CPU
  torch, measured in the same run; ratios are torch time / our time (>= 1.0 means at least as fast).
  open_clip's package __init__ needs torchvision; when that import fails, its loss.py (torch only) is
  loaded straight from the installed package; without open_clip the same computation is written in
  plain PyTorch; without torch the comparison is skipped with a message.
Part 3 (``--tiled``, instead of parts 1-2), the tiled loss on one device (``constellations.siglip.tiled``):
  (a) memory of value+grad at each of ``--tiled-batches``: compiled temporaries and total (dense beside
      it, compiled only) and the measured peak RSS increase of a subprocess (compiling excluded);
  (b) speed at each of ``--speed-batches``: the tiled loss at each of ``--tiles`` (and the recomputing backward pass at
      the fastest), the dense loss, and a roof measured in the same run: one GEMM for the (B, B)
      logits, one sigmoid per pair, two GEMMs for the gradients w.r.t. both embeddings; ratios are
      time / roof time (<= 1.3 is the goal), and the same roof computed tile by tile (no (B, B)
      matrix in memory: the tighter bound). Each time is given twice: the process's CPU time (what to
      compare when other jobs share the core: it leaves out the time the scheduler gave them) and the
      wall clock, each as a ratio to the roof on the same clock, with the load average before and
      after. Run it pinned to one core (``taskset -c 0``): XLA and torch then use one thread each.
  ``--speed-batches`` sets the batches of (b) (default 8192 and 16384); the dense loss, which holds
  several (B, B) matrices, is timed only up to ``--dense-max``.
Part 4 (``--gpu``, instead of parts 1-3; prepared for a GPU/TPU machine, see :func:`gpu_part`): the
  Pallas kernels against the XLA scan at B = 65536 in float32 and bfloat16, several tiles each, with
  the relative difference of value and gradients between them.
"""

from __future__ import annotations

import os
import sys

N_DEVICES = 8
if "jax" not in sys.modules:
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={N_DEVICES}".strip()

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402


import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from constellations import io  # noqa: E402
from constellations.siglip.losses import make_sigmoid_loss  # noqa: E402
from constellations.siglip.tiled import DEFAULT_TILE, tiled_sigmoid_block  # noqa: E402
from experiments.siglip_studies.memory import program_memory, run_peak, unit_pairs  # noqa: E402

VARIANTS = {  # label -> (implementation, remat, tile); the ring's blocks are tiled unless tile is None
    "dense": ("dense", True, None),
    "all_gather": ("all_gather", True, None),
    "ring": ("ring", True, DEFAULT_TILE),
    "ring_bidirectional": ("ring_bidirectional", True, DEFAULT_TILE),
    "ring_dense_blocks": ("ring", True, None),
    "ring_no_remat": ("ring", False, None),
    "tiled": ("tiled", True, DEFAULT_TILE),     # one device (part 3)
}
MULTI_DEVICE = [label for label in VARIANTS if label != "tiled"]
MiB = 2.0**20


def _value_and_grad(label, mesh, tile=None):
    impl, remat, default_tile = VARIANTS[label]
    f = make_sigmoid_loss(impl, mesh, remat=remat, tile=default_tile if tile is None else tile)
    return jax.jit(jax.value_and_grad(lambda a, b, t, bias: f(a, b, t, bias)[0], argnums=(0, 1, 2, 3)))


def compiled_memory(label, D, B, width, tile=None):
    """Per-device bytes (temp, total = arguments + outputs + temp - aliased) of loss+grad on D devices."""
    mesh = Mesh(np.array(jax.devices()[:D]), ("data",))
    stats = program_memory(_value_and_grad(label, mesh, tile), mesh, B, width)
    return stats["temp"], stats["total"]


def _embeddings(B, width, seed=0):
    return unit_pairs(B, width, seed, noise=0.5)


def _measured_child(label, D, B, width, tile=None):
    """Run in a fresh process: peak RSS increase (MiB) of running the compiled loss+grad once (compiling excluded)."""
    mesh = Mesh(np.array(jax.devices()[:D]), ("data",))
    m = run_peak(_value_and_grad(label, mesh, tile), mesh, *_embeddings(B, width))
    print(json.dumps({"peak_increase_mib": m["peak_increase"] / MiB, "loss": m["value"], "method": m["method"],
                      "seconds": m["seconds"]}))


def measured_peak(label, D, B, width, tile=None, timeout=600):
    cmd = [sys.executable, "-m", "experiments.bench_siglip_loss", "--child", label, str(D), str(B), str(width)]
    cmd += [] if tile is None else [str(tile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_it(fn, repeats):
    """Best wall-clock seconds of ``repeats`` calls of ``fn`` after one warm-up call (see :func:`time_both`)."""
    return time_both(fn, repeats)["wall"]


def time_both(fn, repeats) -> dict:
    """{"wall": best wall-clock seconds, "cpu": best CPU seconds of this process (all its threads)} of
    ``repeats`` calls of ``fn``, after one warm-up (compiling) call.

    On a machine shared with other jobs the wall clock also counts the time the scheduler gave to
    them; the process CPU time does not, so it is the figure to compare when the load average is
    above the number of cores (a loaded machine still slows the CPU time a little: caches are shared).
    """
    fn()
    wall = cpu = np.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return {"wall": wall, "cpu": cpu}


def torch_baseline(B, width, repeats, timer=time_it, threads=None):
    """(timer's result, description) of loss+grad with open_clip's SigLipLoss (or plain torch), or (None, why).

    ``threads``: torch's intra-op threads (None keeps torch's default)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed: skipping the open_clip comparison (pip install torch to run it)"
    if threads is not None:
        torch.set_num_threads(threads)
    loss_cls, how = None, ""
    try:
        from open_clip.loss import SigLipLoss as loss_cls
        how = "open_clip.loss.SigLipLoss (imported from the open_clip package)"
    except Exception as err:  # open_clip missing, or its __init__ needs torchvision
        try:
            import importlib.metadata as md
            import importlib.util

            path = next(f for f in md.files("open_clip_torch") if str(f).endswith("open_clip/loss.py")).locate()
            spec = importlib.util.spec_from_file_location("open_clip_loss", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loss_cls = module.SigLipLoss
            how = (f"open_clip SigLipLoss, loaded from {path} (the package __init__ failed: "
                   f"{type(err).__name__}: {err})")
        except Exception:
            how = "the same loss written directly in PyTorch (open_clip could not be imported)"
    x, y = (torch.from_numpy(a) for a in _embeddings(B, width))
    x.requires_grad_(True)
    y.requires_grad_(True)
    scale = torch.tensor(10.0, requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    if loss_cls is not None:
        loss_fn = loss_cls()

        def step():
            for p in (x, y, scale, bias):
                p.grad = None
            loss = loss_fn(x, y, scale, bias)
            loss.backward()
            return loss
    else:
        def step():
            for p in (x, y, scale, bias):
                p.grad = None
            logits = scale * x @ y.T + bias
            labels = 2 * torch.eye(B) - 1
            loss = -torch.nn.functional.logsigmoid(labels * logits).sum() / B
            loss.backward()
            return loss
    loss = float(step().detach())
    return timer(step, repeats), f"{how}; torch {torch.__version__}, {torch.get_num_threads()} threads; loss {loss:.6f}"


def roof(x, y, t, b):
    """The least work of loss+grad: one GEMM for the (B, B) logits, one sigmoid per pair, two GEMMs for
    the gradients w.r.t. both embeddings (no loss value, no labels, no reduction)."""
    g = jax.nn.sigmoid(t * (x @ y.T) + b)
    return g @ y, g.T @ x


def roof_tiled(x, y, t, b, tile):
    """The same work as :func:`roof` (B divisible by ``tile``), tile by tile: what the roof costs
    when the (B, B) matrices never leave the cache, the tighter bound for the tiled loss."""
    B, d = x.shape
    xb, yb = x.reshape(-1, tile, d), y.reshape(-1, tile, d)

    def row(dy, xi):
        def col(carry, j):
            dxi, dy = carry
            g = jax.nn.sigmoid(t * (xi @ yb[j].T) + b)
            return (dxi + g @ yb[j], dy.at[j].add(g.T @ xi)), None

        (dxi, dy), _ = jax.lax.scan(col, (jnp.zeros_like(xi), dy), jnp.arange(yb.shape[0]))
        return dy, dxi

    dy, dx = jax.lax.scan(row, jnp.zeros_like(yb), xb)
    return dx.reshape(B, d), dy.reshape(B, d)


def tiled_part(args) -> dict:
    """Part 3: memory and speed of the tiled loss on one CPU device (see the module docstring)."""
    width = args.width
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = _loadavg()
    results = {"width": width, "tile_default": DEFAULT_TILE, "cpus_in_affinity": cpus, "loadavg_start": load,
               "memory": {}}
    print(f"3. tiled sigmoid loss on one CPU device, d = {width}, float32; {cpus} CPU(s) in this process's "
          f"affinity; load average {' '.join(load)}")

    if "memory" in args.tiled_parts:
        _tiled_memory(args, results)
    if "speed" in args.tiled_parts:
        _tiled_speed(args, results)
    return results


def _tiled_memory(args, results) -> None:
    """Part 3a: compiled and measured memory of the tiled loss at each of ``--tiled-batches``."""
    width = args.width
    print(f"\n3a. memory of value+grad, tile {DEFAULT_TILE} (MiB; compiled per device, and the measured peak RSS "
          "increase of a subprocess running it once, compiling excluded)")
    for batch in args.tiled_batches:
        row = {}
        for label in ("dense", "tiled"):
            temp, total = compiled_memory(label, 1, batch, width)
            row[label] = {"temp_mib": temp / MiB, "total_mib": total / MiB}
        if not args.no_measured:
            m = measured_peak("tiled", 1, batch, width, timeout=args.timeout)
            row["tiled"].update(measured_peak_increase_mib=m["peak_increase_mib"], run_seconds=m["seconds"],
                                loss=m["loss"], method=m["method"])
        results["memory"][str(batch)] = row
        measured = row["tiled"].get("measured_peak_increase_mib")
        print(f"    B = {batch:>7}: dense compiled temp {row['dense']['temp_mib']:10.1f} total "
              f"{row['dense']['total_mib']:10.1f} | tiled compiled temp {row['tiled']['temp_mib']:8.1f} total "
              f"{row['tiled']['total_mib']:8.1f}"
              + ("" if measured is None else f", measured peak {measured:8.1f} MiB "
                 f"(run {row['tiled']['run_seconds']:.1f} s, loss {row['tiled']['loss']:.6f})"), flush=True)


def _parse_tile(text: str):
    """"512" -> 512 (square tiles), "512x1024" -> (512, 1024) (rows x columns)."""
    rows, _, cols = text.partition("x")
    return (int(rows), int(cols)) if cols else int(rows)


def _tile_name(tile) -> str:
    return f"{tile[0]}x{tile[1]}" if isinstance(tile, tuple) else str(tile)


def _loadavg() -> list[str]:
    return Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]


def _tiled_speed(args, results) -> None:
    """Part 3b: time of value+grad of the tiled loss against the roof, open_clip and (small B) the dense loss."""
    width = args.width
    one = Mesh(np.array(jax.devices()[:1]), ("data",))
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    tiles = [_parse_tile(t) for t in args.tiles]
    results["speed"] = {}
    for B in args.speed_batches:
        load0 = _loadavg()
        print(f"\n3b. value+grad at B = {B}, d = {width}, float32 (best of {args.repeats}; XLA and torch on "
              f"{threads} thread(s) = this process's CPU affinity; load average {' '.join(load0)}).\n"
              "    cpu = CPU seconds of this process (what to compare on a shared machine), wall = wall clock; "
              "ratio = time / the roof's time on the same clock")
        x, y = (jax.device_put(a, jax.devices()[0]) for a in _embeddings(B, width))
        t, b = jnp.float32(10.0), jnp.float32(-10.0)
        flops = 3 * 2.0 * B * B * width
        speed = {}

        def run(name, fn, timing=None):
            timing = timing or time_both(lambda: jax.block_until_ready(fn(x, y, t, b)), args.repeats)
            speed[name] = timing
            roof_t = speed.get("roof", timing)
            print(f"    {name:>34}: cpu {timing['cpu'] * 1e3:9.1f} ms ({flops / timing['cpu'] / 1e9:5.1f} GFLOP/s, "
                  f"ratio {timing['cpu'] / roof_t['cpu']:5.2f})   wall {timing['wall'] * 1e3:9.1f} ms "
                  f"(ratio {timing['wall'] / roof_t['wall']:5.2f})", flush=True)

        run("roof", jax.jit(roof))
        for tile in tiles:
            if isinstance(tile, int) and B % tile == 0:
                run(f"roof over tiles of {tile}", jax.jit(partial(roof_tiled, tile=tile)))
        if B <= args.dense_max:
            run("dense", _value_and_grad("dense", one))
        for tile in tiles:
            run(f"tiled, tile {_tile_name(tile)}", _value_and_grad("tiled", one, tile))
        best = min(tiles, key=lambda tile: speed[f"tiled, tile {_tile_name(tile)}"]["cpu"])
        recompute = jax.jit(jax.value_and_grad(
            lambda a, c, tt, bb: tiled_sigmoid_block(a, c, tt, bb, tile=best, recompute=True)[0] / B,
            argnums=(0, 1, 2, 3)))
        run(f"tiled, tile {_tile_name(best)}, recompute", recompute)
        base, how = torch_baseline(B, width, args.repeats, timer=time_both, threads=threads)
        row = {"seconds": speed, "best_tile": _tile_name(best), "baseline": how}
        if base is None:
            print(f"    {how}")
        else:
            run("open_clip (torch)", None, base)
            fastest = speed[f"tiled, tile {_tile_name(best)}"]
            row["open_clip_over_tiled"] = {clock: base[clock] / fastest[clock] for clock in ("cpu", "wall")}
            print(f"    baseline: {how}")
            print(f"    open_clip time / tiled time (tile {_tile_name(best)}): cpu {row['open_clip_over_tiled']['cpu']:.2f}"
                  f", wall {row['open_clip_over_tiled']['wall']:.2f} (goal >= 1.2)")
        row["ratio_to_roof"] = {name: {clock: v[clock] / speed["roof"][clock] for clock in ("cpu", "wall")}
                                for name, v in speed.items()}
        row["loadavg"] = {"start": load0, "end": _loadavg()}
        results["speed"][str(B)] = row
        print(f"    fastest tile: {_tile_name(best)} (cpu ratio to roof "
              f"{row['ratio_to_roof'][f'tiled, tile {_tile_name(best)}']['cpu']:.2f}, goal <= 1.3); "
              f"load average at the end {' '.join(row['loadavg']['end'])}")


def gpu_part(args) -> dict:
    """Part 4 (``--gpu``): the tiled loss's Pallas kernels against its XLA scan on a GPU or TPU.

    value+grad at B = ``--gpu-batch`` (65536), d = ``--width``, for float32 and bfloat16 embeddings,
    each kernel at each of its tiles (``--gpu-tiles-pallas``, ``--gpu-tiles-xla``); a tile that fails
    to compile is reported and skipped. Both kernels sweep the tiles in float32 (bfloat16 embeddings
    are cast first, as the trainer does), so the bfloat16 rows time the same math from half the input
    bytes. Each row gives the best wall time of ``--repeats`` (the device is not shared), the speed-up
    over the fastest XLA row of the same dtype, the peak device memory where the backend reports it,
    and the value's and gradients' largest relative difference from the first XLA row.
    """
    backend = jax.default_backend()
    if backend not in ("gpu", "tpu"):
        print(f"4. --gpu needs a GPU or TPU backend; jax.default_backend() is {backend!r}: nothing timed")
        return {"backend": backend, "timed": False}
    device = jax.devices()[0]
    B, width = args.gpu_batch, args.width
    results = {"backend": backend, "device": str(device), "batch": B, "width": width, "rows": {}}
    print(f"4. tiled loss on {device} ({backend}), B = {B}, d = {width}: value+grad, best of {args.repeats} (wall)")
    x32, y32 = (jax.device_put(a, device) for a in _embeddings(B, width))
    for dtype in (jnp.float32, jnp.bfloat16):
        x, y = x32.astype(dtype), y32.astype(dtype)
        t, b = jnp.float32(10.0), jnp.float32(-10.0)
        reference, best_xla = None, np.inf
        for kernel, tiles in (("xla", args.gpu_tiles_xla), ("pallas", args.gpu_tiles_pallas)):
            for tile in tiles:
                name = f"{jnp.dtype(dtype).name} {kernel} tile {tile}"
                fn = jax.jit(jax.value_and_grad(
                    lambda a, c, tt, bb, tile=tile, kernel=kernel: tiled_sigmoid_block(
                        a, c, tt, bb, tile=tile, kernel=kernel)[0] / B, argnums=(0, 1, 2, 3)))
                try:
                    sec = time_it(lambda: jax.block_until_ready(fn(x, y, t, b)), args.repeats)
                    value, grads = fn(x, y, t, b)
                except Exception as err:  # a tile too large for a kernel block fails to compile: report, go on
                    print(f"    {name:>32}: failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
                    results["rows"][name] = {"error": f"{type(err).__name__}: {err}"[:2000]}
                    continue
                out = [np.asarray(v, np.float64) for v in (value, *grads)]
                if reference is None:
                    reference = out
                diff = max(float(np.max(np.abs(a - r)) / max(np.max(np.abs(r)), 1e-30)) for a, r in zip(out, reference))
                if kernel == "xla":
                    best_xla = min(best_xla, sec)
                stats = device.memory_stats() or {}
                row = {"seconds": sec, "speedup_vs_best_xla": best_xla / sec, "max_rel_diff_vs_first_xla": diff,
                       "peak_bytes": stats.get("peak_bytes_in_use")}
                results["rows"][name] = row
                peak = "" if row["peak_bytes"] is None else f", peak {row['peak_bytes'] / MiB:9.1f} MiB"
                print(f"    {name:>32}: {sec * 1e3:9.2f} ms  {3 * 2.0 * B * B * width / sec / 1e12:6.1f} TFLOP/s  "
                      f"x{best_xla / sec:5.2f} vs best XLA so far{peak}, rel diff {diff:.1e}", flush=True)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8192, help="global batch B (>= 8192 for the report)")
    p.add_argument("--width", type=int, default=256, help="embedding width d")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-measured", action="store_true", help="skip the subprocess peak-RSS measurements")
    p.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    p.add_argument("--tiled", action="store_true", help="part 3 only: the tiled loss on one device")
    p.add_argument("--tiled-batches", type=int, nargs="*", default=[16384, 65536],
                   help="batches for part 3's memory measurements")
    p.add_argument("--tiles", nargs="+", default=["256", "512", "1024", "2048"],
                   help="tiles to time: an edge (512) or rows x columns (512x1024)")
    p.add_argument("--speed-batches", type=int, nargs="+", default=[8192, 16384], help="batches for part 3's timings")
    p.add_argument("--dense-max", type=int, default=8192,
                   help="time the dense loss in part 3 only up to this batch (it holds several (B, B) matrices)")
    p.add_argument("--tiled-parts", nargs="+", choices=("memory", "speed"), default=["memory", "speed"],
                   help="which of part 3's halves to run (memory at B = 262144 alone takes about 35 min on one core)")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds each measured-memory subprocess may run (B = 262144, d = 256 needs ~2500 on one core)")
    p.add_argument("--gpu", action="store_true", help="part 4 only: Pallas vs XLA tiles on a GPU/TPU (B = 65536)")
    p.add_argument("--gpu-batch", type=int, default=65536)
    p.add_argument("--gpu-tiles-pallas", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--gpu-tiles-xla", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        label, D, B, width, *tile = args.child
        _measured_child(label, int(D), int(B), int(width), int(tile[0]) if tile else None)
        return 0
    if args.tiled or args.gpu:
        results = tiled_part(args) if args.tiled else gpu_part(args)
        if args.out:
            io.write_json(args.out, results)
            print(f"\nwrote {args.out}")
        return 1 if results.get("timed") is False else 0
    if jax.device_count() < N_DEVICES:
        print(f"need {N_DEVICES} devices (XLA_FLAGS was set before JAX was imported?); have {jax.device_count()}")
        return 1
    B, width = args.batch, args.width
    results = {"batch": B, "width": width, "devices": N_DEVICES, "memory": {}, "throughput": {}}
    print(f"SigLIP loss benchmark: B = {B}, d = {width}, float32, {N_DEVICES} emulated CPU devices\n")

    print("1a. compiled per-device memory of loss+grad, global batch fixed at B = "
          f"{B} (MiB: temp / total)")
    labels = MULTI_DEVICE
    print(f"{'D':>3} " + " ".join(f"{l:>24}" for l in labels))
    for D in (1, 2, 4, 8):
        row = {}
        for label in labels:
            temp, total = compiled_memory(label, D, B, width)
            row[label] = {"temp_mib": temp / MiB, "total_mib": total / MiB}
        results["memory"][f"fixed_B/D={D}"] = row
        print(f"{D:>3} " + " ".join(f"{row[l]['temp_mib']:>11.1f} / {row[l]['total_mib']:>10.1f}" for l in labels))

    n = B // N_DEVICES
    print(f"\n1b. per-device batch fixed at n = {n} (B = n * D): MiB temp / total")
    print(f"{'D':>3} {'B':>6} " + " ".join(f"{l:>24}" for l in labels))
    for D in (1, 2, 4, 8):
        row = {}
        for label in labels:
            temp, total = compiled_memory(label, D, n * D, width)
            row[label] = {"temp_mib": temp / MiB, "total_mib": total / MiB}
        results["memory"][f"fixed_n/D={D}"] = row
        print(f"{D:>3} {n * D:>6} " + " ".join(f"{row[l]['temp_mib']:>11.1f} / {row[l]['total_mib']:>10.1f}"
                                               for l in labels))
    growth = {l: results["memory"]["fixed_n/D=8"][l]["temp_mib"] / max(results["memory"]["fixed_n/D=1"][l]["temp_mib"],
                                                                       1e-9) for l in labels}
    results["memory"]["temp_growth_D1_to_D8_fixed_n"] = growth
    print("    temp-memory growth from D = 1 to D = 8 at fixed n: "
          + ", ".join(f"{l} x{g:.2f}" for l, g in growth.items()))

    if not args.no_measured:
        print(f"\n1c. measured: peak RSS increase of a fresh process running loss+grad once, B = {B}, D = 8 "
              "(all 8 emulated devices share the process, so this is the sum over devices)")
        for label in ("dense", "all_gather", "ring", "ring_dense_blocks", "ring_no_remat"):
            m = measured_peak(label, N_DEVICES, B, width)
            results["memory"][f"measured_peak_rss_increase_mib/{label}"] = m["peak_increase_mib"]
            print(f"    {label:>20}: {m['peak_increase_mib']:8.1f} MiB   (loss {m['loss']:.6f})")

    print(f"\n2. loss+grad throughput at B = {B}, d = {width} (best of {args.repeats}; ratio = torch time / ours)")
    x, y = _embeddings(B, width)
    t, b = jnp.float32(10.0), jnp.float32(-10.0)
    ours = {}
    one = Mesh(np.array(jax.devices()[:1]), ("data",))
    dense = _value_and_grad("dense", one)
    xs, ys = jax.device_put(x, jax.devices()[0]), jax.device_put(y, jax.devices()[0])
    ours["dense (1 device)"] = time_it(lambda: jax.block_until_ready(dense(xs, ys, t, b)), args.repeats)
    mesh = Mesh(np.array(jax.devices()), ("data",))
    sh = NamedSharding(mesh, P("data"))
    xd, yd = jax.device_put(x, sh), jax.device_put(y, sh)
    for label in ("all_gather", "ring", "ring_bidirectional"):
        f = _value_and_grad(label, mesh)
        ours[f"{label} ({N_DEVICES} devices)"] = time_it(lambda: jax.block_until_ready(f(xd, yd, t, b)), args.repeats)
    base, how = torch_baseline(B, width, args.repeats)
    results["throughput"]["baseline"] = how
    if base is not None:
        results["throughput"]["torch_seconds"] = base
        print(f"    baseline: {how}")
        print(f"    {'torch / open_clip':>28}: {base * 1e3:9.1f} ms  {B / base:10.0f} pairs/s")
    else:
        print(f"    {how}")
    for label, sec in ours.items():
        results["throughput"][label] = {"seconds": sec, "ratio_vs_torch": None if base is None else base / sec}
        ratio = "" if base is None else f"   ratio {base / sec:5.2f}x"
        print(f"    {label:>28}: {sec * 1e3:9.1f} ms  {B / sec:10.0f} pairs/s{ratio}")
    if args.out:
        io.write_json(args.out, results)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
