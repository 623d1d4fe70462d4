"""Tests of constellations.siglip.losses: parameterizations and the multi-device implementations.

Definitions checked: theory.md section 2 (the sigmoid loss with logits t s + b, "per_example"
reduction = SigLIP's -(1/B) sum_ij; the relative-bias form b = -t b_rel; the softmax baseline) and
the SigLIP paper's chunked loss (section 3.3): dense, all-gather and ring (one- and two-way) must give
the same value and the same gradients w.r.t. both embeddings, t' and b (or b_rel).

Emulated devices need XLA_FLAGS before JAX is imported, and conftest.py has imported JAX in this
process, so each device count runs in a subprocess (the worker below) that prints JSON.
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

from constellations import loss as core
from constellations import reference as ref
from constellations.siglip.losses import (
    IMPLEMENTATIONS,
    dense_sigmoid_loss,
    dense_softmax_loss,
    init_loss_params,
    make_contrastive_loss,
    make_sigmoid_loss,
    temperature_and_bias,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pairs(B, d, seed, scale=0.7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, d)) * scale, rng.normal(size=(B, d)) * scale


def test_dense_loss_and_gradients_match_numpy_reference():
    """theory.md s.2: dense per-example loss = L_sig(sum) / B, gradients = the analytic ones / B."""
    U, V = _pairs(12, 5, 0)
    t, b = 3.7, -1.3
    f = lambda U, V, tp, b: dense_sigmoid_loss(U, V, jnp.exp(tp), b)[0]
    val, (gU, gV, gtp, gb) = jax.value_and_grad(f, argnums=(0, 1, 2, 3))(
        jnp.asarray(U, jnp.float32), jnp.asarray(V, jnp.float32), jnp.float32(np.log(t)), jnp.float32(b))
    rU, rV, rt, rb = ref.sigmoid_loss_grad(U, V, t, b)
    np.testing.assert_allclose(float(val), ref.sigmoid_loss(U, V, t, b, "sum") / 12, rtol=2e-6)
    np.testing.assert_allclose(gU, rU / 12, atol=2e-6)
    np.testing.assert_allclose(gV, rV / 12, atol=2e-6)
    np.testing.assert_allclose(float(gtp), t * rt / 12, rtol=2e-5)   # d/dt' = t d/dt
    np.testing.assert_allclose(float(gb), rb / 12, rtol=2e-5)
    Un, Vn = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (U, V))   # and the package's own loss
    np.testing.assert_allclose(float(dense_sigmoid_loss(Un, Vn, t, b)[0]),
                               float(core.sigmoid_loss(Un, Vn, t, b, reduction="per_example")), rtol=2e-6)


def test_relative_bias_is_the_standard_loss_at_b_equal_minus_t_b_rel():
    """Definition 1: L_rb(t, b_rel) = L_sig(t, -t b_rel); dL/db_rel = -t dL/db (chain rule)."""
    U, V = (jnp.asarray(x, jnp.float32) for x in _pairs(10, 4, 1))
    std = make_contrastive_loss("standard")
    rel = make_contrastive_loss("relative_bias")
    p_rel = {"t_prime": jnp.float32(np.log(5.0)), "b_rel": jnp.float32(0.3)}
    p_std = {"t_prime": jnp.float32(np.log(5.0)), "b": jnp.float32(-1.5)}
    (v_rel, s_rel), g_rel = jax.value_and_grad(rel, argnums=2, has_aux=True)(U, V, p_rel)
    (v_std, _), g_std = jax.value_and_grad(std, argnums=2, has_aux=True)(U, V, p_std)
    np.testing.assert_allclose(float(v_rel), float(v_std), rtol=1e-6)
    np.testing.assert_allclose(float(g_rel["b_rel"]), -5.0 * float(g_std["b"]), rtol=1e-5)
    np.testing.assert_allclose(float(s_rel["b_rel"]), 0.3, rtol=1e-6)
    want = ref.sigmoid_loss(np.asarray(U, np.float64), np.asarray(V, np.float64), 5.0, -1.5, "per_example")
    np.testing.assert_allclose(float(v_std), want, rtol=2e-6)


def test_softmax_baseline_matches_numpy_reference():
    """theory.md s.2: CLIP loss = mean of row and column cross-entropies of t s (no bias)."""
    U, V = _pairs(9, 4, 2)
    val, _ = dense_softmax_loss(U, V, 4.0)
    np.testing.assert_allclose(float(val), ref.softmax_loss(U, V, 4.0, "per_example"), rtol=2e-6)
    f = make_contrastive_loss("softmax")
    v2, stats = f(jnp.asarray(U, jnp.float32), jnp.asarray(V, jnp.float32), init_loss_params("softmax", temperature_init=4.0))
    np.testing.assert_allclose(float(v2), float(val), rtol=1e-6)
    assert float(stats["b"]) == 0.0


def test_init_loss_params_follow_the_paper():
    """SigLIP init: t' = log 10 (t = 10), b = -10; relative bias starts at the same logits, b_rel = 1."""
    p = init_loss_params("standard")
    t, b = temperature_and_bias(p, "standard")
    assert p["t_prime"].dtype == jnp.float32 and abs(float(t) - 10.0) < 1e-5 and float(b) == -10.0
    q = init_loss_params("relative_bias")
    t2, b2 = temperature_and_bias(q, "relative_bias")
    assert float(q["b_rel"]) == 1.0 and abs(float(b2) + 10.0) < 1e-4
    assert set(init_loss_params("softmax")) == {"t_prime"}


def test_stats_report_positive_and_negative_logits():
    """The logged statistics are the mean/min/max of the diagonal and off-diagonal logits."""
    U, V = _pairs(6, 3, 3)
    _, stats = dense_sigmoid_loss(U, V, 2.0, -1.0)
    L = 2.0 * (U @ V.T) - 1.0
    off = L[~np.eye(6, dtype=bool)]
    np.testing.assert_allclose([stats["pos_mean"], stats["pos_min"], stats["pos_max"]],
                               [np.diag(L).mean(), np.diag(L).min(), np.diag(L).max()], rtol=1e-5)
    np.testing.assert_allclose([stats["neg_mean"], stats["neg_min"], stats["neg_max"]],
                               [off.mean(), off.min(), off.max()], rtol=1e-5, atol=1e-6)


def test_bad_choices_are_rejected():
    with pytest.raises(ValueError, match="parameterization"):
        make_contrastive_loss("sigmoidish")
    with pytest.raises(ValueError, match="implementation"):
        make_sigmoid_loss("tree")
    with pytest.raises(ValueError, match="softmax"):
        make_contrastive_loss("softmax", "ring")
    with pytest.raises(ValueError, match="mesh"):
        make_sigmoid_loss("ring", None)
    with pytest.raises(ValueError, match="temperature_init"):
        init_loss_params("standard", temperature_init=0.0)


WORKER = textwrap.dedent(r"""
    import json, os, sys
    D = int(sys.argv[1])
    assert os.environ["XLA_FLAGS"].endswith(str(D))
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from constellations.siglip.losses import make_contrastive_loss, IMPLEMENTATIONS, STAT_NAMES
    assert jax.device_count() == D, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    B, d = 32, 8
    rng = np.random.default_rng(D)
    U = (rng.normal(size=(B, d)) * 0.7).astype(np.float32)      # un-normalized on purpose
    V = (rng.normal(size=(B, d)) * 0.7).astype(np.float32)
    shard = NamedSharding(mesh, P("data"))
    out = {}
    for par, extra in (("standard", {"b": -1.3}), ("relative_bias", {"b_rel": 0.25})):
        params = {"t_prime": np.float32(np.log(3.7)), **{k: np.float32(v) for k, v in extra.items()}}
        dense = make_contrastive_loss(par, "dense")
        (ref_v, ref_stats), ref_g = jax.jit(jax.value_and_grad(dense, argnums=(0, 1, 2), has_aux=True))(U, V, params)
        for impl in IMPLEMENTATIONS:
            f = make_contrastive_loss(par, impl, mesh)
            vg = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))
            (v, stats), g = vg(jax.device_put(U, shard), jax.device_put(V, shard), params)
            errs = {"value": abs(float(v) - float(ref_v)) / max(1.0, abs(float(ref_v)))}
            for name, a, r in zip(["zimg", "ztxt"], g[:2], ref_g[:2]):
                errs[name] = float(jnp.max(jnp.abs(a - r))) / max(1.0, float(jnp.max(jnp.abs(r))))
            for k in params:
                errs[k] = abs(float(g[2][k]) - float(ref_g[2][k])) / max(1.0, abs(float(ref_g[2][k])))
            errs["stats"] = max(abs(float(stats[k]) - float(ref_stats[k])) for k in STAT_NAMES)
            out[f"{par}/{impl}"] = errs
    # Joint permutation of the pairs across shards: the loss must not change (positives stay paired).
    perm = rng.permutation(B)
    ring = make_contrastive_loss("standard", "ring", mesh)
    p = {"t_prime": np.float32(1.0), "b": np.float32(-2.0)}
    a = float(jax.jit(ring)(jax.device_put(U, shard), jax.device_put(V, shard), p)[0])
    b = float(jax.jit(ring)(jax.device_put(U[perm], shard), jax.device_put(V[perm], shard), p)[0])
    out["permutation"] = abs(a - b) / abs(a)
    # Un-pairing the positives (rolling the texts by one) must change it: the check can fail.
    c = float(jax.jit(ring)(jax.device_put(U, shard), jax.device_put(np.roll(V, 1, 0), shard), p)[0])
    out["unpaired"] = abs(a - c) / abs(a)
    print("RESULT" + json.dumps(out))
""")


def _run_worker(D: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={D}", JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, "-c", WORKER, str(D)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


@pytest.mark.parametrize("devices", [1, 2, 4, 8])
def test_multi_device_losses_equal_dense(devices):
    """SigLIP s.3.3 chunked loss: all-gather, ring and bidirectional ring equal the dense loss on D emulated
    devices, in value and in the gradients w.r.t. zimg, ztxt, t' and b (or b_rel): float32, error <= 1e-6
    relative to max(1, |reference|), for both parameterizations; and invariant under a joint permutation."""
    res = _run_worker(devices)
    for key in (f"{p}/{i}" for p in ("standard", "relative_bias") for i in IMPLEMENTATIONS):
        errs = res[key]
        for name, err in errs.items():
            tol = 1e-5 if name == "stats" else 1e-6
            assert err <= tol, f"{devices} devices, {key}: {name} differs by {err:.3g}"
    assert res["permutation"] <= 1e-6
    assert res["unpaired"] > 1e-3
