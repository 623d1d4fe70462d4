"""NumPy references for the JAX losses of :mod:`constellations.loss`, values and gradients.

Written for clarity, not speed, in float64, straight from the formulas of ``theory.md`` section 2
(softplus via ``np.logaddexp`` so the references are as stable as the JAX code). Tests compare the
JAX functions against these; the analytic gradients here are checked against finite differences.
"""

from __future__ import annotations

import numpy as np


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    # stable for large |x|
    return np.exp(-np.logaddexp(0.0, -x))


def labels(n: int) -> np.ndarray:
    return 2.0 * np.eye(n) - 1.0


def _reduce(terms, reduction, n):
    if reduction == "none":
        return terms
    total = float(np.sum(terms))
    return {"sum": total, "per_example": total / n, "mean": total / (n * n)}[reduction]


def sigmoid_loss(U, V, t, b, reduction="sum"):
    U, V = np.asarray(U, np.float64), np.asarray(V, np.float64)
    x = t * (U @ V.T) + b
    return _reduce(_softplus(-labels(len(U)) * x), reduction, len(U))


def relative_bias_loss(U, V, t, b_rel, reduction="sum"):
    return sigmoid_loss(U, V, t, -t * b_rel, reduction)


def log_softplus(x):
    """log(log(1 + e^x)), finite where softplus underflows: x + log1p(-e^x/2 + e^{2x}/3) for x < -20."""
    x = np.asarray(x, dtype=np.float64)
    small = x < -20
    xs = np.where(small, x, -20.0)
    ex = np.exp(xs)
    return np.where(small, xs + np.log1p(-ex / 2 + ex * ex / 3), np.log(_softplus(np.where(small, 0.0, x))))


def log_sigmoid_loss(U, V, t, b):
    """log of the summed loss: log-sum-exp of the log softplus terms (finite when the loss underflows)."""
    U, V = np.asarray(U, np.float64), np.asarray(V, np.float64)
    logs = log_softplus(-labels(len(U)) * (t * (U @ V.T) + b))
    top = logs.max()
    return float(top + np.log(np.sum(np.exp(logs - top))))


def sigmoid_loss_grad(U, V, t, b):
    """Analytic gradient of the summed L_sig w.r.t. (U, V, t, b).

    With x_ij = t s_ij + b and G_ij = dL/dx_ij = -z_ij sigmoid(-z_ij x_ij):
    dL/dU = t G V, dL/dV = t G^T U, dL/dt = sum G * S, dL/db = sum G.
    """
    U, V = np.asarray(U, np.float64), np.asarray(V, np.float64)
    z = labels(len(U))
    S = U @ V.T
    G = -z * _sigmoid(-z * (t * S + b))
    return t * G @ V, t * G.T @ U, float(np.sum(G * S)), float(np.sum(G))


def relative_bias_loss_grad(U, V, t, b_rel):
    """Gradient of the summed L_rb w.r.t. (U, V, t, b_rel), by the chain rule through b = -t b_rel."""
    gU, gV, gt, gb = sigmoid_loss_grad(U, V, t, -t * b_rel)
    return gU, gV, gt - b_rel * gb, -t * gb


def multimodal_sigmoid_loss(embeddings, t, bias, edges, parameterization="standard", reduction="sum",
                            edge_reduction="sum"):
    b = -t * bias if parameterization == "relative_bias" else bias
    total = sum(sigmoid_loss(embeddings[a], embeddings[c], t, b, reduction) for a, c in edges)
    return total / len(edges) if edge_reduction == "mean" else total


def softmax_loss(U, V, t, reduction="per_example"):
    U, V = np.asarray(U, np.float64), np.asarray(V, np.float64)
    x = t * (U @ V.T)
    n = len(U)
    per = np.empty(n)
    for i in range(n):
        row = np.logaddexp.reduce(x[i]) - x[i, i]
        col = np.logaddexp.reduce(x[:, i]) - x[i, i]
        per[i] = (row + col) / 2
    return _reduce(per, reduction, n)


def triplet_loss(U, V, alpha, reduction="sum"):
    U, V = np.asarray(U, np.float64), np.asarray(V, np.float64)
    n = len(U)
    terms = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                terms[i, j] = max(0.0, np.sum((U[i] - V[i]) ** 2) - np.sum((U[i] - V[j]) ** 2) + alpha)
    return _reduce(terms, reduction, n)
