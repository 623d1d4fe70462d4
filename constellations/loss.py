"""The losses of the package, in JAX: one home for the math.

Notation and sign convention (``theory.md`` section 2): for unit rows U_i, V_j (shape (N, d)),
s_ij = <U_i, V_j>, inverse temperature t > 0 (stored by trainers as t = exp(t')), bias b, and
labels z_ii = +1, z_ij = -1 (i != j):

    logit_ij = t * s_ij + b                                     (SigLIP's convention; init b = -10)
    L_sig(U, V; t, b)      = -sum_{i,j} log sigmoid(z_ij * (t * s_ij + b))
    L_rb(U, V; t, b_rel)   = -sum_{i,j} log sigmoid(z_ij * t * (s_ij - b_rel))  = L_sig(t, b = -t * b_rel)

The paper (Bangachev et al.) writes logits as t * s_ij - b, so its b is our -b. The relative bias
b_rel = -b / t is the cosine-similarity threshold of the pairwise classifier.

Reductions mean the same in every loss of this module (sigmoid, relative-bias, k-modality,
softmax, triplet and the from-logits forms), for a batch of N pairs:

    "sum"          = sum of all the loss's terms                (the paper's theorems)
    "per_example"  = sum / N                                    (SigLIP's and CLIP's normalization)
    "mean"         = sum / N^2                                  (the paper's experiment code)
    "none"         = the terms themselves, unreduced

so sum == N * per_example == N^2 * mean for every loss. The terms are the (N, N) per-pair terms for
the sigmoid and triplet losses and the N per-example terms for the softmax loss.

Every term is evaluated as softplus(-z * logit), which is exact and finite for |logit| in the
thousands (no log(sigmoid(x)) underflow, no exp overflow), in float32 and float64 alike.

Each public function validates its inputs (shapes always; finiteness and unit norms when the arrays
are concrete, i.e. outside ``jit``) and then calls a pure, jittable core. NumPy references of every
function live in :mod:`constellations.reference`.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import check_finite, check_matrix, check_nonzero_rows, check_pair, check_scalar, check_unit_rows, is_concrete

REDUCTIONS = ("sum", "per_example", "mean", "none")
GRAPHS = ("complete", "star")


# ----------------------------------------------------------------------------------------------
# Pure cores (jittable, no value checks).


def normalize_rows(x):
    """x / |x| along the last axis: rows scaled to unit norm (jittable, differentiable, no checks).

    For rows of ordinary size (the trainers' parameters). Rows that may be huge, tiny or in half
    precision go through :func:`normalize_rows_safe`, as the public losses' ``normalize=True`` does.
    """
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def normalize_rows_safe(x):
    """x / |x| along the last axis without overflow or underflow (jittable, differentiable, no checks).

    Each row is first multiplied by an exact power of two near 1 / max_k |x_k| (held constant for
    the gradient: x / |x| does not depend on it), so the sum of squares neither overflows (rows of
    norm 1e20 in float32) nor underflows (norm 1e-25); rows of ordinary size get the values of
    :func:`normalize_rows` to within an ulp. All-zero rows come out zero (the public losses refuse
    them before).
    """
    top = jax.lax.stop_gradient(jnp.max(jnp.abs(x), axis=-1, keepdims=True))
    _, e = jnp.frexp(top)
    limit = jnp.finfo(x.dtype).maxexp - 4  # 2^-e stays a normal float of x's dtype
    y = x * jnp.ldexp(jnp.ones_like(top), -jnp.clip(e, -limit, limit))
    n = jnp.linalg.norm(y, axis=-1, keepdims=True)
    return y / jnp.where(n == 0, 1, n)


def pairwise_labels(n_rows: int, n_cols: int | None = None, *, positives_on_diagonal: bool = True, dtype=jnp.float32):
    """The label matrix z: +1 on the diagonal (the positive pairs), -1 elsewhere.

    With ``positives_on_diagonal=False`` every entry is -1 (an off-diagonal block of a chunked
    loss, where the rows and columns come from different examples).
    """
    n_cols = n_rows if n_cols is None else n_cols
    if not positives_on_diagonal:
        return -jnp.ones((n_rows, n_cols), dtype)
    return 2.0 * jnp.eye(n_rows, n_cols, dtype=dtype) - 1.0


def _reduce(terms, reduction: str, n: int):
    """The module's reductions of a loss's terms for a batch of n examples: sum, sum / n, sum / n^2."""
    if reduction == "none":
        return terms
    total = jnp.sum(terms)
    if reduction == "sum":
        return total
    if reduction == "per_example":
        return total / n
    if reduction == "mean":
        return total / (n * n)
    raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")


@jax.custom_jvp
def softplus(x):
    """softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}), exact and finite for every x.

    Same values as ``jax.nn.softplus`` (to rounding); its JVP is sigmoid(x) * dx, evaluated from the
    same e^{-|x|} as the value: sigmoid(x) = 1 / (1 + e^{-|x|}) for x >= 0 and e^{-|x|} / (1 + e^{-|x|})
    otherwise, so no exponential overflows and small sigmoids keep full relative precision. Sharing
    the exponential makes a value-and-gradient pass about 2x faster than autodiff of
    ``jax.nn.softplus`` on small blocks, but reverse mode then stores sigmoid(x) for the backward
    pass: one more (rows, cols) buffer than ``jax.nn.softplus``, whose backward pass needs only x
    (the logits, which exist anyway). See ``store_sigmoid`` of :func:`sigmoid_terms_from_logits`.
    """
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    e = jnp.exp(-jnp.abs(x))
    inv = 1 / (1 + e)
    sigmoid = jnp.where(x >= 0, inv, e * inv)
    return jnp.maximum(x, 0) + jnp.log1p(e), sigmoid * dx


def sigmoid_terms_from_logits(logits, *, positives_on_diagonal: bool = True, store_sigmoid: bool = False):
    """Per-pair sigmoid-loss terms softplus(-z_ij * logit_ij) for a (..., rows, cols) stack of logit blocks.

    The core that every sigmoid loss in the package (dense, chunked, ring, the synthetic engine)
    calls. A block whose rows and columns are the same examples has its positives on the diagonal;
    a block pairing different examples (a chunk of a distributed loss) has none.

    ``store_sigmoid`` picks how gradients are taken, not the values: False (the default) is autodiff
    of ``jax.nn.softplus``, whose backward pass needs only the logits (memory-lean: what the SigLIP
    losses want, where the (rows, cols) block is the memory); True is the custom-JVP :func:`softplus`,
    about 2x faster for value and gradient on small blocks but one more (rows, cols) buffer (what the
    synthetic engine wants at N = 100; measured by ``experiments/bench_engine.py``).
    """
    z = pairwise_labels(logits.shape[-2], logits.shape[-1], positives_on_diagonal=positives_on_diagonal,
                        dtype=logits.dtype)
    return (softplus if store_sigmoid else jax.nn.softplus)(-z * logits)


#: The epsilon of the authors' experiment code: -log(sigmoid(x) + 1e-8).
AUTHORS_EPSILON = 1e-8


def epsilon_sigmoid_terms(logits):
    """The authors' per-pair terms: -log(sigmoid(x) + 1e-8) on positives, -log(1 - sigmoid(x) + 1e-8) on negatives.

    ``logits`` has shape (..., N, N) with the positives on the diagonal of the last two axes. In
    float32, sigmoid(x) rounds to 1 above x ~ 16.6, so such a negative pair costs -log(1e-8) = 18.42
    and gets no gradient (theory.md s.5). For reproducing the paper's experiments only: it is not
    the sigmoid loss (it saturates), and no loss of the package uses it by default.
    """
    p = jax.nn.sigmoid(logits)
    # The barrier keeps XLA from folding (1 - p) + 1e-8 into (1 + 1e-8) - p = 1 - p in float32,
    # which would turn the authors' 18.42 into log(0); PyTorch evaluates it left to right.
    p, q = jax.lax.optimization_barrier((p, 1 - p))
    eye = jnp.eye(logits.shape[-2], logits.shape[-1], dtype=bool)
    return jnp.where(eye, -jnp.log(p + AUTHORS_EPSILON), -jnp.log(q + AUTHORS_EPSILON))


def sigmoid_loss_from_logits(logits, *, positives_on_diagonal: bool = True, reduction: str = "sum"):
    """Sigmoid loss of a (rows, cols) logit matrix (see :func:`sigmoid_terms_from_logits`), reduced as asked.

    With N = rows (the examples whose rows these are): "sum" = sum_ij softplus(-z_ij logit_ij),
    "per_example" = sum / N (SigLIP's 1/|B|), "mean" = sum / N^2, "none" = the (rows, cols) terms.
    """
    _check_reduction(reduction)
    logits = _check_logits(logits)
    terms = sigmoid_terms_from_logits(logits, positives_on_diagonal=positives_on_diagonal)
    return _reduce(terms, reduction, logits.shape[-2])


@partial(jax.jit, static_argnames=("reduction", "normalize"))
def _sigmoid_loss_core(U, V, t, b, reduction="sum", normalize=False):
    if normalize:
        U, V = normalize_rows_safe(U), normalize_rows_safe(V)
    dtype = jnp.result_type(U, V)
    logits = jnp.asarray(t, dtype) * (U @ V.T) + jnp.asarray(b, dtype)
    return _reduce(sigmoid_terms_from_logits(logits), reduction, U.shape[0])


def _log_softplus(x):
    # log(softplus(x)), finite where softplus(x) underflows: softplus(x) = e^x (1 - e^x/2 + ...)
    # for x << 0, so log softplus(x) = x + log1p(-e^x / 2 + e^{2x} / 3) to double precision there.
    small = x < -20.0
    xs = jnp.where(small, x, -20.0)
    ex = jnp.exp(xs)
    tail = xs + jnp.log1p(-ex / 2 + ex * ex / 3)
    safe = jnp.where(small, 0.0, x)
    return jnp.where(small, tail, jnp.log(jax.nn.softplus(safe)))


@partial(jax.jit, static_argnames=("normalize",))
def _log_sigmoid_loss_core(U, V, t, b, normalize=False):
    if normalize:
        U, V = normalize_rows_safe(U), normalize_rows_safe(V)
    dtype = jnp.result_type(U, V)
    logits = jnp.asarray(t, dtype) * (U @ V.T) + jnp.asarray(b, dtype)
    z = pairwise_labels(*logits.shape, dtype=dtype)
    return jax.scipy.special.logsumexp(_log_softplus(-z * logits))


# ----------------------------------------------------------------------------------------------
# Validation helpers for the public wrappers.


def _check_reduction(reduction: str, allowed=REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {allowed}; got {reduction!r}")


def _check_embeddings(U, V, normalize: bool, *, same_n: bool = True, unit: bool = True, names=("U", "V")):
    """Shapes always; finiteness, and unit rows (``normalize=False``) or nonzero rows (``normalize=True``)
    for concrete arrays. ``unit=False`` (the triplet loss) checks neither."""
    check_pair(U, V, min_rows=2, same_n=same_n, names=names)
    for X, name in zip((U, V), names):
        check_finite(X, name)
        if unit and normalize:
            check_nonzero_rows(X, name)
        elif unit:
            check_unit_rows(X, name)


def _check_logits(logits):
    """Logits as an array of shape (..., rows, cols), finite when concrete (an IndexError or NaN otherwise)."""
    if not hasattr(logits, "ndim"):
        check_matrix(logits, "logits")
        logits = jnp.asarray(logits)
    if logits.ndim < 2:
        raise ValueError(f"logits must have shape (..., rows, cols) (a matrix per block); got shape {logits.shape}")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        logits = logits.astype(jnp.result_type(float))
    check_finite(logits, "logits")
    return logits


def _as_float(x):
    """x as a JAX float array: integers to the default float; half precision (float16, bfloat16) to float32.

    The public losses of (U, V) compute in at least float32: float16 overflows at 65504, so the sum of
    a few thousand terms, or the squares of rows of norm 300, would not fit.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.result_type(float))
    return x.astype(jnp.float32) if jnp.finfo(x.dtype).bits < 32 else x


def _check_parameter(value, name: str, U, V) -> None:
    """A loss parameter must stay finite in the dtype the loss is computed in (t = 1e39 is inf in float32)."""
    if not is_concrete(value):
        return
    dtype = jnp.result_type(_as_float(U), _as_float(V))
    with jax.numpy_dtype_promotion("standard"):
        cast = float(jnp.asarray(value, dtype))
    if not jnp.isfinite(cast):
        raise ValueError(f"{name} = {float(value):g} overflows {jnp.dtype(dtype).name}, the dtype U and V are "
                         "computed in; pass float64 embeddings (with jax_enable_x64) or a smaller value")


def _finite_result(out, what: str):
    """Refuse an overflowed loss (concrete values only): a silent inf is a wrong answer."""
    if is_concrete(out) and not bool(jnp.all(jnp.isfinite(out))):
        raise ValueError(f"the {what} overflows {jnp.dtype(out.dtype).name} (logits too large for the dtype); "
                         "pass float64 embeddings (with jax_enable_x64) or smaller t and b")
    return out


# ----------------------------------------------------------------------------------------------
# Public losses.


def sigmoid_loss(U, V, t, b, *, reduction: str = "sum", normalize: bool = False):
    """Sigmoid contrastive loss in the standard parameterization (SigLIP's t, b).

    L_sig = -sum_{i,j} log sigmoid(z_ij * (t * <U_i, V_j> + b)), z_ii = +1, z_ij = -1 (i != j).

    Args:
      U, V: (N, d) arrays of unit rows (N >= 2); row i of U is paired with row i of V.
      t: inverse temperature t >= 0 (the value itself, not its log).
      b: bias, in SigLIP's sign convention (logits t * s + b; the paper's b is our -b).
      reduction: "sum" (default, the theorems) = sum_{i,j} of the N^2 terms, "per_example" = sum / N
        (SigLIP), "mean" = sum / N^2 (the paper's experiments) or "none" (the (N, N) matrix of terms).
      normalize: divide the rows by their norms inside the loss (differentiably) instead of
        requiring unit rows.

    Returns:
      A scalar (or (N, N) array for reduction="none") in the dtype of U and V (float32 for
      float16 and bfloat16 inputs, which are computed in float32). Jittable and differentiable in
      U, V, t and b. Outside ``jit``, bad input raises ValueError naming the argument: non-finite
      or non-unit rows (all-zero rows with ``normalize=True``), t or b that overflow the dtype,
      and a loss that overflows it.

    Example:
      >>> U = V = jnp.eye(3)
      >>> float(sigmoid_loss(U, V, 10.0, -5.0, reduction="per_example"))  # doctest: +ELLIPSIS
      0.0...
    """
    _check_reduction(reduction)
    _check_embeddings(U, V, normalize)
    check_scalar(t, "t (inverse temperature)", low=0.0)
    check_scalar(b, "b (bias)")
    _check_parameter(t, "t (inverse temperature)", U, V)
    _check_parameter(b, "b (bias)", U, V)
    return _finite_result(_sigmoid_loss_core(_as_float(U), _as_float(V), t, b, reduction=reduction,
                                             normalize=normalize), "sigmoid loss")


def relative_bias_loss(U, V, t, b_rel, *, reduction: str = "sum", normalize: bool = False):
    """Sigmoid loss in the relative-bias parameterization (the paper's Definition 1).

    L_rb(U, V; t, b_rel) = -sum_{i,j} log sigmoid(z_ij * t * (<U_i, V_j> - b_rel)),
    the same function as :func:`sigmoid_loss` at b = -t * b_rel. What differs is the coordinates an
    optimizer moves: changing t does not move the similarity threshold b_rel, and b_rel can be frozen.

    Arguments as in :func:`sigmoid_loss`, with ``b_rel`` (a cosine-similarity threshold, any finite
    real; constellations have b_rel in [-1, 1]) in place of b.
    """
    _check_reduction(reduction)
    _check_embeddings(U, V, normalize)
    check_scalar(t, "t (inverse temperature)", low=0.0)
    check_scalar(b_rel, "b_rel (relative bias)")
    _check_parameter(t, "t (inverse temperature)", U, V)
    if is_concrete(t) and is_concrete(b_rel):
        _check_parameter(float(t) * float(b_rel), "b = -t * b_rel", U, V)
    t = _as_float(t)
    return _finite_result(_sigmoid_loss_core(_as_float(U), _as_float(V), t, -t * b_rel, reduction=reduction,
                                             normalize=normalize), "sigmoid loss")


def log_sigmoid_loss(U, V, t, b, *, normalize: bool = False):
    """log L_sig(sum), computed in the log domain so it stays finite when the loss underflows.

    For a constellation with margin m* the summed loss behaves like exp(-t m*): at t m* > 745 it is
    0.0 in float64, while its logarithm is about -t m*. Used to check claim C1 at large t.
    """
    _check_embeddings(U, V, normalize)
    check_scalar(t, "t (inverse temperature)", low=0.0)
    check_scalar(b, "b (bias)")
    _check_parameter(t, "t (inverse temperature)", U, V)
    _check_parameter(b, "b (bias)", U, V)
    return _finite_result(_log_sigmoid_loss_core(_as_float(U), _as_float(V), t, b, normalize=normalize),
                          "log sigmoid loss")


def synchronization_graph(k: int, graph: str | Sequence[tuple[int, int]] = "complete") -> tuple[tuple[int, int], ...]:
    """Edges of a synchronization graph on k modalities: "complete", "star" (centre 0) or explicit edges."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"a synchronization graph needs k >= 2 modalities; got k = {k!r}")
    if isinstance(graph, str):
        if graph == "complete":
            return tuple((i, j) for i in range(k) for j in range(i + 1, k))
        if graph == "star":
            return tuple((0, j) for j in range(1, k))
        raise ValueError(f"graph must be one of {GRAPHS} or a sequence of edges (i, j); got {graph!r}")
    edges = tuple((int(i), int(j)) for i, j in graph)
    if not edges:
        raise ValueError("the synchronization graph has no edges")
    for i, j in edges:
        if not (0 <= i < k and 0 <= j < k) or i == j:
            raise ValueError(f"edge ({i}, {j}) is not an edge between two distinct modalities in 0..{k - 1}")
    return edges


def multimodal_sigmoid_loss(embeddings, t, bias, *, graph="complete", parameterization: str = "standard",
                            reduction: str = "sum", edge_reduction: str = "sum", normalize: bool = False):
    """k-modality sigmoid loss: the pairwise loss summed (or averaged) over the edges of a graph.

    L = sum_{(a, c) in E} L(U^(a), U^(c)) with shared t and bias; ``parameterization`` says whether
    ``bias`` is b ("standard") or b_rel ("relative_bias"). ``reduction`` applies to each edge's loss
    as in :func:`sigmoid_loss` ("sum", "per_example" = sum / N, "mean" = sum / N^2), so with
    ``edge_reduction="sum"`` the reductions again satisfy sum = N * per_example = N^2 * mean.

    Args:
      embeddings: (k, N, d) array, or a sequence of k (N, d) arrays of unit rows (k >= 2).
      graph: "complete", "star" (modality 0 at the centre) or a sequence of edges (a, c).
      edge_reduction: "sum" over edges (theory.md) or "mean" (the paper's E3 code).
    """
    if parameterization not in ("standard", "relative_bias"):
        raise ValueError(f"parameterization must be 'standard' or 'relative_bias'; got {parameterization!r}")
    if edge_reduction not in ("sum", "mean"):
        raise ValueError(f"edge_reduction must be 'sum' or 'mean'; got {edge_reduction!r}")
    _check_reduction(reduction, ("sum", "per_example", "mean"))
    if isinstance(embeddings, (list, tuple)):
        if len(embeddings) < 2:
            raise ValueError(f"need at least k = 2 modalities; got {len(embeddings)}")
        for a, X in enumerate(embeddings):
            check_matrix(X, f"embeddings[{a}]", min_rows=2)
        if len({np.shape(X) for X in embeddings}) != 1:
            raise ValueError(f"all modalities must have the same shape (N, d); got {[np.shape(X) for X in embeddings]}")
        embeddings = jnp.stack([jnp.asarray(X) for X in embeddings])
    if jnp.ndim(embeddings) != 3:
        raise ValueError(f"embeddings must have shape (k, N, d); got {jnp.shape(embeddings)}")
    k = embeddings.shape[0]
    edges = synchronization_graph(k, graph)
    for a in range(k):
        _check_embeddings(embeddings[a], embeddings[a], normalize, names=(f"embeddings[{a}]",) * 2)
    check_scalar(t, "t (inverse temperature)", low=0.0)
    check_scalar(bias, "bias")
    _check_parameter(t, "t (inverse temperature)", embeddings[0], embeddings[0])
    _check_parameter(bias, "bias", embeddings[0], embeddings[0])
    if parameterization == "relative_bias" and is_concrete(t) and is_concrete(bias):
        _check_parameter(float(t) * float(bias), "b = -t * b_rel", embeddings[0], embeddings[0])
    embeddings = _as_float(embeddings)
    t = _as_float(t)
    b = -t * bias if parameterization == "relative_bias" else bias
    total = sum(_sigmoid_loss_core(embeddings[a], embeddings[c], t, b, reduction=reduction, normalize=normalize)
                for a, c in edges)
    return _finite_result(total / len(edges) if edge_reduction == "mean" else total, "multimodal sigmoid loss")


def softmax_loss_from_logits(logits, *, reduction: str = "per_example"):
    """Softmax (CLIP) loss of a square (N, N) logit matrix with the positives on its diagonal.

    Per example i: L_i = (logsumexp_j logit_ij - logit_ii + logsumexp_j logit_ji - logit_ii) / 2.
    ``reduction``: "per_example" (default, CLIP's) = sum_i L_i / N, "sum" = sum_i L_i,
    "mean" = sum_i L_i / N^2 (as for every loss of this module), or "none" -> the (N,) L_i.
    """
    _check_reduction(reduction)
    logits = _check_logits(logits)
    if logits.ndim != 2 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"the softmax loss needs a square (N, N) logit matrix; got shape {logits.shape}")
    row = jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits)
    col = jax.nn.logsumexp(logits, axis=0) - jnp.diagonal(logits)
    return _reduce((row + col) / 2, reduction, logits.shape[0])


@partial(jax.jit, static_argnames=("reduction", "normalize"))
def _softmax_loss_core(U, V, t, reduction="per_example", normalize=False):
    if normalize:
        U, V = normalize_rows_safe(U), normalize_rows_safe(V)
    logits = jnp.asarray(t, jnp.result_type(U, V)) * (U @ V.T)
    return softmax_loss_from_logits(logits, reduction=reduction)


def softmax_loss(U, V, t, *, reduction: str = "per_example", normalize: bool = False):
    """Softmax contrastive loss (CLIP / InfoNCE) with inverse temperature t.

    L_i = ( -log softmax_j(t s_ij)[i] - log softmax_j(t s_ji)[i] ) / 2, the average of the
    U->V (row) and V->U (column) cross-entropies with the matching index as the class.

    Args:
      reduction: "per_example" (default, CLIP's) = sum_i L_i / N; "sum" = sum_i L_i; "mean" =
        sum_i L_i / N^2 (as for every loss of this module); "none" -> the (N,) L_i.
    """
    _check_reduction(reduction)
    _check_embeddings(U, V, normalize)
    check_scalar(t, "t (inverse temperature)", low=0.0)
    _check_parameter(t, "t (inverse temperature)", U, V)
    return _finite_result(_softmax_loss_core(_as_float(U), _as_float(V), t, reduction=reduction, normalize=normalize),
                          "softmax loss")


@partial(jax.jit, static_argnames=("reduction",))
def _triplet_loss_core(U, V, alpha, reduction="sum"):
    pos = jnp.sum((U - V) ** 2, axis=1)                                     # |U_i - V_i|^2
    dist = jnp.sum(U**2, 1)[:, None] + jnp.sum(V**2, 1)[None, :] - 2 * U @ V.T  # |U_i - V_j|^2
    terms = jax.nn.relu(pos[:, None] - dist + alpha)
    terms = jnp.where(jnp.eye(U.shape[0], dtype=bool), 0.0, terms)
    return _reduce(terms, reduction, U.shape[0])


def triplet_loss(U, V, alpha, *, reduction: str = "sum"):
    """Triplet loss sum_{i != j} max(0, |U_i - V_i|^2 - |U_i - V_j|^2 + alpha) (theory.md, C12).

    "sum" adds the N^2 terms (zero on the diagonal), "per_example" = sum / N, "mean" = sum / N^2;
    "none" returns the (N, N) matrix of terms.
    """
    _check_reduction(reduction)
    _check_embeddings(U, V, normalize=True, unit=False)
    check_scalar(alpha, "alpha (triplet margin)", low=0.0)
    _check_parameter(alpha, "alpha (triplet margin)", U, V)
    return _finite_result(_triplet_loss_core(_as_float(U), _as_float(V), alpha, reduction=reduction), "triplet loss")
