"""Geometry of paired embeddings: inner products, margins, constellations, retrieval, modality gap.

For unit rows U_i, V_i (shape (N, d)), s_ij = <U_i, V_j> (``theory.md`` section 3):

    (U, V) is an (m, b_rel)-constellation  iff  s_ii >= b_rel + m for all i  and  s_ij <= b_rel - m (i != j)
    m*     = (min_i s_ii - max_{i != j} s_ij) / 2      (the largest such m; half the gap)
    b*_rel = (min_i s_ii + max_{i != j} s_ij) / 2      (the threshold attaining it)

Everything here is NumPy in float64 and works on (N, N) inner products in row blocks, so memory
stays O(block * N) (about 64 MiB per block by default) and N = 100,000 fits.
"""

from __future__ import annotations

import sys
import warnings

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy.optimize import linprog

from ._validation import as_unit_rows, check_int, check_margin, check_pair, check_scalar, check_threshold, validated_pair

#: Bytes of float64 inner products held at once by the blocked computations.
BLOCK_BYTES = 64 * 2**20


def rows_per_block(n_cols: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Rows of float64 inner products with ``n_cols`` columns that fit in ``block_bytes`` (at least 1)."""
    block_bytes = check_int(block_bytes, "block_bytes", low=1)
    return max(1, block_bytes // (8 * max(n_cols, 1)))


#: A blocked pass over more inner products than this (about ten seconds here) shows a progress bar on a terminal.
PROGRESS_MIN_ENTRIES = 10**9


def iter_inner_product_blocks(U: np.ndarray, V: np.ndarray, *, block_bytes: int = BLOCK_BYTES,
                              rows: int | None = None, cols: int | None = None, upper: bool = False,
                              progress: bool | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (i, j, S) with S = U[i:i + rows] @ V[j:j + cols].T: the package's one blocked inner product.

    The tiles cover U V^T (row blocks in order, columns in order within a row block) and the whole
    matrix is never formed. Every blocked computation uses this: the statistics of this module,
    :mod:`constellations.analysis` and :func:`constellations.codes.max_inner_product`.

    * Default: row blocks, each tile spans all columns (j = 0, cols = len(V)) and
      rows = :func:`rows_per_block` (len(V), block_bytes), so a tile holds at most ``block_bytes``.
    * ``upper=True`` (U and V the same rows: a Gram matrix, symmetric): only the tiles on and right
      of the diagonal, j = i, i + cols, ...; the tile at j = i holds the block's own diagonal square
      (the caller masks its lower triangle). Tiles are rows x 4 rows with
      rows = max(64, sqrt(block_bytes / 32)) (b x 4b float64 = block_bytes): square-ish tiles keep
      the traffic of reading the (N, n) inputs low when N is large (a code of 196,560 points).

    Args:
      U, V: float64 arrays taken as they are (validate them first).
      block_bytes: memory of one tile of inner products.
      rows, cols: tile shape, overriding the defaults above (>= 1).
      progress: a tqdm bar over the row blocks on stderr: None (default) shows one when the pass covers more
        than :data:`PROGRESS_MIN_ENTRIES` inner products and stderr is a terminal; True / False force it.
    """
    rows = None if rows is None else check_int(rows, "rows", low=1)
    cols = None if cols is None else check_int(cols, "cols", low=1)
    block_bytes = check_int(block_bytes, "block_bytes", low=1)
    n_cols = len(V)
    if upper:
        rows = max(64, int(np.sqrt(block_bytes / 32))) if rows is None else rows
        cols = 4 * rows if cols is None else cols
    else:
        cols = max(n_cols, 1) if cols is None else cols
        rows = rows_per_block(cols, block_bytes) if rows is None else rows
    starts = range(0, len(U), rows)
    if progress is None:
        progress = len(U) * n_cols > PROGRESS_MIN_ENTRIES and sys.stderr.isatty()
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"inner products {len(U):,} x {n_cols:,}", unit="block", leave=False)
    for i in starts:
        for j in range(i if upper else 0, n_cols, cols):
            yield i, j, U[i:i + rows] @ V[j:j + cols].T


def inner_products(U, V, *, normalize: bool = False) -> np.ndarray:
    """The full (N_U, N_V) inner-product matrix s_ij = <U_i, V_j> (float64).

    Builds the whole matrix: for large N use the blocked statistics in this module instead.
    """
    check_pair(U, V, min_rows=1, same_n=False)
    U = as_unit_rows(U, "U", normalize=normalize)
    V = as_unit_rows(V, "V", normalize=normalize)
    return U @ V.T


def positive_inner_products(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """s_ii = <U_i, V_i> for validated arrays (row-wise, exact to float64 rounding)."""
    return np.einsum("ij,ij->i", U, V)


@dataclass(frozen=True)
class ConstellationStats:
    """The inner-product separation of (U, V) and where it is attained.

    Attributes:
      margin: m* = (min_positive - max_negative) / 2 (negative when not a constellation).
      relative_bias: b*_rel = (min_positive + max_negative) / 2.
      min_positive: min_i <U_i, V_i>; attained at ``worst_positive`` (= i).
      max_negative: max_{i != j} <U_i, V_j>; attained at ``worst_negative`` (= (i, j)).
    """

    margin: float
    relative_bias: float
    min_positive: float
    max_negative: float
    worst_positive: int
    worst_negative: tuple[int, int]

    @property
    def full_gap(self) -> float:
        """2 m*, the quantity the paper's appendix tables report."""
        return 2.0 * self.margin


def _positives_and_max_negative(U: np.ndarray, V: np.ndarray, block_bytes: int = BLOCK_BYTES
                                ) -> tuple[np.ndarray, float, tuple[int, int]]:
    """s_ii and max_{i != j} s_ij (with where it is attained), all read from the same blocked products.

    Taking s_ii from the block (not from a separate row-wise dot product) keeps ties exact: a duplicated
    point gives s_ii == s_ij bit for bit, so m* = 0 and a tie in retrieval are not broken by rounding.
    """
    pos = np.empty(len(U))
    best, where = -np.inf, (0, 1)
    for start, _, S in iter_inner_product_blocks(U, V, block_bytes=block_bytes):
        rows = np.arange(S.shape[0])
        pos[start:start + len(rows)] = S[rows, start + rows]
        S[rows, start + rows] = -np.inf  # the positives are not negatives
        flat = int(np.argmax(S))
        i, j = divmod(flat, S.shape[1])
        if S[i, j] > best:
            best, where = float(S[i, j]), (start + i, j)
    return pos, best, where


def constellation_statistics(U, V, *, normalize: bool = False, block_bytes: int = BLOCK_BYTES) -> ConstellationStats:
    """m*, b*_rel and the extreme pairs of (U, V), computed in row blocks (memory O(block * N)).

    Args:
      U, V: (N, d) arrays of unit rows, N >= 2 (rows checked to 1e-6 unless ``normalize=True``).
    """
    block_bytes = check_int(block_bytes, "block_bytes", low=1)
    U, V = validated_pair(U, V, normalize=normalize)
    pos, max_neg, where = _positives_and_max_negative(U, V, block_bytes)
    i_pos = int(np.argmin(pos))
    min_pos = float(pos[i_pos])
    return ConstellationStats(
        margin=(min_pos - max_neg) / 2,
        relative_bias=(min_pos + max_neg) / 2,
        min_positive=min_pos,
        max_negative=max_neg,
        worst_positive=i_pos,
        worst_negative=where,
    )


def margin_and_relative_bias(U, V, *, normalize: bool = False) -> tuple[float, float]:
    """(m*, b*_rel): the largest margin m for which (U, V) is an (m, b_rel)-constellation, and its b_rel.

    m* = (min_i s_ii - max_{i != j} s_ij) / 2 and b*_rel = (min_i s_ii + max_{i != j} s_ij) / 2
    (theory.md section 3). m* > 0 iff the inner products separate; m* is half the gap, the paper's
    tables report 2 m*.

    Example:
      >>> import numpy as np
      >>> margin_and_relative_bias(np.eye(3), np.eye(3))   # the orthonormal code: s_ii = 1, s_ij = 0
      (0.5, 0.5)
    """
    stats = constellation_statistics(U, V, normalize=normalize)
    return stats.margin, stats.relative_bias


def is_constellation(U, V, m, b_rel, *, atol: float = 1e-12, normalize: bool = False) -> bool:
    """Whether s_ii >= b_rel + m for all i and s_ij <= b_rel - m for all i != j (within ``atol``).

    Args:
      m: margin, in [0, 1].
      b_rel: relative bias (a cosine threshold), in [-1, 1].
      atol: slack allowed on each inequality (for float rounding).
    """
    check_margin(m)
    check_threshold(b_rel, "b_rel (relative bias)")
    check_scalar(atol, "atol", low=0.0)
    stats = constellation_statistics(U, V, normalize=normalize)
    return bool(stats.min_positive >= b_rel + m - atol and stats.max_negative <= b_rel - m + atol)


# ----------------------------------------------------------------------------------------------
# Retrieval.


@dataclass(frozen=True)
class RetrievalResult:
    """Nearest-neighbour retrieval between paired embeddings.

    Attributes:
      u_to_v_gap: (N,) s_ii - max_{j != i} s_ij: > 0 iff V_i is the unique nearest V of U_i.
      v_to_u_gap: (N,) s_ii - max_{j != i} s_ji: > 0 iff U_i is the unique nearest U of V_i.
      u_to_v_accuracy, v_to_u_accuracy: the fractions with a positive gap (ties count as wrong).
      min_gap: the smallest gap in either direction (>= 2 m*, claim C3).
    """

    u_to_v_gap: np.ndarray
    v_to_u_gap: np.ndarray

    @property
    def u_to_v_accuracy(self) -> float:
        return float(np.mean(self.u_to_v_gap > 0))

    @property
    def v_to_u_accuracy(self) -> float:
        return float(np.mean(self.v_to_u_gap > 0))

    @property
    def min_gap(self) -> float:
        return float(min(self.u_to_v_gap.min(), self.v_to_u_gap.min()))

    @property
    def all_correct(self) -> bool:
        return bool(self.min_gap > 0)


def retrieval(U, V, *, normalize: bool = False, block_bytes: int = BLOCK_BYTES) -> RetrievalResult:
    """Retrieval gaps in both directions, in row blocks (claim C3: m* > 0 implies all gaps >= 2 m*)."""
    block_bytes = check_int(block_bytes, "block_bytes", low=1)
    U, V = validated_pair(U, V, normalize=normalize)
    n = len(U)
    pos = np.empty(n)
    row_best = np.empty(n)
    col_best = np.full(n, -np.inf)
    for start, _, S in iter_inner_product_blocks(U, V, block_bytes=block_bytes):
        rows = np.arange(S.shape[0])
        pos[start:start + len(rows)] = S[rows, start + rows]  # from the same product: ties stay exact
        S[rows, start + rows] = -np.inf
        row_best[start:start + len(rows)] = S.max(axis=1)
        np.maximum(col_best, S.max(axis=0), out=col_best)
    return RetrievalResult(u_to_v_gap=pos - row_best, v_to_u_gap=pos - col_best)


# ----------------------------------------------------------------------------------------------
# Modality gap.


def xi_statistic(U, V, *, normalize: bool = False) -> float:
    """xi = (1/N) sum_i |x_i|^2 - |mean_i x_i|^2 with x_i = U_i - V_i (claim C13, App. E).

    The variance of the differences U_i - V_i: 0 iff all U_i - V_i are equal (a pure shift).
    """
    U, V = validated_pair(U, V, normalize=normalize)
    X = U - V
    mean = X.mean(axis=0)
    return float(max(np.mean(np.sum((X - mean) ** 2, axis=1)), 0.0))


@dataclass(frozen=True)
class Separability:
    """Whether a hyperplane <w, x> = c puts every U_i strictly on one side and every V_j on the other.

    Attributes:
      separable: the verdict.
      certified: True when the verdict is proved (an LP's feasibility or infeasibility, or a
        perceptron's zero-error hyperplane); False for a perceptron that stopped without one.
      normal, offset: a separating hyperplane (w, c) with <w, U_i> > c > <w, V_j> when separable.
      n_misclassified: points on the wrong side of (normal, offset) (0 when separable).
      method: "lp" or "perceptron".
    """

    separable: bool
    certified: bool
    normal: np.ndarray | None
    offset: float | None
    n_misclassified: int
    method: str


def _count_wrong(U, V, w, c) -> int:
    return int(np.sum(U @ w <= c) + np.sum(V @ w >= c))


#: Max-margin LP optima s* at or below this (|w|_inf <= 1 units) count as "not separable".
LP_MARGIN_TOL = 1e-9


def _separability_lp(U, V) -> "Separability | str":
    """The bounded max-margin LP of :func:`linear_separability`: its verdict, or HiGHS's message if it failed."""
    d = U.shape[1]
    # Variables (w, c, s); minimize -s.  -<w, U_i> + c + s <= 0  and  <w, V_j> - c + s <= 0.
    A = np.vstack([np.hstack([-U, np.ones((len(U), 1)), np.ones((len(U), 1))]),
                   np.hstack([V, -np.ones((len(V), 1)), np.ones((len(V), 1))])])
    cost = np.zeros(d + 2)
    cost[-1] = -1.0
    c_bound = float(np.sqrt(d)) + 1.0
    bounds = [(-1.0, 1.0)] * d + [(-c_bound, c_bound), (None, 1.0)]
    res = linprog(cost, A_ub=A, b_ub=np.zeros(len(A)), bounds=bounds, method="highs")
    if res.status != 0:
        return res.message
    w, c, margin = res.x[:d], float(res.x[d]), float(res.x[d + 1])
    wrong = _count_wrong(U, V, w, c)
    if margin <= LP_MARGIN_TOL:
        return Separability(False, True, None, None, 0, "lp")
    if wrong == 0:
        return Separability(True, True, w, c, 0, "lp")
    # A positive optimum whose hyperplane float64 rounding puts a point on the wrong side: undecided.
    return Separability(False, False, w, c, wrong, "lp")


def linear_separability(U, V, *, method: str = "auto", normalize: bool = False, max_epochs: int = 1000,
                        lp_max_entries: int = 20_000_000) -> Separability:
    """Linear separability of the two modalities (U and V may have different numbers of rows).

    "lp" solves, with scipy's HiGHS, the bounded max-margin LP

        maximize s  subject to  <w, U_i> - c >= s,  <w, V_j> - c <= -s,  |w_k| <= 1,  |c| <= sqrt(d) + 1,  s <= 1.

    It is always feasible (w = 0, c = 0, s = 0) and bounded, so the solver always finishes (the
    unbounded feasibility form, which asks for margin 1 and so a huge w when the clouds nearly touch,
    can stop on numerical trouble). The optimum s* > 0 iff the clouds are strictly separable (the
    bounds on c cut off no hyperplane, since |<w, x>| <= sqrt(d) for unit x). "Separable" is claimed
    only when s* exceeds ``LP_MARGIN_TOL`` and the returned (w, c) puts every point strictly on its side
    in float64; otherwise the clouds are not separable by a margin the LP can resolve. Should HiGHS
    still not finish, the perceptron decides instead (``method`` = "perceptron" in the result) with a
    warning. "perceptron" runs the batch perceptron on the augmented points (the paper's check),
    certified only when it reaches zero errors. "auto" uses the LP when the constraint matrix has at
    most ``lp_max_entries`` entries.
    """
    if method not in ("auto", "lp", "perceptron"):
        raise ValueError(f"method must be 'auto', 'lp' or 'perceptron'; got {method!r}")
    max_epochs = check_int(max_epochs, "max_epochs", low=1)
    lp_max_entries = check_int(lp_max_entries, "lp_max_entries", low=0)
    check_pair(U, V, min_rows=1, same_n=False)
    U = as_unit_rows(U, "U", normalize=normalize)
    V = as_unit_rows(V, "V", normalize=normalize)
    n, d = len(U) + len(V), U.shape[1]
    if method == "auto":
        method = "lp" if n * (d + 1) <= lp_max_entries else "perceptron"
    if method == "lp":
        found = _separability_lp(U, V)
        if isinstance(found, Separability):
            return found
        warnings.warn(f"separability LP did not finish ({found}); the perceptron decides instead", RuntimeWarning,
                      stacklevel=2)
    # Batch perceptron on augmented points y * (x, -1); stops at zero errors.
    X = np.vstack([np.hstack([U, -np.ones((len(U), 1))]), -np.hstack([V, -np.ones((len(V), 1))])])
    w = np.zeros(d + 1)
    w[:d] = U.mean(0) - V.mean(0)
    for _ in range(max_epochs):
        wrong = X @ w <= 0
        if not wrong.any():
            return Separability(True, True, w[:d], float(w[d]), 0, "perceptron")
        w += X[wrong].sum(axis=0) / n
    return Separability(False, False, w[:d], float(w[d]), _count_wrong(U, V, w[:d], w[d]), "perceptron")


@dataclass(frozen=True)
class ModalityGapStats:
    """Summary statistics of the modality gap between U and V.

    Attributes:
      centroid_distance: |mean_i U_i - mean_i V_i|.
      mean_positive: mean_i s_ii.
      mean_negative: mean_{i != j} s_ij.
      xi: the variance of U_i - V_i (claim C13).
      separability: linear separability of {U_i} from {V_j}.
    """

    centroid_distance: float
    mean_positive: float
    mean_negative: float
    xi: float
    separability: Separability

    @property
    def linearly_separable(self) -> bool:
        return self.separability.separable


def modality_gap_statistics(U, V, *, normalize: bool = False, separability_method: str = "auto") -> ModalityGapStats:
    """Centroid distance, mean positive and negative inner products, xi, and linear separability.

    The mean negative inner product is computed in O(N d) from the sums of the rows:
    sum_{i != j} s_ij = <sum U, sum V> - sum_i s_ii.
    """
    if separability_method not in ("auto", "lp", "perceptron"):
        raise ValueError(f"separability_method must be 'auto', 'lp' or 'perceptron'; got {separability_method!r}")
    U, V = validated_pair(U, V, normalize=normalize)
    n = len(U)
    pos = positive_inner_products(U, V)
    neg_sum = float(U.sum(0) @ V.sum(0) - pos.sum())
    return ModalityGapStats(
        centroid_distance=float(np.linalg.norm(U.mean(0) - V.mean(0))),
        mean_positive=float(pos.mean()),
        mean_negative=neg_sum / (n * (n - 1)),
        xi=xi_statistic(U, V),
        separability=linear_separability(U, V, method=separability_method),
    )
