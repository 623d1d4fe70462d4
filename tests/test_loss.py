"""Tests of constellations.loss against the NumPy references of constellations.reference.

Definitions checked: theory.md section 2 (sigmoid loss with logits t s + b and explicit reductions,
the relative-bias parameterization, the k-modality sum, softmax and triplet losses).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from constellations import loss, margin_and_relative_bias, reference as ref
from strategies import constellations, embedding_pairs, random_unit

REDUCTIONS = ["sum", "per_example", "mean"]


@given(embedding_pairs(), st.floats(0, 200), st.floats(-200, 200), st.sampled_from(REDUCTIONS + ["none"]))
def test_sigmoid_loss_matches_numpy_reference(pair, t, b, reduction):
    """theory.md s.2: L_sig = -sum log sigmoid(z (t s + b)) with the named reduction, JAX == NumPy."""
    U, V = pair
    got = np.asarray(loss.sigmoid_loss(U, V, t, b, reduction=reduction))
    want = ref.sigmoid_loss(U, V, t, b, reduction)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@given(embedding_pairs(), st.floats(0, 200), st.floats(-1.5, 1.5))
def test_relative_bias_loss_equals_standard_at_b_equal_minus_t_b_rel(pair, t, b_rel):
    """Definition 1 (theory.md s.2): L_rb(t, b_rel) = L_sig(t, -t b_rel), and both match NumPy."""
    U, V = pair
    rb = float(loss.relative_bias_loss(U, V, t, b_rel))
    np.testing.assert_allclose(rb, float(loss.sigmoid_loss(U, V, t, -t * b_rel)), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(rb, ref.relative_bias_loss(U, V, t, b_rel), rtol=1e-12, atol=1e-12)


@given(embedding_pairs(max_n=20), st.floats(0.1, 50), st.floats(-50, 50))
def test_sigmoid_loss_gradients_match_reference(pair, t, b):
    """Gradients of L_sig w.r.t. U, V, t, b: jax.grad == the analytic NumPy gradient."""
    U, V = pair
    grads = jax.grad(lambda U, V, t, b: loss.sigmoid_loss(U, V, t, b), argnums=(0, 1, 2, 3))(U, V, t, b)
    for g, w in zip(grads, ref.sigmoid_loss_grad(U, V, t, b)):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-10)


@given(embedding_pairs(max_n=20), st.floats(0.1, 50), st.floats(-1, 1))
def test_relative_bias_gradients_match_reference(pair, t, b_rel):
    """Gradients of L_rb w.r.t. U, V, t, b_rel (chain rule through b = -t b_rel) match NumPy."""
    U, V = pair
    grads = jax.grad(lambda U, V, t, r: loss.relative_bias_loss(U, V, t, r), argnums=(0, 1, 2, 3))(U, V, t, b_rel)
    for g, w in zip(grads, ref.relative_bias_loss_grad(U, V, t, b_rel)):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-10)


def test_reference_gradient_matches_finite_differences():
    """The NumPy analytic gradient itself is right (central differences, float64)."""
    rng = np.random.default_rng(0)
    U, V = random_unit(rng, 5, 3), random_unit(rng, 5, 3)
    t, b, h = 3.0, -1.0, 1e-6
    gU, gV, gt, gb = ref.sigmoid_loss_grad(U, V, t, b)
    E = np.zeros_like(U)
    E[2, 1] = h
    np.testing.assert_allclose((ref.sigmoid_loss(U + E, V, t, b) - ref.sigmoid_loss(U - E, V, t, b)) / (2 * h), gU[2, 1], rtol=1e-6)
    np.testing.assert_allclose((ref.sigmoid_loss(U, V + E, t, b) - ref.sigmoid_loss(U, V - E, t, b)) / (2 * h), gV[2, 1], rtol=1e-6)
    np.testing.assert_allclose((ref.sigmoid_loss(U, V, t + h, b) - ref.sigmoid_loss(U, V, t - h, b)) / (2 * h), gt, rtol=1e-6)
    np.testing.assert_allclose((ref.sigmoid_loss(U, V, t, b + h) - ref.sigmoid_loss(U, V, t, b - h)) / (2 * h), gb, rtol=1e-6)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("t", [1e3, 5e3, 1e4])
def test_stable_for_logits_in_the_thousands(dtype, rtol, t):
    """|logits| up to 2e4: finite values and gradients, equal to the stable reference, in f32 and f64."""
    rng = np.random.default_rng(1)
    U, V = random_unit(rng, 16, 4), random_unit(rng, 16, 4)
    U32, V32 = U.astype(dtype), V.astype(dtype)
    for b in (-t, 0.0, t):
        val = loss.sigmoid_loss(U32, V32, dtype(t), dtype(b))
        assert val.dtype == dtype
        want = ref.sigmoid_loss(U32.astype(np.float64), V32.astype(np.float64), float(dtype(t)), float(dtype(b)))
        np.testing.assert_allclose(float(val), want, rtol=rtol * 10)
        g = jax.grad(lambda U: loss.sigmoid_loss(U, V32, dtype(t), dtype(b)))(U32)
        assert np.all(np.isfinite(np.asarray(g)))


def test_float32_and_float64_agree_and_jit_works():
    """The public loss is jit- and grad-able and keeps the input dtype (float32 stays float32)."""
    rng = np.random.default_rng(2)
    U, V = random_unit(rng, 12, 5), random_unit(rng, 12, 5)
    f = jax.jit(lambda U, V, tp, b: loss.sigmoid_loss(U, V, jnp.exp(tp), b, reduction="per_example"))
    v64 = f(U, V, np.log(10.0), -10.0)
    v32 = f(U.astype(np.float32), V.astype(np.float32), np.float32(np.log(10.0)), np.float32(-10.0))
    assert v64.dtype == np.float64 and v32.dtype == np.float32
    np.testing.assert_allclose(float(v32), float(v64), rtol=1e-5)


def test_matrix_form_sums_to_the_loss_and_from_logits_agrees():
    """The pairwise matrix form sums to the reduced loss; the logits entry point gives the same."""
    rng = np.random.default_rng(3)
    U, V = random_unit(rng, 9, 4), random_unit(rng, 9, 4)
    M = np.asarray(loss.sigmoid_loss(U, V, 7.0, -2.0, reduction="none"))
    assert M.shape == (9, 9)
    np.testing.assert_allclose(M.sum(), float(loss.sigmoid_loss(U, V, 7.0, -2.0)), rtol=1e-13)
    logits = 7.0 * U @ V.T - 2.0
    np.testing.assert_allclose(float(loss.sigmoid_loss_from_logits(logits, reduction="per_example")), M.sum() / 9, rtol=1e-13)
    off = float(loss.sigmoid_loss_from_logits(logits, positives_on_diagonal=False))
    np.testing.assert_allclose(off, np.sum(np.logaddexp(0, logits)), rtol=1e-13)


def test_initial_siglip_loss_is_about_ten_per_example():
    """At t = 10, b = -10 and random embeddings, the per-example loss is ~ N log(1+e^-10) + 10 ~ 10."""
    rng = np.random.default_rng(4)
    U, V = random_unit(rng, 256, 64), random_unit(rng, 256, 64)
    val = float(loss.sigmoid_loss(U, V, 10.0, -10.0, reduction="per_example"))
    assert 9.5 < val < 10.5


@given(embedding_pairs(max_n=15), st.floats(0, 1e4), st.floats(-1e4, 1e4))
def test_log_loss_is_log_of_loss(pair, t, b):
    """log_sigmoid_loss = log(L_sig(sum)) where the latter is representable, finite everywhere."""
    U, V = pair
    lg = float(loss.log_sigmoid_loss(U, V, t, b))
    np.testing.assert_allclose(lg, ref.log_sigmoid_loss(U, V, t, b), rtol=1e-9, atol=1e-9)
    val = ref.sigmoid_loss(U, V, t, b)
    if val > 1e-300:
        np.testing.assert_allclose(lg, np.log(val), rtol=1e-9, atol=1e-12)


@settings(max_examples=15)
@given(constellations(max_n=20), st.floats(20.0, 24.0))
def test_log_loss_is_exact_in_the_softplus_tail(pair, t_margin):
    """C1 (Thm 3.2) in the log domain: at b = -t b*_rel with t m* in [20, 24] every logit lies in softplus's
    tail (x <= -20, where log softplus(x) = x + log1p(-e^x / 2 + e^{2x} / 3) is used), and the loss itself
    is still representable: log_sigmoid_loss must equal log L_sig to 1e-12 (the tail's correction is e^x,
    about 1e-10 here, so a wrong tail formula shows)."""
    U, V = pair
    m, b_rel = margin_and_relative_bias(U, V)
    assume(m > 0.02)
    t = t_margin / m
    lg = float(loss.log_sigmoid_loss(U, V, t, -t * b_rel))
    assert abs(lg - np.log(ref.sigmoid_loss(U, V, t, -t * b_rel))) <= 1e-12


@given(st.integers(2, 5), st.sampled_from(["complete", "star"]), st.sampled_from(["standard", "relative_bias"]),
       st.sampled_from(["sum", "mean"]), st.integers(0, 2**31))
def test_multimodal_loss_is_the_edge_sum(k, graph, param, edge_reduction, seed):
    """k modalities (theory.md s.2): the sum (or mean) over the graph's edges of pairwise losses."""
    rng = np.random.default_rng(seed)
    X = np.stack([random_unit(rng, 7, 4) for _ in range(k)])
    edges = loss.synchronization_graph(k, graph)
    assert len(edges) == (k * (k - 1) // 2 if graph == "complete" else k - 1)
    got = float(loss.multimodal_sigmoid_loss(X, 5.0, 0.3, graph=graph, parameterization=param, edge_reduction=edge_reduction))
    want = ref.multimodal_sigmoid_loss(X, 5.0, 0.3, edges, param, edge_reduction=edge_reduction)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    got_list = float(loss.multimodal_sigmoid_loss(list(X), 5.0, 0.3, graph=graph, parameterization=param, edge_reduction=edge_reduction))
    np.testing.assert_allclose(got_list, want, rtol=1e-12)


def test_multimodal_with_two_modalities_is_the_pairwise_loss():
    rng = np.random.default_rng(5)
    U, V = random_unit(rng, 6, 3), random_unit(rng, 6, 3)
    np.testing.assert_allclose(float(loss.multimodal_sigmoid_loss([U, V], 4.0, -1.0)), float(loss.sigmoid_loss(U, V, 4.0, -1.0)), rtol=1e-14)


@given(embedding_pairs(max_n=20), st.floats(0, 100), st.sampled_from(["sum", "per_example", "mean", "none"]))
def test_softmax_loss_matches_reference(pair, t, reduction):
    """CLIP/InfoNCE: the mean of row- and column-wise cross-entropies of t s, JAX == NumPy."""
    U, V = pair
    np.testing.assert_allclose(np.asarray(loss.softmax_loss(U, V, t, reduction=reduction)),
                               ref.softmax_loss(U, V, t, reduction), rtol=1e-11, atol=1e-11)


def test_softmax_gradient_matches_finite_differences():
    rng = np.random.default_rng(6)
    U, V = random_unit(rng, 6, 3), random_unit(rng, 6, 3)
    g = float(jax.grad(lambda t: loss.softmax_loss(U, V, t))(4.0))
    h = 1e-6
    fd = (ref.softmax_loss(U, V, 4.0 + h) - ref.softmax_loss(U, V, 4.0 - h)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6)


@given(embedding_pairs(max_n=15), st.floats(0, 4))
def test_triplet_loss_matches_reference(pair, alpha):
    """Triplet loss (theory.md s.2, C12): sum_{i != j} max(0, |U_i-V_i|^2 - |U_i-V_j|^2 + alpha)."""
    U, V = pair
    np.testing.assert_allclose(float(loss.triplet_loss(U, V, alpha)), ref.triplet_loss(U, V, alpha), rtol=1e-10, atol=1e-10)


@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=30))
def test_softplus_matches_jax_and_its_derivative_is_the_sigmoid(xs):
    """theory.md s.2: each loss term is softplus(-z logit); the package's custom-JVP softplus has the values
    of jax.nn.softplus and derivative sigmoid(x), in float64, for logits up to |x| = 1000 (no overflow)."""
    x = jnp.asarray(xs + [0.0] * (30 - len(xs)), jnp.float64)   # one shape: one compilation
    np.testing.assert_allclose(loss.softplus(x), jax.nn.softplus(x), rtol=1e-14, atol=1e-300)
    grad = jax.vmap(jax.grad(loss.softplus))(x)
    np.testing.assert_allclose(grad, jax.nn.sigmoid(x), rtol=1e-14, atol=1e-300)
    second = jax.vmap(jax.grad(jax.grad(loss.softplus)))(x)            # the JVP rule is differentiable too
    np.testing.assert_allclose(second, jax.nn.sigmoid(x) * jax.nn.sigmoid(-x), rtol=1e-9, atol=1e-300)


def test_softmax_loss_from_logits_is_the_softmax_loss():
    """The public logit-level softmax loss (SigLIP trainer's baseline) equals softmax_loss on t U V^T, every reduction."""
    rng = np.random.default_rng(3)
    U, V = random_unit(rng, 7, 4), random_unit(rng, 7, 4)
    logits = 6.0 * (U @ V.T)
    for reduction in ("mean", "per_example", "sum", "none"):
        np.testing.assert_allclose(loss.softmax_loss_from_logits(jnp.asarray(logits), reduction=reduction),
                                   loss.softmax_loss(U, V, 6.0, reduction=reduction), rtol=1e-12)
    np.testing.assert_allclose(loss.softmax_loss_from_logits(jnp.asarray(logits)), ref.softmax_loss(U, V, 6.0, "per_example"),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="square"):
        loss.softmax_loss_from_logits(jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="reduction"):
        loss.softmax_loss_from_logits(jnp.zeros((3, 3)), reduction="avg")


@pytest.mark.parametrize("positives_on_diagonal", [True, False])
def test_both_gradient_strategies_give_the_same_terms_and_gradients(positives_on_diagonal):
    """store_sigmoid changes how the gradient is taken (custom JVP vs autodiff of jax.nn.softplus), never
    the numbers: equal values and gradients (float64, 1e-13) for logits up to |x| = 200, rectangular blocks too."""
    logits = jnp.asarray(np.random.default_rng(5).normal(scale=60, size=(2, 7, 9)), jnp.float64)
    z = 2 * jnp.eye(7, 9) - 1 if positives_on_diagonal else -jnp.ones((7, 9))
    lean = loss.sigmoid_terms_from_logits(logits, positives_on_diagonal=positives_on_diagonal)
    fast = loss.sigmoid_terms_from_logits(logits, positives_on_diagonal=positives_on_diagonal, store_sigmoid=True)
    np.testing.assert_allclose(lean, fast, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(lean, np.logaddexp(0, -np.asarray(z) * np.asarray(logits)), rtol=1e-13)

    def grad(store):
        return jax.grad(lambda l: jnp.sum(jnp.cos(loss.sigmoid_terms_from_logits(
            l, positives_on_diagonal=positives_on_diagonal, store_sigmoid=store))))(logits)

    np.testing.assert_allclose(grad(False), grad(True), rtol=1e-12, atol=1e-300)


def test_reductions_mean_the_same_in_every_loss():
    """Every loss of constellations.loss: sum == N * per_example == N^2 * mean (module docstring)."""
    rng = np.random.default_rng(11)
    N = 7
    U, V, W = (random_unit(rng, N, 4) for _ in range(3))
    logits = jnp.asarray(5.0 * U @ V.T - 1.0)
    losses = {
        "sigmoid": lambda r: loss.sigmoid_loss(U, V, 5.0, -1.0, reduction=r),
        "relative_bias": lambda r: loss.relative_bias_loss(U, V, 5.0, 0.2, reduction=r),
        "k-modality": lambda r: loss.multimodal_sigmoid_loss([U, V, W], 5.0, -1.0, reduction=r),
        "softmax": lambda r: loss.softmax_loss(U, V, 5.0, reduction=r),
        "triplet": lambda r: loss.triplet_loss(U, V, 0.5, reduction=r),
        "sigmoid from logits": lambda r: loss.sigmoid_loss_from_logits(logits, reduction=r),
        "softmax from logits": lambda r: loss.softmax_loss_from_logits(logits, reduction=r),
    }
    for name, f in losses.items():
        total, per_example, mean = (float(f(r)) for r in ("sum", "per_example", "mean"))
        assert total > 0, name
        np.testing.assert_allclose(N * per_example, total, rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(N * N * mean, total, rtol=1e-13, err_msg=name)
        for r in ("sum", "per_example", "mean"):  # the NumPy references reduce the same way
            if name in ("sigmoid", "softmax", "triplet"):
                want = {"sigmoid": lambda: ref.sigmoid_loss(U, V, 5.0, -1.0, r),
                        "softmax": lambda: ref.softmax_loss(U, V, 5.0, r),
                        "triplet": lambda: ref.triplet_loss(U, V, 0.5, r)}[name]()
                np.testing.assert_allclose(float(f(r)), want, rtol=1e-12, err_msg=f"{name} {r}")
