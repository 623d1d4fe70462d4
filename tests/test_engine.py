"""Tests of the synthetic training engine (constellations.synthetic, theory.md section 5).

The engine's loss terms against the package's loss (values and gradients), its training step against
a hand-written NumPy Adam step built on constellations.reference, frozen parameters, re-projection,
the final margins against constellations.geometry, argument validation and divergence handling.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from constellations import geometry, loss, reference as ref
from constellations.synthetic import DivergenceError, engine, train_grid, train_synthetic

B1, B2, EPS = 0.9, 0.999, 1e-8


# ----------------------------------------------------------------------------------------------
# Loss terms.


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_exact_terms_are_softplus_of_minus_z_logit(dtype):
    """theory.md s.2: the engine's "exact" terms are softplus(-z logit) on every block of a stack, values and
    gradients equal to autodiff of jax.nn.softplus (an independent implementation; float32 to rounding,
    float64 to 1e-13)."""
    logits = jnp.asarray(np.random.default_rng(0).normal(scale=40, size=(3, 12, 12)), dtype)
    z = 2 * jnp.eye(12, dtype=dtype) - 1

    def independent(l):
        return jax.nn.softplus(-z * l)

    tol = 1e-6 if dtype == jnp.float32 else 1e-13
    np.testing.assert_allclose(engine.sigmoid_terms(logits, "exact"), independent(logits), rtol=tol, atol=tol)
    g_ours = jax.grad(lambda l: jnp.sum(jnp.sin(engine.sigmoid_terms(l, "exact"))))(logits)
    g_theirs = jax.grad(lambda l: jnp.sum(jnp.sin(independent(l))))(logits)
    np.testing.assert_allclose(g_ours, g_theirs, rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="loss must be one of"):
        engine.sigmoid_terms(logits, "package")


def test_epsilon_terms_follow_the_authors_float32_formula():
    """theory.md s.5: the opt-in epsilon form is -log(sigmoid(x) + 1e-8) (positives) and
    -log(1 - sigmoid(x) + 1e-8) (negatives) evaluated left to right in float32: a negative pair beyond
    x ~ 16.6 costs -log(1e-8) = 18.42 and gets no gradient (compiled, where XLA could reassociate)."""
    x = np.array([[-200.0, 3.0, 17.0], [25.0, 16.0, -5.0], [0.5, 200.0, 12.0]], np.float32)
    with np.errstate(over="ignore"):
        p = np.float32(1) / (np.float32(1) + np.exp(-x))                      # PyTorch's float32 sigmoid
    want = np.where(np.eye(3, dtype=bool), -np.log(p + np.float32(1e-8)), -np.log((np.float32(1) - p) + np.float32(1e-8)))
    terms = jax.jit(lambda l: engine.sigmoid_terms(l, "epsilon"))
    got = np.asarray(terms(jnp.asarray(x)))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[1, 0] == pytest.approx(18.420681, rel=1e-6) and got[2, 1] == pytest.approx(18.420681, rel=1e-6)
    grad = np.asarray(jax.jit(jax.grad(lambda l: jnp.sum(terms(l))))(jnp.asarray(x)))
    assert grad[1, 0] == 0 and grad[2, 1] == 0 and grad[0, 0] == 0  # saturated in float32
    assert np.all(np.isfinite(grad)) and grad[1, 1] != 0


@pytest.mark.parametrize("k,parameterization", [(2, "relative_bias"), (2, "standard"), (3, "relative_bias"), (4, "standard")])
def test_engine_loss_is_the_package_multimodal_loss(k, parameterization):
    """theory.md s.2 (k modalities, mean over edges and pairs): loss_and_grad = the package's
    multimodal_sigmoid_loss on the normalized rows, and its gradient = autodiff of that loss."""
    cfg = engine.make_config(6, 3, steps=1, k=k, dtype="float64")
    X = jax.random.normal(jax.random.PRNGKey(k), (k, 6, 3), jnp.float64)
    scalars = jnp.array([np.log(7.0), 0.3 if parameterization == "relative_bias" else -2.0, 0.0])
    rb = parameterization == "relative_bias"

    def package(X, s):
        Y = X / jnp.linalg.norm(X, axis=-1, keepdims=True)
        return loss.multimodal_sigmoid_loss(Y, jnp.exp(s[0]), s[1], parameterization=parameterization,
                                            reduction="mean", edge_reduction="mean")

    value, (gX, gs) = engine.loss_and_grad(cfg, (X, scalars), rb)
    want_value, (want_gX, want_gs) = jax.value_and_grad(package, argnums=(0, 1))(X, scalars)
    np.testing.assert_allclose(value, want_value, rtol=1e-13)
    np.testing.assert_allclose(gX, want_gX, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(gs, want_gs, rtol=1e-11, atol=1e-15)


def test_adapter_embeddings_are_claim_C10_lift():
    """C10: A_locked(U) = (delta U, sqrt(1 - delta^2)), A_trainable(V) = (delta V, -sqrt(1 - delta^2)),
    delta = sigmoid(x), so <A(U_i), A(V_j)> = delta^2 s_ij - (1 - delta^2) for unit rows."""
    cfg = engine.make_config(5, 3, steps=1, adapter=True, dtype="float64")
    X = engine.initial_embeddings(0, 0, 2, 5, 3, jnp.float64)
    x = 0.7
    Y = np.asarray(engine.effective_embeddings(cfg, X, jnp.array([0.0, 0.0, x])))
    delta = 1 / (1 + np.exp(-x))
    S = np.asarray(X[0] @ X[1].T)
    np.testing.assert_allclose(Y[0] @ Y[1].T, delta**2 * S - (1 - delta**2), atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=-1), 1.0, atol=1e-14)


# ----------------------------------------------------------------------------------------------
# The training step against a hand-written NumPy reference.


def _normalize(X):
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def _reference_grads(X, tprime, bias, rb, edges):
    """Mean loss over edges and pairs and its gradient w.r.t. (X, t', bias), from reference.py's
    analytic gradients of the summed loss, chained through the row normalization by hand."""
    k, n, _ = X.shape
    Y, norms = _normalize(X), np.linalg.norm(X, axis=-1, keepdims=True)
    t = np.exp(tprime)
    scale = 1.0 / (n * n * len(edges))
    gY, gt, gb, value = np.zeros_like(Y), 0.0, 0.0, 0.0
    for a, c in edges:
        if rb:
            ga, gc, dt, db = ref.relative_bias_loss_grad(Y[a], Y[c], t, bias)
            value += ref.relative_bias_loss(Y[a], Y[c], t, bias)
        else:
            ga, gc, dt, db = ref.sigmoid_loss_grad(Y[a], Y[c], t, bias)
            value += ref.sigmoid_loss(Y[a], Y[c], t, bias)
        gY[a] += ga
        gY[c] += gc
        gt += dt
        gb += db
    gX = (gY - Y * np.sum(gY * Y, axis=-1, keepdims=True)) / norms   # d(x / |x|) chain rule
    return value * scale, gX * scale, gt * t * scale, gb * scale      # dL/dt' = t dL/dt


def _reference_run(X0, t0, bias0, rb, trainable, lr, steps, edges):
    """Adam by hand (b1 0.9, b2 0.999, eps 1e-8), frozen parts untouched, trainable rows re-projected."""
    X, tprime, bias = X0.copy(), np.log(t0), bias0
    mX, vX, ms, vs = np.zeros_like(X), np.zeros_like(X), np.zeros(2), np.zeros(2)
    k = X.shape[0]
    train_X = np.array([("U" if a == 0 else "V") in trainable for a in range(k)])[:, None, None]
    train_s = np.array(["t" in trainable, "bias" in trainable])
    losses = []
    for n in range(1, steps + 1):
        value, gX, gt, gb = _reference_grads(X, tprime, bias, rb, edges)
        losses.append(value)
        gX = np.where(train_X, gX, 0.0)
        gs = np.where(train_s, [gt, gb], 0.0)
        mX, vX = B1 * mX + (1 - B1) * gX, B2 * vX + (1 - B2) * gX**2
        ms, vs = B1 * ms + (1 - B1) * gs, B2 * vs + (1 - B2) * gs**2
        dX = (mX / (1 - B1**n)) / (np.sqrt(vX / (1 - B2**n)) + EPS)
        ds = (ms / (1 - B1**n)) / (np.sqrt(vs / (1 - B2**n)) + EPS)
        X = np.where(train_X, _normalize(X - lr * dX), X)
        tprime, bias = np.where(train_s, np.array([tprime, bias]) - lr * ds, [tprime, bias])
    return X, float(np.exp(tprime)), float(bias), np.array(losses)


CASES = {
    "relative bias, all trainable": dict(k=2, parameterization="relative_bias", trainable=("U", "V", "t", "bias"), b_rel0=0.3),
    "standard, all trainable": dict(k=2, parameterization="standard", trainable=("U", "V", "t", "bias"), b_rel0=0.2),
    "locked U (E2)": dict(k=2, parameterization="standard", trainable=("V", "t", "bias"), b_rel0=0.0),
    "frozen b_rel (E6)": dict(k=2, parameterization="relative_bias", trainable=("U", "V", "t"), b_rel0=0.5),
    "k = 3, complete graph": dict(k=3, parameterization="relative_bias", trainable=("U", "V", "t", "bias"), b_rel0=0.1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_steps_equal_hand_written_adam_reference(case):
    """theory.md s.5 training step: mean sigmoid loss with in-loss normalization, Adam, frozen parts kept,
    re-projection; 3 engine steps (float64) = the NumPy reference to 1e-10, and the float32 engine to 1e-4."""
    c = CASES[case]
    N, d, steps, lr, t0, seed = 7, 3, 3, 0.05, 5.0, 11
    k = c["k"]
    rb = c["parameterization"] == "relative_bias"
    edges = loss.synchronization_graph(k, "complete")
    X0 = np.asarray(engine.initial_embeddings(seed, 0, k, N, d, jnp.float64))
    bias0 = c["b_rel0"] if rb else -t0 * c["b_rel0"]
    X, t, bias, losses = _reference_run(X0, t0, bias0, rb, c["trainable"], lr, steps, edges)
    kw = dict(steps=steps, parameterization=c["parameterization"], t0=t0, b_rel0=c["b_rel0"], trainable=c["trainable"],
              lr=lr, seed=seed, k=k, metric_every=1)
    r = train_synthetic(N, d, dtype="float64", **kw)
    np.testing.assert_allclose(r.loss[0], losses, rtol=1e-10)
    np.testing.assert_allclose(r.embeddings[0], X, atol=1e-10)
    np.testing.assert_allclose([r.t[0], r.bias[0]], [t, bias], rtol=1e-10)
    X0_32 = np.asarray(engine.initial_embeddings(seed, 0, k, N, d, jnp.float32), np.float64)
    X, t, bias, losses = _reference_run(X0_32, t0, bias0, rb, c["trainable"], lr, steps, edges)
    r32 = train_synthetic(N, d, **kw)
    np.testing.assert_allclose(r32.loss[0], losses, rtol=1e-5)
    np.testing.assert_allclose(r32.embeddings[0], X, atol=1e-5)
    np.testing.assert_allclose([r32.t[0], r32.bias[0]], [t, bias], rtol=1e-5, atol=1e-6)


def test_adapter_step_equals_reference_with_numerical_gradient():
    """C10's explicit adapter in training (E2): x trains with V, t, b_rel while U stays locked; 3 engine steps
    (float64) = Adam by hand on central-difference gradients of the NumPy loss (reference.py) to 1e-7."""
    N, d, steps, lr, t0, b0, x0, seed = 6, 3, 3, 0.05, 5.0, 0.2, 0.3, 4
    X0 = np.asarray(engine.initial_embeddings(seed, 0, 2, N, d, jnp.float64))

    def loss_of(p):
        X = p[: 2 * N * d].reshape(2, N, d)
        tprime, b_rel, x = p[2 * N * d:]
        delta = 1 / (1 + np.exp(-x))
        lift = np.sqrt(1 - delta**2)
        U = np.hstack([delta * X[0], np.full((N, 1), lift)])
        V = np.hstack([delta * X[1], np.full((N, 1), -lift)])
        return ref.relative_bias_loss(_normalize(U), _normalize(V), np.exp(tprime), b_rel, "mean")

    p = np.concatenate([X0.ravel(), [np.log(t0), b0, x0]])
    train = np.concatenate([np.zeros(N * d), np.ones(N * d), np.ones(3)]).astype(bool)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for n in range(1, steps + 1):
        g = np.zeros_like(p)
        for i in np.flatnonzero(train):
            h = np.zeros_like(p)
            h[i] = 1e-6
            g[i] = (loss_of(p + h) - loss_of(p - h)) / 2e-6
        m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g**2
        step = (m / (1 - B1**n)) / (np.sqrt(v / (1 - B2**n)) + EPS)
        p = np.where(train, p - lr * step, p)
        Xp = p[: 2 * N * d].reshape(2, N, d)
        Xp[1] = _normalize(Xp[1])
        p[: 2 * N * d] = Xp.ravel()
    r = train_synthetic(N, d, steps=steps, t0=t0, b_rel0=b0, trainable=("V", "t", "bias"), lr=lr, seed=seed,
                        adapter=True, adapter_x0=x0, dtype="float64", metric_every=1)
    X = p[: 2 * N * d].reshape(2, N, d)
    tprime, b_rel, x = p[2 * N * d:]
    delta = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose([np.log(r.t[0]), r.b_rel[0], r.delta[0]], [tprime, b_rel, delta], rtol=1e-7)
    want_V = _normalize(np.hstack([delta * X[1], np.full((N, 1), -np.sqrt(1 - delta**2))]))
    np.testing.assert_allclose(r.V[0], want_V, atol=1e-7)


# ----------------------------------------------------------------------------------------------
# Frozen parameters, re-projection, batching.


@pytest.mark.parametrize("loss_variant", ["exact", "epsilon"])
def test_frozen_parameters_never_move_bit_for_bit(loss_variant):
    """A name left out of ``trainable`` is frozen: the locked U and a frozen t and bias keep their exact
    float32 bits over 300 steps (E2's and E6's setting), while the trainable ones move."""
    N, d, seed = 12, 4, 3
    variants = [dict(trainable=("V",), parameterization="standard", t0=200.0),
                dict(trainable=("U", "V", "t"), b_rel0=0.778),
                dict(trainable=("V", "bias"), b_rel0=0.25)]
    r = train_grid(N, d, variants, seeds=2, steps=300, seed=seed, loss=loss_variant, normalize=False)
    start = train_grid(N, d, variants, seeds=2, steps=1, seed=seed, loss=loss_variant, normalize=False)
    for s in range(2):
        U0 = np.asarray(engine.initial_embeddings(seed, s, 2, N, d))
        for v in (0, 2):
            assert np.array_equal(r.U[v, s], start.U[v, s])                        # bit for bit
            np.testing.assert_allclose(r.U[v, s], U0[0], atol=1e-6)               # it is the initial U
            assert not np.allclose(r.V[v, s], U0[1], atol=1e-3)
        assert r.bias[0, s] == np.float32(-200.0 * 0.0) and r.t[0, s] == np.exp(np.float64(np.float32(np.log(np.float32(200.0)))))
        assert r.bias[1, s] == np.float64(np.float32(0.778))                     # frozen b_rel, exact float32 bits
        assert r.t[1, s] != 10.0 and r.bias[2, s] != np.float64(np.float32(0.25))
        assert r.t[2, s] == np.exp(np.float64(np.float32(np.log(np.float32(10.0)))))


@pytest.mark.parametrize("normalize", [True, False])
def test_reprojection_keeps_rows_unit_norm(normalize):
    """Re-projection after every step: every trained row has norm 1 within 1e-6 in float32, with and
    without in-loss normalization, for 2 and 3 modalities."""
    for k in (2, 3):
        r = train_synthetic(15, 5, seeds=2, steps=200, k=k, normalize=normalize, lr=0.05)
        assert np.max(np.abs(np.linalg.norm(r.embeddings.astype(np.float64), axis=-1) - 1)) < 1e-6
        assert r.embeddings.dtype == np.float32


def test_runs_are_reproducible_independent_and_batching_does_not_change_them():
    """Same seed -> same runs; different seed indices -> different runs; a run computed inside a vmapped chunk
    of 3 equals the run computed alone (float32 rounding)."""
    kw = dict(seeds=3, steps=100, seed=5)
    a = train_synthetic(10, 3, chunk_size=1, workers=1, **kw)
    b = train_synthetic(10, 3, chunk_size=3, workers=1, **kw)
    c = train_synthetic(10, 3, chunk_size=1, workers=2, **kw)
    assert np.array_equal(a.U, c.U) and np.array_equal(a.loss, c.loss)
    np.testing.assert_allclose(a.U, b.U, atol=1e-5)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-4)
    assert not np.allclose(a.U[0], a.U[1])


def test_loss_every_records_the_same_losses_and_trains_the_same_runs():
    """loss_every = L computes the loss value at the last step of every L only: the recorded losses are the
    every-step losses at ``loss_steps`` (L - 1, 2L - 1, ...; the last is the loss before the last step), and
    the runs are the same (the gradient does not depend on the value: float32 rounding at most)."""
    kw = dict(seeds=2, steps=120, seed=4, metric_every=40, b_rel0=0.5, workers=1)
    every = train_synthetic(12, 3, **kw)
    sparse = train_synthetic(12, 3, loss_every=20, **kw)
    assert sparse.loss.shape == (2, 6) and list(sparse.loss_steps) == [19, 39, 59, 79, 99, 119]
    np.testing.assert_allclose(sparse.loss, every.loss[:, sparse.loss_steps], rtol=1e-5)
    np.testing.assert_allclose(sparse.final_loss, every.final_loss, rtol=1e-5)
    np.testing.assert_allclose(sparse.U, every.U, atol=1e-5)
    for m in ("t", "margin"):
        np.testing.assert_allclose(sparse.history[m], every.history[m], rtol=1e-4, atol=1e-6)
    assert list(every.loss_steps) == list(range(120))
    with pytest.raises(ValueError, match="loss_every"):
        train_synthetic(12, 3, steps=120, metric_every=40, loss_every=30)
    with pytest.raises(DivergenceError):
        train_grid(10, 3, [dict(lr=1e30)], steps=50, metric_every=10, loss_every=5)


# ----------------------------------------------------------------------------------------------
# Result against geometry.


def test_result_margins_equal_geometry_recomputation():
    """theory.md s.3: the result's m*, b*_rel are geometry.margin_and_relative_bias of the final vectors in
    float64, and the in-graph (float32) final records of m*, b*_rel, xi (C13) and retrieval agree with
    geometry's margin_and_relative_bias, xi_statistic and retrieval on those vectors."""
    r = train_synthetic(30, 6, seeds=3, steps=600, b_rel0=0.5, trainable=("U", "V", "t"))
    for s in range(3):
        U, V = r.U[s].astype(np.float64), r.V[s].astype(np.float64)
        m, b = geometry.margin_and_relative_bias(U, V, normalize=True)
        assert (r.margin[s], r.relative_bias[s]) == (m, b)
        assert abs(r.history["margin"][s, -1] - m) < 1e-5 and abs(r.history["relative_bias"][s, -1] - b) < 1e-5
        assert abs(r.history["xi"][s, -1] - geometry.xi_statistic(U, V, normalize=True)) < 1e-5
        assert r.history["retrieval"][s, -1] == pytest.approx(geometry.retrieval(U, V, normalize=True).u_to_v_accuracy)
        assert abs(r.history["loss"][s, -1] - ref.relative_bias_loss(_normalize(U), _normalize(V), r.t[s], r.b_rel[s], "mean")) < 1e-5
    assert np.all(r.margin > 0)  # 30 pairs in d = 6 at b_rel = 0.5 separate within 600 steps


def test_multimodal_margin_is_the_joint_geometry_margin():
    """k modalities: the reported m* is (min over edges of min s_ii - max over edges of max s_ij) / 2 from
    geometry.constellation_statistics of every edge (float64)."""
    r = train_synthetic(10, 4, steps=150, k=3, graph="star")
    Y = r.embeddings[0].astype(np.float64)
    stats = [geometry.constellation_statistics(Y[a], Y[c], normalize=True) for a, c in ((0, 1), (0, 2))]
    lo, hi = min(s.min_positive for s in stats), max(s.max_negative for s in stats)
    assert r.margin[0] == pytest.approx((lo - hi) / 2, abs=1e-15)
    assert r.relative_bias[0] == pytest.approx((lo + hi) / 2, abs=1e-15)


def test_train_synthetic_shapes_follow_api():
    """api.md: .U, .V (seeds, N, d), .t, .b_rel, .margin, .relative_bias (seeds,), .loss (seeds, steps); the
    standard form reports b_rel = -b / t and starts at b = -t0 b_rel0."""
    r = train_synthetic(20, 3, seeds=2, steps=50, parameterization="standard", b_rel0=0.4, trainable=("U", "V"))
    assert r.U.shape == r.V.shape == (2, 20, 3)
    assert r.t.shape == r.b_rel.shape == r.margin.shape == r.relative_bias.shape == (2,)
    assert r.loss.shape == (2, 50)
    np.testing.assert_allclose(r.bias, -10.0 * 0.4, rtol=1e-6)
    np.testing.assert_allclose(r.b_rel, 0.4, rtol=1e-6)
    g = train_grid(20, 3, [dict(t0=1.0), dict(t0=3.0), dict(t0=9.0)], seeds=2, steps=20)
    assert g.U.shape == (3, 2, 20, 3) and g.loss.shape == (3, 2, 20) and g.history["margin"].shape[:2] == (3, 2)


# ----------------------------------------------------------------------------------------------
# Validation and divergence.


@pytest.mark.parametrize("kwargs,match", [
    (dict(N=1), "N"), (dict(d=0), "d "), (dict(steps=0), "steps"), (dict(seeds=0), "seeds"),
    (dict(parameterization="siglip"), "parameterization"), (dict(trainable=("U", "W")), "trainable"),
    (dict(trainable="UV"), "trainable"), (dict(lr=0.0), "lr"), (dict(lr=float("nan")), "lr"), (dict(t0=-1.0), "t0"),
    (dict(b_rel0=float("inf")), "b_rel0"), (dict(k=1), "k"), (dict(k=3, adapter=True), "adapter"),
    (dict(loss="log"), "loss"), (dict(steps=10, metric_every=3), "metric_every"), (dict(k=3, graph=[(0, 3)]), "edge"),
    (dict(seed=-1), "seed"), (dict(dtype="float16"), "dtype"), (dict(N=2.5), "N"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    """Bad input -> ValueError that names the argument."""
    args = dict(N=10, d=3, steps=5)
    args.update(kwargs)
    N, d = args.pop("N"), args.pop("d")
    with pytest.raises(ValueError, match=match):
        train_synthetic(N, d, **args)


def test_unknown_variant_key_raises():
    with pytest.raises(ValueError, match="variant key"):
        train_grid(10, 3, [dict(temperature=3.0)], steps=5)
    with pytest.raises(ValueError, match="non-empty"):
        train_grid(10, 3, [], steps=5)


def test_divergence_raises_with_the_run_named():
    """A run whose loss becomes non-finite stops the batch with DivergenceError naming the run."""
    with pytest.raises(DivergenceError, match=r"variant 1 .*lr=1e\+30"):
        train_grid(10, 3, [dict(lr=1e-2), dict(lr=1e30)], steps=50)


# ----------------------------------------------------------------------------------------------
# Compilation: one program per shape and option set.


def test_new_seed_and_values_reuse_the_compiled_program():
    """Seed, b_rel0, t0, lr, the parameterization and the trainable mask are data: a second call that differs
    only in them compiles nothing (counted by JAX's backend-compile events), and gives different runs."""
    from jax._src import dispatch

    compiles = []

    def listener(event, duration, **kwargs):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            compiles.append(duration)

    kw = dict(seeds=2, steps=40, metric_every=10)
    first = train_synthetic(12, 3, seed=1, b_rel0=0.2, t0=5.0, lr=1e-2, trainable=("U", "V", "t", "bias"), **kw)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        second = train_synthetic(12, 3, seed=7, b_rel0=0.778, t0=10.0, lr=3e-2, trainable=("V", "t"),
                                 parameterization="standard", **kw)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []
    assert not np.allclose(first.V, second.V)
    for s in range(2):  # the frozen U of the second call is its own seed's start
        np.testing.assert_allclose(second.U[s], np.asarray(engine.initial_embeddings(7, s, 2, 12, 3))[0], atol=1e-6)


def test_enable_compilation_cache_creates_the_user_folder_and_env_turns_it_off(tmp_path, monkeypatch):
    """enable_compilation_cache() points JAX's persistent cache at $XDG_CACHE_HOME/constellations/jax (created);
    CONSTELLATIONS_NO_COMPILATION_CACHE=1 leaves it off; an existing JAX cache folder is kept."""
    from constellations.synthetic import compilation, enable_compilation_cache

    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        monkeypatch.setenv(compilation.DISABLE_ENV, "1")
        assert enable_compilation_cache() is None
        assert jax.config.jax_compilation_cache_dir is None and not (tmp_path / "constellations").exists()
        monkeypatch.delenv(compilation.DISABLE_ENV)
        folder = enable_compilation_cache()
        assert folder == tmp_path / "constellations" / "jax" and folder.is_dir()
        assert jax.config.jax_compilation_cache_dir == str(folder)
        assert enable_compilation_cache(tmp_path / "elsewhere") == folder  # already set: kept
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


@pytest.mark.parametrize("variant", ["exact", "epsilon"])
def test_hand_written_block_gradient_equals_autodiff_and_reference(variant):
    """The engine differentiates each (N, N) block by hand (one exponential per pair for value and slope):
    value and d mean / d logits = autodiff of the mean of sigmoid_terms (float64 to 1e-13, float32 to 1e-6),
    and for "exact" the edge's gradients w.r.t. U, V, t, b = reference.py's analytic ones (float64)."""
    rng = np.random.default_rng(1)
    for dtype, tol in ((jnp.float64, 1e-13), (jnp.float32, 1e-6)):
        logits = jnp.asarray(rng.normal(scale=30, size=(9, 9)), dtype)
        value, G = engine.logit_value_and_grad(logits, variant)
        want_value, want_G = jax.value_and_grad(lambda l: jnp.mean(engine.sigmoid_terms(l, variant)))(logits)
        np.testing.assert_allclose(value, want_value, rtol=tol)
        np.testing.assert_allclose(G, want_G, rtol=tol, atol=tol * 1e-3)
    if variant == "exact":
        U, V = (_normalize(rng.normal(size=(8, 3))) for _ in range(2))
        t, b_rel = 7.0, 0.4
        value, gU, gV, dt, db = engine._edge_value_and_grad(jnp.asarray(U), jnp.asarray(V), t, -t * b_rel, "exact")
        rU, rV, rt, rb = ref.relative_bias_loss_grad(U, V, t, b_rel)   # summed loss; b = -t b_rel
        np.testing.assert_allclose(value * 64, ref.relative_bias_loss(U, V, t, b_rel), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(gU) * 64, rU, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(np.asarray(gV) * 64, rV, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(db * 64 * -t, rb, rtol=1e-10)                    # d/db_rel = -t d/db
        np.testing.assert_allclose(dt * 64 - b_rel * db * 64, rt, rtol=1e-10)       # d/dt at fixed b_rel


def test_row_tiles_of_a_large_block_equal_the_whole_block():
    """Large blocks are visited in row tiles (memory O(rows N), no (N, N) array): value and gradients equal
    the whole block's (float64, 1e-12), and the tile size divides N (None: the block is taken whole)."""
    rng = np.random.default_rng(2)
    Ya, Yc = (jnp.asarray(_normalize(rng.normal(size=(12, 4)))) for _ in range(2))
    t, b = 9.0, -4.0
    S = Ya @ Yc.T
    value, G = engine.logit_value_and_grad(t * S + b)
    want = (value, t * (G @ Yc), t * (G.T @ Ya), jnp.sum(G * S), jnp.sum(G))
    for rows in (3, 4, 6):
        got = engine._tiled_edge_value_and_grad(Ya, Yc, t, b, rows)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    if jax.default_backend() == "cpu":
        assert engine._tile_rows(100) is None and engine._tile_rows(997) is None
        assert 4096 % engine._tile_rows(4096) == 0 and 1000 % engine._tile_rows(1000) == 0


def test_tiled_metrics_equal_whole_block_metrics(monkeypatch):
    """The in-graph records of a large run (row tiles) equal those of the whole block: loss, m*, b*_rel and
    retrieval (float64, 1e-12)."""
    cfg = engine.make_config(12, 4, steps=1, dtype="float64")
    X = engine.initial_embeddings(3, 0, 2, 12, 4, jnp.float64)
    params, rb = (X, jnp.array([np.log(8.0), 0.3, 0.0])), True
    whole = engine.run_metrics(cfg, params, rb)
    monkeypatch.setattr(engine, "_tile_rows", lambda N: 4)
    tiled = engine.run_metrics(cfg, params, rb)
    for name in engine.METRICS:
        np.testing.assert_allclose(tiled[name], whole[name], rtol=1e-12, atol=1e-15, err_msg=name)
