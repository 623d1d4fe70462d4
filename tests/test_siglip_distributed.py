"""Two processes on loopback, 2 emulated CPU devices each, gloo collectives: the global loss is the dense one.

Each process holds half of the global batch (rows in process order), builds the global arrays with
``jax.make_array_from_process_local_data`` and evaluates every loss implementation on the 4-device
mesh; the values and the t', b gradients must equal the single-process dense loss (SigLIP s.3.3).
The coordinator binds to 127.0.0.1 only; gloo connects through the hostname's address, so the test
runs only where that is a loopback address. Children are killed on any failure or timeout.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from constellations import reference as ref
from constellations.siglip.losses import IMPLEMENTATIONS, dense_sigmoid_loss

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B, D_EMB, T, BIAS = 16, 8, 3.7, -1.3
# The children compile without LLVM's optimizations (half the time on CPU); that changes only float rounding.
CHILD_XLA_FLAGS = ("--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0 "
                   "--xla_llvm_disable_expensive_passes=true")

WORKER = textwrap.dedent(r"""
    import json, sys
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    from constellations.siglip.distributed import data_mesh, global_batch, initialize, to_host
    initialize(f"127.0.0.1:{port}", 2, pid, coordinator_bind_address=f"127.0.0.1:{port}", initialization_timeout=60)
    import jax, jax.numpy as jnp, numpy as np
    from constellations.siglip.losses import make_sigmoid_loss, IMPLEMENTATIONS
    assert jax.process_count() == 2 and jax.device_count() == 4 and jax.local_device_count() == 2
    B, d = int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(0)
    U = (rng.normal(size=(B, d)) * 0.7).astype(np.float32)
    V = (rng.normal(size=(B, d)) * 0.7).astype(np.float32)
    half = slice(pid * B // 2, (pid + 1) * B // 2)
    mesh = data_mesh()
    zimg, ztxt = global_batch(mesh, (U[half], V[half]))
    out = {}
    for impl in IMPLEMENTATIONS:
        f = make_sigmoid_loss(impl, mesh)
        g = jax.jit(jax.value_and_grad(lambda a, b, tp, bias: f(a, b, jnp.exp(tp), bias)[0], argnums=(0, 2, 3)))
        v, (gU, gtp, gb) = g(zimg, ztxt, jnp.float32(np.log(float(sys.argv[5]))), jnp.float32(float(sys.argv[6])))
        local = np.concatenate([np.asarray(s.data) for s in sorted(gU.addressable_shards, key=lambda s: s.index[0].start)])
        out[impl] = {"loss": float(to_host(v)), "t_prime": float(to_host(gtp)), "b": float(to_host(gb)),
                     "zimg_rows": local.tolist()}
    print("RESULT" + json.dumps(out), flush=True)
""")


def _loopback_host() -> bool:
    try:
        return socket.gethostbyname(socket.gethostname()).startswith("127.")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two_processes(args, timeout=150):
    env = dict(os.environ, XLA_FLAGS=CHILD_XLA_FLAGS, JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(pid), *map(str, args)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for pid in range(2)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err[-3000:]
            results.append(json.loads([l for l in out.splitlines() if l.startswith("RESULT")][-1][6:]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


@pytest.mark.skipif(not _loopback_host(), reason="gloo would connect through a non-loopback address here")
def test_two_processes_on_loopback_match_the_dense_loss():
    """SigLIP s.3.3 across processes: dense, all-gather and both rings over 2 processes x 2 devices give the
    single-process dense loss, its t' and b gradients and each process's rows of the zimg gradient
    (float32, 1e-6 relative to max(1, |reference|)); the float64 NumPy reference agrees to 1e-5."""
    results = _run_two_processes([B, D_EMB, T, BIAS])
    rng = np.random.default_rng(0)
    U = (rng.normal(size=(B, D_EMB)) * 0.7).astype(np.float32)
    V = (rng.normal(size=(B, D_EMB)) * 0.7).astype(np.float32)
    import jax

    f = lambda a, b, tp, bias: dense_sigmoid_loss(a, b, jnp.exp(tp), bias)[0]
    val, (gU, gtp, gb) = jax.value_and_grad(f, argnums=(0, 2, 3))(
        jnp.asarray(U), jnp.asarray(V), jnp.float32(np.log(T)), jnp.float32(BIAS))
    want64 = ref.sigmoid_loss(U.astype(np.float64), V.astype(np.float64), T, BIAS, "per_example")
    np.testing.assert_allclose(float(val), want64, rtol=1e-5)
    rel = lambda a, b: abs(a - b) / max(1.0, abs(b))
    for pid, res in enumerate(results):
        for impl in IMPLEMENTATIONS:
            r = res[impl]
            assert rel(r["loss"], float(val)) <= 1e-6, (pid, impl, r["loss"], float(val))
            assert rel(r["t_prime"], float(gtp)) <= 1e-6, (pid, impl)
            assert rel(r["b"], float(gb)) <= 1e-6, (pid, impl)
            rows = np.asarray(gU)[pid * B // 2:(pid + 1) * B // 2]
            err = np.max(np.abs(np.asarray(r["zimg_rows"]) - rows)) / max(1.0, np.max(np.abs(rows)))
            assert err <= 1e-6, (pid, impl, err)


TRAIN_CONFIG = """
from constellations.siglip.config import Config
def get_config(arg=None):
    return Config(total_steps=2, batch_size=8, log_steps=1, checkpoint_steps=2, progress=False,
                  data=dict(image_size=16, max_len=8), model=dict(image_variant="mu/4"),
                  loss=dict(implementation="ring"), eval=dict(every_steps=0),
                  # eps = 1 keeps Adam from blowing float32 rounding noise in exactly-zero gradients (the MAP
                  # head's key bias) up to full-size updates: the comparison is then of the gradients.
                  optim=dict(lr=0.1, eps=1.0, warmup_steps=0))
"""


@pytest.mark.skipif(not _loopback_host(), reason="gloo would connect through a non-loopback address here")
def test_two_process_training_matches_one_process(tmp_path):
    """Scale-out end to end: the CLI on 2 processes x 2 devices (ring loss over the 4-device mesh, each
    process feeding its half of every batch) trains, in 2 steps, the parameters, Adam state and losses
    that this single process trains on its own (to float32 rounding of the cross-process sums)."""
    from constellations.siglip import checkpoint as ckpt
    from constellations.siglip.config import load_config
    from constellations.siglip.train import train

    cfg = tmp_path / "cfg.py"
    cfg.write_text(TRAIN_CONFIG)
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=CHILD_XLA_FLAGS,
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "constellations.siglip", "train", "--config", str(cfg)]
    port = _free_port()
    procs = [subprocess.Popen(cmd + ["--workdir", str(tmp_path / "two"), "--coordinator", f"127.0.0.1:{port}",
                                     "--num-processes", "2", "--process-id", str(i)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        train(load_config(str(cfg)), tmp_path / "one")   # while the children start up
        for p in procs:
            _, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    _, one = ckpt.read_checkpoint(tmp_path / "one")
    _, two = ckpt.read_checkpoint(tmp_path / "two")
    assert one.keys() == two.keys()
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-5, atol=1e-6, err_msg=k)
    losses = lambda wd: [json.loads(l)["loss"] for l in (wd / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-6)
    assert len(losses(tmp_path / "one")) == 2 and losses(tmp_path / "one")[0] != losses(tmp_path / "one")[1]
