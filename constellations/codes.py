"""Explicit spherical codes (lower bounds on A(n, s)) and a blocked maximal-inner-product check.

Every construction returns a float64 array of shape (N, n) whose rows are unit vectors in R^n; its
maximal inner product s(C) = max_{i != j} <C_i, C_j> is an exact rational or algebraic number,
listed below and verified in ``tests/test_codes.py``. Through U = V = C each code is a
((1 - s)/2, (1 + s)/2)-constellation (``theory.md`` section 3).

| construction | N | n | s(C) |
|---|---|---|---|
| ``simplex(n)`` | n + 1 | n | -1/n |
| ``cross_polytope(n)`` | 2n | n | 0 (-1 for n = 1) |
| ``regular_polygon(N)`` | N | 2 | cos(2 pi / N) |
| ``hypercube(n)`` | 2^n | n | 1 - 2/n |
| ``hamming(r)``, ``extended_hamming(r)`` | 2^(2^r-1-r), same | 2^r - 1, 2^r | 1 - 6/n, 1 - 8/n |
| ``nordstrom_robinson()`` | 256 | 16 | 1/4 |
| ``golay()`` | 4096 | 24 | 1/3 |
| ``d_n_roots(n)`` | 2n(n - 1) | n | 1/2 (n >= 3) |
| ``e6()``, ``e7()``, ``e8()`` | 72, 126, 240 | 6, 7, 8 | 1/2 |
| ``leech()`` | 196560 | 24 | 1/2 |
| ``icosahedron()``, ``six_hundred_cell()`` | 12, 120 | 3, 4 | 1/sqrt 5, (1 + sqrt 5)/4 |
| ``random_greedy_code(n, s, seed=...)`` | random | n | <= s |

A binary code of length n, M words and minimum Hamming distance d maps (0 -> +1, 1 -> -1, scale
1/sqrt n) to M unit vectors with s = 1 - 2d/n.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy.linalg import null_space

from ._validation import as_unit_rows, check_int, check_matrix, check_scalar
from .geometry import iter_inner_product_blocks

#: Largest number of points a construction will build (2^21 rows of float64 is 16 MiB per column).
MAX_POINTS = 2**21
#: Bytes of inner products held at once by :func:`max_inner_product` (one tile).
TILE_BYTES = 16 * 2**20

_GOLDEN = (1 + math.sqrt(5)) / 2


def _unit(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _check_dim(n, name: str = "n (the dimension)", low: int = 1) -> int:
    return check_int(n, name, low=low)


# ------------------------------------------------------------------------------ simple families


def simplex(n: int) -> np.ndarray:
    """The regular simplex: n + 1 unit vectors in R^n with all inner products -1/n.

    The vertices e_i - (1/(n+1)) 1 of the sum-zero hyperplane of R^{n+1}, written in the
    orthonormal Helmert basis h_j = (1, ..., 1, -j, 0, ...) / sqrt(j (j + 1)), j = 1..n.
    """
    n = _check_dim(n)
    H = np.zeros((n, n + 1))
    for j in range(1, n + 1):
        H[j - 1, :j] = 1.0
        H[j - 1, j] = -j
        H[j - 1] /= math.sqrt(j * (j + 1))
    return _unit(H.T)  # row i = coordinates of e_i (its component in the hyperplane) in the Helmert basis


def cross_polytope(n: int) -> np.ndarray:
    """+-e_i: 2n unit vectors in R^n, maximal inner product 0 (optimal for s = 0, Rankin)."""
    n = _check_dim(n)
    return np.vstack([np.eye(n), -np.eye(n)])


def regular_polygon(N: int) -> np.ndarray:
    """N equally spaced unit vectors in R^2 (N >= 2), maximal inner product cos(2 pi / N): A(2, s) exactly."""
    N = check_int(N, "N (the number of points)", low=2)
    angles = 2 * np.pi * np.arange(N) / N
    return np.column_stack([np.cos(angles), np.sin(angles)])


def hypercube(n: int) -> np.ndarray:
    """{+-1}^n / sqrt(n): 2^n unit vectors, maximal inner product 1 - 2/n (n <= 21)."""
    n = _check_dim(n)
    if 2**n > MAX_POINTS:
        raise ValueError(f"hypercube({n}) would have 2^{n} points, more than MAX_POINTS = {MAX_POINTS}")
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return binary_code_points(bits)


# ---------------------------------------------------------------------------------- binary codes


def binary_code_points(codewords) -> np.ndarray:
    """Map a binary code (M, n) of 0/1 entries to M unit vectors (-1)^c / sqrt(n).

    Distinct words at Hamming distance d get inner product 1 - 2d/n, so a code of minimum
    distance d gives maximal inner product 1 - 2d/n.
    """
    C = np.asarray(codewords)
    check_matrix(C, "codewords")
    if not np.all((C == 0) | (C == 1)):
        raise ValueError("codewords must contain only 0 and 1")
    return (1.0 - 2.0 * C.astype(np.float64)) / math.sqrt(C.shape[1])


def _span_gf2(generator: np.ndarray) -> np.ndarray:
    """All 2^k codewords (rows) of the binary linear code with the (k, n) generator matrix."""
    k = generator.shape[0]
    messages = (np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1
    return (messages @ generator) % 2


def hamming_codewords(r: int = 3) -> np.ndarray:
    """The binary Hamming code [2^r - 1, 2^r - 1 - r, 3] (2 <= r <= 4) as a 0/1 array of codewords.

    The parity-check matrix has all nonzero vectors of F_2^r as columns; codewords span its null space.
    """
    r = check_int(r, "r", low=2)
    if r > 4:
        raise ValueError(f"hamming_codewords(r={r}) would have 2^{2**r - 1 - r} words; r <= 4 is supported")
    n = 2**r - 1
    H = ((np.arange(1, n + 1)[None, :] >> np.arange(r)[:, None]) & 1)  # columns: binary of 1..n
    # Systematic generator: data positions are the non-powers of two; parity bits sit at 2^i.
    data = [j for j in range(1, n + 1) if j & (j - 1)]
    G = np.zeros((len(data), n), dtype=np.int64)
    for row, j in enumerate(data):
        G[row, j - 1] = 1
        for i in range(r):
            if (j >> i) & 1:
                G[row, 2**i - 1] = 1
    assert not np.any((G @ H.T) % 2), "Hamming generator must satisfy the parity checks"
    return _span_gf2(G).astype(np.uint8)


def extended_hamming_codewords(r: int = 3) -> np.ndarray:
    """The extended Hamming code [2^r, 2^r - 1 - r, 4]: Hamming words plus an overall parity bit."""
    C = hamming_codewords(r)
    return np.hstack([C, C.sum(axis=1, keepdims=True) % 2]).astype(np.uint8)


def hamming(r: int = 3) -> np.ndarray:
    """Hamming code points: 2^(2^r-1-r) unit vectors in R^(2^r - 1), s = 1 - 6/(2^r - 1) (r = 3: 16 points, 1/7)."""
    return binary_code_points(hamming_codewords(r))


def extended_hamming(r: int = 3) -> np.ndarray:
    """Extended Hamming points: 2^(2^r-1-r) unit vectors in R^(2^r), s = 1 - 8/2^r (r = 3: 16 in R^8 at 0)."""
    return binary_code_points(extended_hamming_codewords(r))


@lru_cache(maxsize=1)
def _golay() -> np.ndarray:
    g = np.zeros(23, dtype=np.int64)
    g[[0, 2, 4, 5, 6, 10, 11]] = 1  # g(x) = 1 + x^2 + x^4 + x^5 + x^6 + x^10 + x^11
    G = np.array([np.roll(g, i) for i in range(12)])  # x^i g(x), no wrap-around since deg g = 11
    C = _span_gf2(G)
    C = np.hstack([C, C.sum(axis=1, keepdims=True) % 2]).astype(np.uint8)
    C.setflags(write=False)
    return C


def golay_codewords() -> np.ndarray:
    """The extended binary Golay code [24, 12, 8]: 4096 words, weights 0, 8 (759), 12 (2576), 16 (759), 24.

    The cyclic [23, 12, 7] quadratic-residue code generated by
    g(x) = 1 + x^2 + x^4 + x^5 + x^6 + x^10 + x^11, extended by an overall parity bit.
    """
    return _golay().copy()


def golay() -> np.ndarray:
    """Golay code points: 4096 unit vectors in R^24 with maximal inner product 1 - 16/24 = 1/3."""
    return binary_code_points(_golay())


def nordstrom_robinson_codewords() -> np.ndarray:
    """The Nordstrom-Robinson code (16, 256, 6), a nonlinear binary code, from the Golay code.

    Put an octad O on the first 8 coordinates; keep the Golay words whose restriction to O is 0 or
    e_i + e_8 (i = 1..7), and delete those 8 coordinates. (32 Golay words restrict to each of these
    8 patterns, and two kept words differ in at most 2 places on O, hence in >= 6 elsewhere.)
    """
    C = _golay()
    octad = np.flatnonzero(C[np.flatnonzero(C.sum(axis=1) == 8)[0]])
    rest = np.setdiff1d(np.arange(24), octad)
    head, tail = C[:, octad], C[:, rest]
    patterns = [np.zeros(8, dtype=np.uint8)] + [np.eye(8, dtype=np.uint8)[i] + np.eye(8, dtype=np.uint8)[7]
                                                for i in range(7)]
    keep = np.zeros(len(C), dtype=bool)
    for p in patterns:
        keep |= np.all(head == p, axis=1)
    return np.ascontiguousarray(tail[keep])


def nordstrom_robinson() -> np.ndarray:
    """Nordstrom-Robinson points: 256 unit vectors in R^16 with maximal inner product 1 - 12/16 = 1/4."""
    return binary_code_points(nordstrom_robinson_codewords())


# ---------------------------------------------------------------------------------- root systems


def d_n_roots(n: int) -> np.ndarray:
    """The root system D_n (n >= 3): all permutations of (+-1, +-1, 0^{n-2}) / sqrt 2.

    2n(n - 1) points with maximal inner product 1/2 (D_3 = 12, the cuboctahedron; D_4 = 24, the 24-cell).
    """
    n = _check_dim(n, low=3)
    if 2 * n * (n - 1) > MAX_POINTS:
        raise ValueError(f"d_n_roots({n}) would have {2 * n * (n - 1)} points, more than MAX_POINTS")
    i, j = np.triu_indices(n, k=1)
    rows = []
    for si, sj in itertools.product((1.0, -1.0), repeat=2):
        R = np.zeros((len(i), n))
        R[np.arange(len(i)), i] = si
        R[np.arange(len(i)), j] = sj
        rows.append(R)
    return np.vstack(rows) / math.sqrt(2.0)


def _e8_roots_unnormalized() -> np.ndarray:
    """The 240 roots of E8 (norm^2 2): 112 of shape (+-1, +-1, 0^6), 128 (+-1/2)^8 with an even number of minus signs."""
    integral = d_n_roots(8) * math.sqrt(2.0)
    signs = np.array([p for p in itertools.product((0.5, -0.5), repeat=8) if sum(x < 0 for x in p) % 2 == 0])
    return np.vstack([np.rint(integral), signs])


def e8() -> np.ndarray:
    """The E8 root system: 240 unit vectors in R^8 with inner products in {-1, -1/2, 0, 1/2} (tau_8 = 240)."""
    return _e8_roots_unnormalized() / math.sqrt(2.0)


def _roots_orthogonal_to(constraints: np.ndarray) -> np.ndarray:
    R = _e8_roots_unnormalized()
    keep = np.all(np.abs(R @ constraints.T) < 1e-12, axis=1)
    basis = null_space(constraints)  # orthonormal basis of the orthogonal complement
    return _unit(R[keep] @ basis)


def e7() -> np.ndarray:
    """The E7 root system: the 126 E8 roots orthogonal to the root (1/2)^8, in an orthonormal basis of R^7."""
    return _roots_orthogonal_to(np.full((1, 8), 0.5))


def e6() -> np.ndarray:
    """The E6 root system: the 72 E8 roots orthogonal to r1 = (1/2)^8 and r2 = (-1, -1, 0^6) (<r1, r2> = -1), in R^6."""
    return _roots_orthogonal_to(np.array([[0.5] * 8, [-1.0, -1.0] + [0.0] * 6]))


@lru_cache(maxsize=1)
def _leech() -> np.ndarray:
    C = _golay().astype(np.int64)
    parts = []
    # 1. octads with signs (+-2 on the octad), an even number of minus signs: 759 * 128 = 97152
    octads = C[C.sum(axis=1) == 8]
    signs = np.array([p for p in itertools.product((2, -2), repeat=8) if sum(x < 0 for x in p) % 2 == 0])
    pos = np.array([np.flatnonzero(o) for o in octads])  # (759, 8)
    V = np.zeros((len(octads), len(signs), 24))
    V[np.arange(len(octads))[:, None, None], np.arange(len(signs))[None, :, None], pos[:, None, :]] = signs[None, :, :]
    parts.append(V.reshape(-1, 24))
    # 2. (-1)^c with the j-th entry replaced by -3 (-1)^{c_j}: 4096 * 24 = 98304
    base = 1 - 2 * C  # (-1)^c
    W = np.repeat(base[:, None, :], 24, axis=1).astype(np.float64)
    j = np.arange(24)
    W[:, j, j] *= -3
    parts.append(W.reshape(-1, 24))
    # 3. (+-4, +-4, 0^22): 276 * 4 = 1104
    parts.append(4.0 * np.rint(d_n_roots(24) * math.sqrt(2.0)))
    X = np.vstack(parts) / math.sqrt(32.0)
    X.setflags(write=False)
    return X


def leech() -> np.ndarray:
    """The 196,560 minimal vectors of the Leech lattice, unit-normalized: tau_24 = 196560 at s = 1/2.

    Built from the extended Golay code (coordinates scaled to norm^2 32, then divided by sqrt 32):
    (i) +-2 on an octad with an even number of minus signs (97152); (ii) (-1)^c for a Golay word c
    with one entry j replaced by -3 (-1)^{c_j} (98304); (iii) (+-4, +-4, 0^22) (1104). Inner
    products lie in {-1, -1/2, -1/4, 0, 1/4, 1/2}.
    """
    return _leech().copy()


# ------------------------------------------------------------------------------------- polytopes


def icosahedron() -> np.ndarray:
    """The 12 vertices of the icosahedron, cyclic permutations of (0, +-1, +-phi): s = 1/sqrt 5 (Tammes N = 12)."""
    base = np.array([[0.0, a, b * _GOLDEN] for a in (1, -1) for b in (1, -1)])
    return _unit(np.vstack([np.roll(base, k, axis=1) for k in range(3)]))


def six_hundred_cell() -> np.ndarray:
    """The 120 vertices of the 600-cell in R^4: s = cos 36 deg = (1 + sqrt 5)/4 (A(4, s) = 120).

    8 of the form (+-1, 0, 0, 0), 16 of the form (+-1/2)^4, and 96 even permutations of
    (+-phi, +-1, +-1/phi, 0) / 2.
    """
    pts = [np.vstack([np.eye(4), -np.eye(4)]), np.array(list(itertools.product((0.5, -0.5), repeat=4)))]
    even = [p for p in itertools.permutations(range(4))
            if sum(p[i] > p[j] for i in range(4) for j in range(i + 1, 4)) % 2 == 0]
    for sa, sb, sc in itertools.product((1, -1), repeat=3):
        v = np.array([sa * _GOLDEN, sb * 1.0, sc / _GOLDEN, 0.0]) / 2
        pts.append(np.array([[v[p.index(i)] for i in range(4)] for p in even]))
    return _unit(np.vstack(pts))


# ----------------------------------------------------------------------------------- random codes


def random_greedy_code(n: int, s: float, *, max_points: int = 10_000, max_failures: int = 2_000,
                       seed: int = 0, batch: int = 256) -> np.ndarray:
    """Greedy random code: accept uniform random points whose inner products with all accepted ones are <= s.

    Stops after ``max_failures`` consecutive rejections or at ``max_points`` points. A truly maximal
    code would reach the Chabauty-Shannon-Wyner size 1/mu_n(arccos s); this is its randomized,
    seeded approximation (the maximal inner product is <= s by construction).

    Args:
      n: dimension (>= 1).
      s: maximal inner product in [-1, 1).
      max_points, max_failures, batch: stopping rules and candidates drawn per step.
      seed: NumPy generator seed.
    """
    n = _check_dim(n)
    if isinstance(s, bool):
        raise ValueError(f"s must be a real number in [-1, 1); got {s!r}")
    check_scalar(s, "s (the maximal inner product)", low=-1.0, high=1.0, high_open=True)
    s = float(s)
    max_points = check_int(max_points, "max_points", low=1)
    max_failures = check_int(max_failures, "max_failures", low=1)
    batch = check_int(batch, "batch", low=1)
    rng = np.random.default_rng(check_int(seed, "seed", low=0))
    code = np.empty((max_points, n))
    count, failures = 0, 0
    while count < max_points and failures < max_failures:
        X = _unit(rng.standard_normal((batch, n)))
        ok = np.ones(batch, dtype=bool) if count == 0 else (X @ code[:count].T).max(axis=1) <= s
        start = count
        for i in range(batch):
            if ok[i] and (count == start or np.max(code[start:count] @ X[i]) <= s):
                code[count] = X[i]
                count += 1
                failures = 0
                if count == max_points:
                    break
            else:
                failures += 1
                if failures >= max_failures:
                    break
    return code[:count].copy()


# ------------------------------------------------------------------------- max inner product


def max_inner_product(C, *, tile_rows: int | None = None) -> float:
    """s(C) = max_{i < j} <C_i, C_j> for unit rows C (N >= 2), in tiles: never the full Gram matrix.

    The Gram matrix is symmetric, so only tiles on or right of the diagonal are formed
    (:func:`constellations.geometry.iter_inner_product_blocks` with ``upper=True``: C[I] @ C[J].T for
    row block I and column blocks J >= I, the lower triangle of the diagonal tile masked): half the
    multiply-adds of C @ C.T, memory O(tile) (``TILE_BYTES``). float64
    throughout; each inner product is a BLAS dot of length n, accurate to about n * 1e-16, enough
    to confirm values such as 1/2 or 1/3 to 1e-14.

    Args:
      C: (N, n) array of unit rows (checked to 1e-6), N >= 2.
      tile_rows: rows (and columns) per tile; default from ``TILE_BYTES``.
    """
    check_matrix(C, "C", min_rows=2)
    C = np.ascontiguousarray(as_unit_rows(C, "C"))
    b = None if tile_rows is None else check_int(tile_rows, "tile_rows", low=1)
    best = -math.inf
    lower = None
    for i0, j0, S in iter_inner_product_blocks(C, C, block_bytes=TILE_BYTES, rows=b, upper=True):
        if j0 == i0:
            r = S.shape[0]
            if lower is None or len(lower) < r:
                lower = np.tril(np.ones((r, r), dtype=bool))
            S[:, :r][lower[:r, :r]] = -np.inf  # j <= i: the diagonal and pairs counted elsewhere
        best = max(best, float(S.max()))
    return best


# ------------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Construction:
    """An explicit code: its name, dimension, size and exact maximal inner product, and how to build it."""

    name: str
    dimension: int
    size: int
    max_inner_product: float
    build: Callable[[], np.ndarray]


def constructions_in_dimension(n: int, *, N: int | None = None) -> list[Construction]:
    """The codes of this module that live in R^n, with their sizes and maximal inner products.

    ``N`` adds the regular N-gon when n = 2 (the polygon family is indexed by its size).
    Families whose size exceeds ``MAX_POINTS`` are listed only while they can be built.
    """
    n = _check_dim(n)
    out = [
        Construction(f"simplex({n})", n, n + 1, -1.0 / n, lambda: simplex(n)),
        Construction(f"cross_polytope({n})", n, 2 * n, 0.0 if n >= 2 else -1.0, lambda: cross_polytope(n)),
    ]
    if 2**n <= MAX_POINTS:
        out.append(Construction(f"hypercube({n})", n, 2**n, 1.0 - 2.0 / n, lambda: hypercube(n)))
    if n == 2 and N is not None and N >= 3:
        out.append(Construction(f"regular_polygon({N})", 2, N, math.cos(2 * math.pi / N), lambda: regular_polygon(N)))
    if 3 <= n and 2 * n * (n - 1) <= MAX_POINTS:
        out.append(Construction(f"d_n_roots({n})", n, 2 * n * (n - 1), 0.5, lambda: d_n_roots(n)))
    sporadic = {
        3: [Construction("icosahedron()", 3, 12, 1 / math.sqrt(5), icosahedron)],
        4: [Construction("six_hundred_cell()", 4, 120, (1 + math.sqrt(5)) / 4, six_hundred_cell)],
        6: [Construction("e6()", 6, 72, 0.5, e6)],
        7: [Construction("e7()", 7, 126, 0.5, e7), Construction("hamming(3)", 7, 16, 1 / 7, lambda: hamming(3))],
        8: [Construction("e8()", 8, 240, 0.5, e8),
            Construction("extended_hamming(3)", 8, 16, 0.0, lambda: extended_hamming(3))],
        15: [Construction("hamming(4)", 15, 2048, 0.6, lambda: hamming(4))],
        16: [Construction("extended_hamming(4)", 16, 2048, 0.5, lambda: extended_hamming(4)),
             Construction("nordstrom_robinson()", 16, 256, 0.25, nordstrom_robinson)],
        24: [Construction("golay()", 24, 4096, 1 / 3, golay), Construction("leech()", 24, 196560, 0.5, leech)],
    }
    return out + sporadic.get(n, [])


def best_construction(N: int, s: float, *, n_max: int = 100_000) -> tuple[int, str] | None:
    """(n, name): the smallest n in which a construction here has >= N points with maximal inner
    product <= s (compared as floats: the irrational and non-binary values are their nearest
    float64); None if none up to n_max.

    Any N of its points then form the code (padding with zeros embeds it in every larger n). The
    families are solved for n in closed form (simplex: n = N - 1 if -1/(N-1) <= s; cross-polytope:
    n = ceil(N/2) if s >= 0; hypercube: log2 N <= n <= 2/(1 - s); D_n: 2n(n-1) >= N if s >= 1/2;
    the polygon in n = 2; the sporadic codes in their dimensions). A family member may be too
    large to build (``MAX_POINTS``) even though it is listed.
    """
    N = check_int(N, "N (the number of points)", low=1)
    check_scalar(s, "s (the maximal inner product)", low=-1.0, high=1.0, high_open=True)
    s = float(s)
    n_max = check_int(n_max, "n_max", low=1)
    if N == 1:
        return 1, "a single point"
    options = []
    if N == 2:
        options.append((1, "cross_polytope(1)"))
    if N >= 3 and math.cos(2 * math.pi / N) <= s:
        options.append((2, f"regular_polygon({N})"))
    if -1.0 / (N - 1) <= s:
        options.append((N - 1, f"simplex({N - 1})"))
    if s >= 0:
        d = max(2, math.ceil(N / 2))
        options.append((d, f"cross_polytope({d})"))
    d = max(1, math.ceil(math.log2(N) - 1e-12))
    while 2**d < N:
        d += 1
    if 1.0 - 2.0 / d <= s:
        options.append((d, f"hypercube({d})"))
    if s >= 0.5:
        d = 3
        while 2 * d * (d - 1) < N:
            d += 1
        options.append((d, f"d_n_roots({d})"))
    families = ("simplex", "cross_polytope", "hypercube", "d_n_roots", "regular_polygon")  # solved above
    for d in (3, 4, 6, 7, 8, 15, 16, 24):
        options += [(d, c.name) for c in constructions_in_dimension(d)
                    if c.size >= N and c.max_inner_product <= s and not c.name.startswith(families)]
    options = [o for o in options if o[0] <= n_max]
    return min(options) if options else None
