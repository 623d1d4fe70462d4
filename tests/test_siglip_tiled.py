"""Tests of constellations.siglip.tiled: the sigmoid loss swept tile by tile, and the ring built on it.

Checked: theory.md section 2's sigmoid loss L = sum_ij softplus(-z_ij (t s_ij + b)) and its gradients
dL/dU = t G V, dL/dV = t G^T U, dL/dt = sum G S, dL/db = sum G (G = -z sigmoid(-z logit)) equal the
NumPy float64 reference (constellations.reference) to 1e-12 relative for any tile sizes (dividing the
batch or not, larger than it, 1), in both the standard (t, b) and the relative-bias (t, b_rel = -b/t)
parameterizations, with t = exp(t') as the trainer stores it; float32 equals the dense loss to rounding;
logits in the thousands stay finite; memory and program size do not grow like B^2; and the ring with
tiled blocks on 2 and 4 emulated devices equals the dense loss.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constellations import reference as ref
from constellations.siglip.config import default_config, merge
from constellations.siglip.losses import dense_sigmoid_loss, make_contrastive_loss, make_sigmoid_loss
from constellations.siglip import tiled, tiled_pallas
from constellations.siglip.tiled import check_tile, resolve_kernel, tiled_sigmoid_block, tiled_sigmoid_loss
from constellations.siglip.train import validate_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pairs(B, d, seed, scale=0.7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, d)) * scale, rng.normal(size=(B, d)) * scale


def _rel(a, r):
    """Largest error relative to the largest reference entry (max(|r|), or 1e-300 for r = 0)."""
    a, r = np.asarray(a, np.float64), np.asarray(r, np.float64)
    return float(np.max(np.abs(a - r)) / max(np.max(np.abs(r)), 1e-300))


def _value_and_grads(f, *args):
    return jax.jit(jax.value_and_grad(f, argnums=tuple(range(len(args)))))(*args)


# ----------------------------------------------------------------------------------------------
# Exactness against the float64 reference.


def _check_standard(B, d, tile, recompute, seed, t=3.7, b=-1.3):
    U, V = _pairs(B, d, seed)
    f = lambda U, V, tp, b: tiled_sigmoid_loss(U, V, jnp.exp(tp), b, tile=tile, recompute=recompute)[0]
    val, (gU, gV, gtp, gb) = _value_and_grads(f, U, V, np.log(t), b)
    assert val.dtype == jnp.float64
    rU, rV, rt, rb = (np.asarray(g) / B for g in ref.sigmoid_loss_grad(U, V, t, b))
    assert _rel(val, ref.sigmoid_loss(U, V, t, b, "per_example")) <= 1e-12
    assert _rel(gU, rU) <= 1e-12 and _rel(gV, rV) <= 1e-12
    assert _rel(gtp, t * rt) <= 1e-12                     # d/dt' = t d/dt
    assert _rel(gb, rb) <= 1e-12


@pytest.mark.parametrize("B, d, tile", [
    (12, 5, 4),            # tiles divide the batch
    (13, 3, 5),            # they do not: the last row and column blocks are padded
    (7, 4, 100),           # tile larger than the batch
    (6, 3, 1),             # one pair per tile
    (11, 4, (3, 7)),       # rectangular tiles, neither dividing B
    (1, 3, 2),             # a batch of one pair: no negatives
])
@pytest.mark.parametrize("recompute", [False, True])
def test_tiled_loss_and_gradients_equal_reference_float64(B, d, tile, recompute):
    """theory.md s.2, standard parameterization: value and all four gradients to 1e-12 relative."""
    _check_standard(B, d, tile, recompute, seed=B)


@settings(max_examples=6)
@given(B=st.integers(2, 24), d=st.integers(1, 6), rows=st.integers(1, 30), cols=st.integers(1, 30),
       seed=st.integers(0, 2**16))
def test_tiled_loss_equals_reference_for_random_tiles(B, d, rows, cols, seed):
    """theory.md s.2 for random batch, width and (rows, cols) tile sizes: values and gradients to 1e-12."""
    _check_standard(B, d, (rows, cols), recompute=False, seed=seed)


@pytest.mark.parametrize("tile", [4, (5, 2)])
def test_relative_bias_gradients_equal_reference_float64(tile):
    """Definition 1: L_rb(t, b_rel) = L_sig(t, -t b_rel); gradients w.r.t. U, V, t' and b_rel to 1e-12."""
    B, t, b_rel = 11, 4.5, 0.3
    U, V = _pairs(B, 4, 7)
    f = lambda U, V, tp, br: tiled_sigmoid_loss(U, V, jnp.exp(tp), -jnp.exp(tp) * br, tile=tile)[0]
    val, (gU, gV, gtp, gbr) = _value_and_grads(f, U, V, np.log(t), b_rel)
    rU, rV, rt, rbr = (np.asarray(g) / B for g in ref.relative_bias_loss_grad(U, V, t, b_rel))
    assert _rel(val, ref.relative_bias_loss(U, V, t, b_rel, "per_example")) <= 1e-12
    assert _rel(gU, rU) <= 1e-12 and _rel(gV, rV) <= 1e-12
    assert _rel(gtp, t * rt) <= 1e-12 and _rel(gbr, rbr) <= 1e-12


def test_second_derivative_in_t_equals_autodiff_of_the_dense_loss():
    """The custom VJP's residuals are differentiable: d^2 L / dt^2 matches plain autodiff (float64)."""
    U, V = _pairs(6, 3, 4)
    z = 2 * np.eye(6) - 1
    tiled = lambda t: tiled_sigmoid_block(U, V, t, -1.0, tile=(4, 5))[0]
    dense = lambda t: jnp.sum(jax.nn.softplus(-z * (t * (U @ V.T) - 1.0)))
    assert _rel(jax.jit(jax.grad(jax.grad(tiled)))(2.0), jax.grad(jax.grad(dense))(2.0)) <= 1e-12


def test_all_negative_block_equals_reference_float64():
    """A ring block pairs two different shards: every pair is a negative, sum softplus(t s + b)."""
    (U, _), (V, _) = _pairs(9, 3, 1), _pairs(6, 3, 2)
    t, b = 2.5, -0.5
    f = lambda U, V, t, b: tiled_sigmoid_block(U, V, t, b, tile=(4, 4), positives=False)[0]
    val, (gU, gV, gt, gb) = _value_and_grads(f, U, V, t, b)
    S = U @ V.T
    G = 1 / (1 + np.exp(-(t * S + b)))
    assert _rel(val, np.sum(np.logaddexp(0.0, t * S + b))) <= 1e-12
    assert _rel(gU, t * G @ V) <= 1e-12 and _rel(gV, t * G.T @ U) <= 1e-12
    assert _rel(gt, np.sum(G * S)) <= 1e-12 and _rel(gb, np.sum(G)) <= 1e-12


def test_float32_equals_dense_loss_to_rounding_and_stats_match():
    """float32 (the trainer's dtype): value, gradients and logged statistics equal the dense loss."""
    U, V = (jnp.asarray(x, jnp.float32) for x in _pairs(50, 8, 3))
    t, b = jnp.float32(6.0), jnp.float32(-2.0)
    dense = lambda *a: dense_sigmoid_loss(*a)[0]
    tiled = lambda *a: tiled_sigmoid_loss(*a, tile=(16, 7))[0]
    (v_d, g_d), (v_t, g_t) = _value_and_grads(dense, U, V, t, b), _value_and_grads(tiled, U, V, t, b)
    assert v_t.dtype == jnp.float32
    assert _rel(v_t, v_d) <= 2e-6
    for a, r in zip(g_t, g_d):
        assert _rel(a, r) <= 2e-6
    _, s_d = jax.jit(dense_sigmoid_loss)(U, V, t, b)
    _, s_t = jax.jit(lambda *a: tiled_sigmoid_loss(*a, tile=(16, 7)))(U, V, t, b)
    for k in s_d:
        assert abs(float(s_t[k]) - float(s_d[k])) <= 1e-5 * max(1.0, abs(float(s_d[k]))), k


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_logits_in_the_thousands_stay_finite_and_exact(dtype):
    """t = 3000, b = -1000: softplus and its sigmoid never overflow; value and gradients equal the reference."""
    B, t, b = 10, 3000.0, -1000.0
    U, V = _pairs(B, 4, 5)
    U, V = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (U, V))
    f = lambda U, V, t, b: tiled_sigmoid_block(U, V, t, b, tile=3)[0]
    val, grads = _value_and_grads(f, *(jnp.asarray(x, dtype) for x in (U, V, t, b)))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in (val, *grads))
    tol = 1e-12 if dtype == jnp.float64 else 1e-3       # float32: logits of 1e3 carry errors of ~1e-4
    assert _rel(val, ref.sigmoid_loss(U, V, t, b)) <= tol
    for a, r in zip(grads, ref.sigmoid_loss_grad(U, V, t, b)):
        assert _rel(a, r) <= tol


@pytest.mark.parametrize("B, tile, positives", [(7, 3, True), (5, (2, 8), True), (6, 4, False)])
def test_pallas_kernels_in_interpret_mode_equal_reference_float64(B, tile, positives):
    """The Pallas row and column kernels (run by Pallas's interpreter on CPU; tiny sizes, it is slow):
    value and gradients w.r.t. U, V, t, b to 1e-12 relative, tiles dividing B or not, larger than B,
    with and without positives on the diagonal."""
    U, V = _pairs(B, 3, B)
    t, b = 3.7, -1.3
    f = lambda U, V, t, b: tiled_sigmoid_block(U, V, t, b, tile=tile, positives=positives,
                                               kernel="pallas_interpret")[0]
    val, (gU, gV, gt, gb) = _value_and_grads(f, U, V, t, b)
    S = U @ V.T
    z = (2 * np.eye(B) - 1) if positives else -np.ones((B, B))
    G = -z / (1 + np.exp(z * (t * S + b)))
    assert _rel(val, np.sum(np.logaddexp(0.0, -z * (t * S + b)))) <= 1e-12
    assert _rel(gU, t * G @ V) <= 1e-12 and _rel(gV, t * G.T @ U) <= 1e-12
    assert _rel(gt, np.sum(G * S)) <= 1e-12 and _rel(gb, np.sum(G)) <= 1e-12
    stats = jax.jit(lambda *a: tiled_sigmoid_block(*a, tile=tile, positives=positives, kernel="pallas_interpret"))(
        U, V, t, b)
    logits = (t * S + b)[z < 0]
    np.testing.assert_allclose([float(v) for v in stats[1:]], [logits.sum(), logits.max(), logits.min()], rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Memory and program size.


def _compiled(fn, B, d):
    x = jax.ShapeDtypeStruct((B, d), jnp.float32)
    s = jax.ShapeDtypeStruct((), jnp.float32)
    return jax.jit(fn).lower(x, x, s, s).compile()


def test_memory_is_linear_in_the_batch_and_the_program_does_not_unroll():
    """Compiled temporaries of value+grad at tile 128: B 1024 -> 4096 grows ~4x (dense: ~16x);
    the optimized program has the same number of GEMMs (3: logits, dL/dx, dL/dy) at every B."""
    def vg(tile):
        return jax.value_and_grad(lambda a, c, t, b: tiled_sigmoid_loss(a, c, t, b, tile=tile)[0], argnums=(0, 1, 2, 3))
    small, large = (_compiled(vg(128), B, 32) for B in (1024, 4096))
    temp_small, temp_large = (c.memory_analysis().temp_size_in_bytes for c in (small, large))
    assert temp_large <= 5 * temp_small, (temp_small, temp_large)
    assert temp_large < 4096 * 4096 * 4 / 8                    # far below one (B, B) float32 matrix
    dots = [c.as_text().count(" dot(") for c in (small, large)]
    assert dots[0] == dots[1] == 3, dots


def test_batches_past_46341_trace_without_integer_overflow():
    """neg_mean divides by B (B - 1), which passes 2^31 at B = 46341: it must be a float, not an int32."""
    x = jax.ShapeDtypeStruct((65536, 2), jnp.float32)
    s = jax.ShapeDtypeStruct((), jnp.float32)
    for f in (dense_sigmoid_loss, lambda *a: tiled_sigmoid_loss(*a, tile=4096)):
        jax.jit(f).lower(x, x, s, s)        # tracing only; raised OverflowError before


# ----------------------------------------------------------------------------------------------
# Bad input and the trainer's config.


@pytest.mark.parametrize("tile", [0, -3, 2.5, "8", True, None, (4,), (4, 0), (4, 2, 1)])
def test_bad_tile_is_a_clear_error(tile):
    with pytest.raises(ValueError, match="tile"):
        check_tile(tile)
    with pytest.raises(ValueError, match="tile"):
        make_sigmoid_loss("tiled", tile=tile)


def test_bad_kernel_or_shapes_are_clear_errors():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="kernel"):
        tiled_sigmoid_block(x, x, 1.0, 0.0, kernel="cuda")
    with pytest.raises(ValueError, match="shapes"):
        tiled_sigmoid_block(x, np.zeros((4, 2)), 1.0, 0.0)


@pytest.mark.parametrize("backend, chosen", [("cpu", "xla"), ("gpu", "pallas"), ("tpu", "pallas")])
def test_auto_kernel_is_pallas_on_gpu_and_tpu_and_xla_on_cpu(monkeypatch, backend, chosen):
    """kernel="auto" (the default) follows jax.default_backend() (monkeypatched: no accelerator here); an
    explicit kernel wins; the default call really reaches the chosen sweep (both sweeps replaced by spies)."""
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert resolve_kernel() == resolve_kernel("auto") == chosen
    for explicit in ("xla", "pallas", "pallas_interpret"):
        assert resolve_kernel(explicit) == explicit
    calls = []

    def spy(name):
        def sweep(x, y, t, b, tile_rows, tile_cols, *args):
            calls.append((name, tile_rows, tile_cols))
            zero = jnp.zeros((), x.dtype)
            return zero, zero, zero, zero
        return sweep

    monkeypatch.setattr(tiled_pallas, "pallas_block", spy("pallas"))
    monkeypatch.setattr(tiled, "_tiled_block", spy("xla"))
    x = np.ones((3, 2))
    tiled_sigmoid_block(x, x, 1.0, 0.0, tile=2)
    tiled_sigmoid_block(x, x, 1.0, 0.0, tile=2, kernel="xla")              # explicit wins
    make_sigmoid_loss("tiled", tile=2)(x, x, 1.0, 0.0)                     # the trainer's path: auto as well
    assert [c[0] for c in calls] == [chosen, "xla", chosen]
    # The CPU-tuned default tile is capped for a GPU's Pallas blocks under "auto" only (values never change).
    calls.clear()
    big = np.ones((600, 2))
    tiled_sigmoid_block(big, big, 1.0, 0.0, tile=(512, 300))
    tiled_sigmoid_block(big, big, 1.0, 0.0, tile=(512, 300), kernel="pallas")
    capped = (tiled.PALLAS_GPU_MAX_TILE,) * 2 if backend == "gpu" else (512, 300)
    assert calls == [(chosen, *capped), ("pallas", 512, 300)]


def test_trainer_config_has_a_tile_field_and_checks_it():
    assert default_config().loss.tile >= 1
    validate_config(merge(default_config(), {"loss": {"implementation": "tiled", "tile": [64, 32]}}))
    validate_config(merge(default_config(), {"loss": {"implementation": "ring", "tile": None}}))
    with pytest.raises(ValueError, match="loss.tile"):
        validate_config(merge(default_config(), {"loss": {"implementation": "tiled", "tile": 0}}))
    with pytest.raises(ValueError, match="loss.tile"):
        validate_config(merge(default_config(), {"loss": {"implementation": "tiled", "tile": None}}))
    assert default_config().loss.kernel == "auto"
    validate_config(merge(default_config(), {"loss": {"implementation": "tiled", "kernel": "xla"}}))
    with pytest.raises(ValueError, match="loss.kernel"):
        validate_config(merge(default_config(), {"loss": {"implementation": "tiled", "kernel": "cuda"}}))
    with pytest.raises(ValueError, match="kernel"):
        make_sigmoid_loss("tiled", kernel="triton")


def test_tiled_implementation_equals_dense_in_both_parameterizations():
    """make_contrastive_loss(..., "tiled"): same loss, gradients w.r.t. zimg, ztxt, t', b or b_rel (float32)."""
    U, V = (np.asarray(x, np.float32) for x in _pairs(20, 6, 9))
    for par, extra in (("standard", {"b": -1.3}), ("relative_bias", {"b_rel": 0.25})):
        params = {"t_prime": np.float32(np.log(3.7)), **{k: np.float32(v) for k, v in extra.items()}}
        (v_d, _), g_d = jax.jit(jax.value_and_grad(make_contrastive_loss(par, "dense"), argnums=(0, 1, 2),
                                                   has_aux=True))(U, V, params)
        f = make_contrastive_loss(par, "tiled", tile=6)
        (v_t, stats), g_t = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))(U, V, params)
        assert _rel(v_t, v_d) <= 2e-6 and set(stats) >= {"t", "b", "b_rel", "neg_max"}
        assert _rel(g_t[0], g_d[0]) <= 2e-6 and _rel(g_t[1], g_d[1]) <= 2e-6
        for k in params:
            assert _rel(g_t[2][k], g_d[2][k]) <= 2e-5, (par, k)


# ----------------------------------------------------------------------------------------------
# The ring with tiled blocks, on emulated devices (a subprocess: XLA_FLAGS must precede JAX).


WORKER = textwrap.dedent(r"""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from constellations.siglip.losses import make_contrastive_loss, STAT_NAMES
    D = int(sys.argv[1])
    assert jax.device_count() == D, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    B, d = 12 * D, 6
    rng = np.random.default_rng(D)
    U = (rng.normal(size=(B, d)) * 0.7).astype(np.float32)
    V = (rng.normal(size=(B, d)) * 0.7).astype(np.float32)
    shard = NamedSharding(mesh, P("data"))
    out = {}
    # n = 12 rows per device: tiles 5 and (7, 4) do not divide it, 100 exceeds it, None is the dense-block ring.
    cases = {"standard": (("ring", 5), ("ring", [7, 4]), ("ring", 100), ("ring_bidirectional", 5), ("ring", None),
                          ("tiled", 5)),
             "relative_bias": (("ring", 5),)}
    if D == 3:     # odd D: the two-way ring has no one-way remainder hop
        cases = {"standard": (("ring_bidirectional", 5),), "relative_bias": ()}
    if D == 4:     # the cases whose hops differ from D = 2 (a two-way round plus a one-way hop)
        cases = {"standard": (("ring", [7, 4]), ("ring_bidirectional", 5)), "relative_bias": (("ring", 5),)}
    for par, extra in (("standard", {"b": -1.3}), ("relative_bias", {"b_rel": 0.25})):
        params = {"t_prime": np.float32(np.log(3.7)), **{k: np.float32(v) for k, v in extra.items()}}
        dense = make_contrastive_loss(par, "dense")
        (ref_v, ref_stats), ref_g = jax.jit(jax.value_and_grad(dense, argnums=(0, 1, 2), has_aux=True))(U, V, params)
        for impl, tile in cases[par]:
            f = make_contrastive_loss(par, impl, mesh, tile=tile)
            (v, stats), g = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))(
                jax.device_put(U, shard), jax.device_put(V, shard), params)
            errs = {"value": abs(float(v) - float(ref_v)) / max(1.0, abs(float(ref_v)))}
            for name, a, r in zip(["zimg", "ztxt"], g[:2], ref_g[:2]):
                errs[name] = float(jnp.max(jnp.abs(a - r))) / max(1.0, float(jnp.max(jnp.abs(r))))
            for k in params:
                errs[k] = abs(float(g[2][k]) - float(ref_g[2][k])) / max(1.0, abs(float(ref_g[2][k])))
            errs["stats"] = max(abs(float(stats[k]) - float(ref_stats[k])) for k in STAT_NAMES)
            out[f"{par}/{impl}/{tile}"] = errs
    print("RESULT" + json.dumps(out))
""")


def test_ring_with_tiled_blocks_equals_dense():
    """SigLIP s.3.3 ring with each (n, n) block tiled and each text block's gradient riding the ring home (tiles not dividing n, larger than n; one- and two-way)
    equals the dense loss on 2, 3 and 4 emulated devices: value, gradients w.r.t. zimg, ztxt, t', b or b_rel,
    to 1e-6 relative to max(1, |reference|) in float32; logged statistics to 1e-5."""
    procs = {}
    for devices in (2, 3, 4):       # one process per device count, run side by side
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
                   PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("JAX_ENABLE_X64", None)
        procs[devices] = subprocess.Popen([sys.executable, "-c", WORKER, str(devices)], env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for devices, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-3000:]
        res = json.loads([l for l in stdout.splitlines() if l.startswith("RESULT")][-1][len("RESULT"):])
        assert len(res) == {2: 7, 3: 1, 4: 3}[devices]
        for key, errs in res.items():
            for name, err in errs.items():
                assert err <= (1e-5 if name == "stats" else 1e-6), f"{devices} devices, {key}: {name} differs by {err:.3g}"
