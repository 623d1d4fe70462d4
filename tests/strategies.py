"""Hypothesis strategies for paired embeddings, with the hard cases the claims care about.

Each configuration is drawn as a small recipe (family, N, d, seed and parameters) and built with a
NumPy generator, so hypothesis can shrink the recipe. Families:

- ``code``: U = V = X for a set X of distinct unit vectors (random, simplex-like or
  cross-polytope), a constellation with m* = (1 - max_{i != j} <X_i, X_j>) / 2 (theory.md s.3).
- ``near_duplicate``: a code with one pair of points at a tiny angle, so m* is barely positive.
- ``lifted``: the double-constant family U_i = (delta X_i, c), V_i = (delta X_i, -c), c = sqrt(1 - delta^2)
  (C14), a constellation with a relative bias far from 1 - m.
- ``perturbed``: U_i, V_i both within a geodesic radius r < theta_min / 4 of X_i (theta_min the
  smallest angle of the code), which keeps m* > 0 by the triangle inequality: s_ii >= cos 2r >
  cos(theta_min - 2r) >= s_ij. r is drawn up to 0.999 of the limit, so margins come close to 0.

Non-constellations (m* <= 0, for claim C2):

- ``duplicate``: U = V = X with a repeated row (m* = 0 exactly: the boundary case).
- ``swapped``: V = X with two rows exchanged (a positive pair below a negative one).
- ``antipodal``: V = -U.
- ``gaussian``: independent random rows with N >= d + 2, kept only when m* <= 0.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from constellations import margin_and_relative_bias


def normalize(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def random_unit(rng, n, d):
    return normalize(rng.standard_normal((n, d)))


def _code(rng, n, d, kind):
    if kind == "cross" and n <= 2 * d:
        X = np.vstack([np.eye(d), -np.eye(d)])[:n]
    elif kind == "orthonormal" and n <= d:
        X = np.eye(d)[:n]
    else:
        X = random_unit(rng, n, d)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))  # random rotation: no axis-aligned luck
    return X @ Q


def _max_off_diagonal(X):
    G = X @ X.T
    np.fill_diagonal(G, -np.inf)
    return float(G.max())


def _perturb(rng, X, radius):
    """Each row moved by a geodesic angle <= radius (a rotation towards a random tangent)."""
    T = rng.standard_normal(X.shape)
    T -= np.sum(T * X, axis=1, keepdims=True) * X
    T = normalize(T)
    ang = rng.uniform(0, radius, size=(len(X), 1))
    return np.cos(ang) * X + np.sin(ang) * T


@st.composite
def constellations(draw, max_n: int = 60, max_d: int = 12):
    """(U, V) with m* > 0 (float64 unit rows), from one of the families in the module docstring."""
    family = draw(st.sampled_from(["code", "near_duplicate", "lifted", "perturbed"]))
    d = draw(st.integers(2, max_d))
    n = draw(st.integers(2, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = _code(rng, n, d, draw(st.sampled_from(["random", "cross", "orthonormal"])))
    if family == "code":
        return X, X.copy()
    if family == "near_duplicate":
        eps = draw(st.floats(1e-5, 1e-2))
        X[1] = normalize((X[0] + eps * normalize(rng.standard_normal((1, d)))[0])[None])[0]
        return X, X.copy()
    if family == "lifted":
        delta = draw(st.floats(0.05, 1.0))
        c = np.sqrt(max(1 - delta**2, 0.0))
        col = np.full((n, 1), c)
        return np.hstack([delta * X, col]), np.hstack([delta * X, -col])
    alpha = _max_off_diagonal(X)
    limit = np.arccos(np.clip(alpha, -1, 1)) / 2  # half the smallest angle between code points
    frac = draw(st.floats(0.0, 0.999))
    # two perturbations of angle < limit/2 each: |angle(U_i, V_j)| stays > 0 apart for i != j
    return _perturb(rng, X, frac * limit / 2), _perturb(rng, X, frac * limit / 2)


@st.composite
def non_constellations(draw, max_n: int = 60, max_d: int = 12):
    """(U, V) with m* <= 0 (including the boundary m* = 0), float64 unit rows."""
    family = draw(st.sampled_from(["duplicate", "swapped", "antipodal", "gaussian"]))
    d = draw(st.integers(2, max_d))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if family == "gaussian":
        n = draw(st.integers(d + 2, max(max_n, d + 2)))
        U, V = random_unit(rng, n, d), random_unit(rng, n, d)
        if margin_and_relative_bias(U, V)[0] > 0:
            V[[0, 1]] = U[[1, 0]]  # force a violation while keeping the random bulk
        return U, V
    n = draw(st.integers(2, max_n))
    X = _code(rng, n, d, "random")
    if family == "duplicate":
        k, l = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if k == l:
            l = (k + 1) % n
        X[l] = X[k]
        return X, X.copy()
    if family == "swapped":
        V = X.copy()
        V[[0, 1]] = V[[1, 0]]
        return X, V
    return X, -X


@st.composite
def embedding_pairs(draw, max_n: int = 40, max_d: int = 10):
    """Any (U, V) of unit rows: constellations, non-constellations, or plain random pairs."""
    kind = draw(st.sampled_from(["constellation", "non", "random"]))
    if kind == "constellation":
        return draw(constellations(max_n, max_d))
    if kind == "non":
        return draw(non_constellations(max_n, max_d))
    n, d = draw(st.integers(2, max_n)), draw(st.integers(1, max_d))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return random_unit(rng, n, d), random_unit(rng, n, d)
