"""Statistics of anyone's image and text embeddings: the paper's real-model analysis (theory.md E10).

Two layouts:
- paired: image i goes with text i (N_img = N_txt);
- labelled: many images per caption, ``labels[i]`` is the index of image i's caption (class names, as
  in the ImageNet analysis). Positives are s_{i, labels[i]}, negatives s_{i, c} for c != labels[i].

Reported (E10's definitions; "margin" is half the gap, as m* everywhere in the package):
- m*, b*_rel: (min positive -/+ max negative) / 2;
- trimmed margin and relative bias: (5th-percentile positive -/+ 95th-percentile negative) / 2;
- mean-based margin and relative bias: (mean positive -/+ mean negative) / 2;
- linear separability of the two modalities; the C9 direction count (V's on the negative side of a
  direction with every U on the positive side); xi (C13); retrieval accuracy in both directions.

Everything is computed in row blocks of the (N_img, N_txt) inner-product matrix: memory is
O(block * N_txt) whatever the sizes (100,000 x 100,000 included). Percentiles of the negatives, of
which there can be 10^10, are exact: histogram passes narrow down the interval holding the wanted
order statistics, and a last pass collects and sorts the few values left (NumPy's "linear" rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._validation import as_unit_rows, check_matrix, check_pair
from .geometry import BLOCK_BYTES, _rows_per_block, linear_separability
from .modality_gap import modality_gap_direction

#: At most this many values are collected in memory for an exact order statistic.
COLLECT_LIMIT = 2_000_000
#: Paired sets up to this size use Theorem 3.6's construction for the C9 count (two LPs of size N).
C9_EXACT_MAX_N = 3000


def _validate_labels(labels, n_img: int, n_txt: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n_img:
        raise ValueError(f"labels must be a 1-D array with one entry per image ({n_img}); got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"labels must be integer caption indices; got dtype {labels.dtype}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) >= n_txt:
        raise ValueError(f"labels must lie in [0, {n_txt}) (one per text embedding); got range "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


class _Blocks:
    """Row blocks of S = U V^T with the positives masked out (set to NaN) in each block."""

    def __init__(self, U, V, labels, block_bytes):
        self.U, self.V, self.labels = U, V, labels
        self.rows = _rows_per_block(len(V), block_bytes)

    def __iter__(self):
        for start in range(0, len(self.U), self.rows):
            S = self.U[start:start + self.rows] @ self.V.T
            r = np.arange(S.shape[0])
            pos = S[r, self.labels[start:start + len(r)]].copy()
            S[r, self.labels[start:start + len(r)]] = np.nan
            yield start, S, pos


def _order_statistics(blocks: _Blocks, ranks: list[int], lo: float, hi: float, total: int) -> dict[int, float]:
    """Exact values of the given 0-based ranks among all negative inner products, in a few passes."""
    out = {}
    for k in ranks:
        a, b, below = lo, hi, 0  # invariant: the rank-k value lies in [a, b]; `below` values are < a
        while True:
            count_in, hist, edges = 0, None, None
            edges = np.linspace(a, b, 4097)
            hist = np.zeros(4096, dtype=np.int64)
            for _, S, _ in blocks:
                v = S[(S >= a) & (S <= b)]
                count_in += v.size
                hist += np.histogram(v, bins=edges)[0]
            if count_in <= COLLECT_LIMIT or b - a <= 4 * np.spacing(max(abs(a), abs(b), 1e-300)):
                vals = np.concatenate([S[(S >= a) & (S <= b)] for _, S, _ in blocks])
                vals.sort()
                out[k] = float(vals[min(k - below, len(vals) - 1)])
                break
            cum = np.cumsum(hist)
            j = int(np.searchsorted(cum, k - below + 1))
            below += int(cum[j - 1]) if j > 0 else 0
            a, b = float(edges[j]), float(edges[j + 1])
    return out


def _negative_percentile(blocks, q: float, lo: float, hi: float, total: int) -> float:
    """np.percentile(negatives, q) with the default "linear" rule, computed exactly in passes."""
    pos = q / 100 * (total - 1)
    k0 = int(np.floor(pos))
    k1 = min(k0 + 1, total - 1)
    vals = _order_statistics(blocks, sorted({k0, k1}), lo, hi, total)
    frac = pos - k0
    return vals[k0] + frac * (vals[k1] - vals[k0])


@dataclass(frozen=True)
class EmbeddingAnalysis:
    """The statistics of E10 for one pair of embedding arrays (see the module docstring)."""

    n_images: int
    n_texts: int
    dim: int
    layout: str
    margin: float
    relative_bias: float
    trimmed_margin: float
    trimmed_relative_bias: float
    mean_margin: float
    mean_relative_bias: float
    min_positive: float
    max_negative: float
    positive_p5: float
    negative_p95: float
    mean_positive: float
    mean_negative: float
    xi: float
    linearly_separable: bool
    separability_method: str
    separability_certified: bool
    c9_direction_method: str
    c9_u_positive: bool
    c9_v_separated: int
    c9_v_total: int
    image_to_text_accuracy: float
    text_to_image_accuracy: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["full_gap"] = 2 * self.margin
        d["trimmed_full_gap"] = 2 * self.trimmed_margin
        d["mean_full_gap"] = 2 * self.mean_margin
        return d


def analyze_embeddings(image, text, labels=None, *, normalize: bool = False, block_bytes: int = BLOCK_BYTES,
                       histogram_bins: int = 200, return_histograms: bool = False):
    """Compute the E10 statistics of image embeddings U (N_img, d) and text embeddings V (N_txt, d).

    Args:
      image, text: arrays of unit rows (checked to 1e-6; ``normalize=True`` divides by the norms instead).
      labels: None (paired: N_img == N_txt) or (N_img,) integer caption index of every image.
      histogram_bins: bins on [-1, 1] of the positive/negative histograms (returned if asked).

    Returns:
      An :class:`EmbeddingAnalysis`; with ``return_histograms=True`` also (edges, pos_counts, neg_counts).
    """
    check_pair(image, text, min_rows=1, same_n=False)
    U = as_unit_rows(image, "image embeddings", normalize=normalize)
    V = as_unit_rows(text, "text embeddings", normalize=normalize)
    n_img, n_txt = len(U), len(V)
    if labels is None:
        if n_img != n_txt:
            raise ValueError(f"paired embeddings need as many texts as images ({n_img} vs {n_txt}); "
                             "pass --labels for many images per caption")
        labels = np.arange(n_img)
        layout = "paired"
    else:
        labels = _validate_labels(labels, n_img, n_txt)
        layout = "labelled"
    if n_txt < 2:
        raise ValueError("need at least 2 text embeddings (otherwise there are no negative pairs)")

    blocks = _Blocks(U, V, labels, block_bytes)
    edges = np.linspace(-1.0, 1.0, histogram_bins + 1)
    neg_hist = np.zeros(histogram_bins, dtype=np.int64)
    positives = np.empty(n_img)
    neg_max, neg_min, neg_sum, neg_count = -np.inf, np.inf, 0.0, 0
    img_correct = np.zeros(n_img, dtype=bool)
    col_best_val = np.full(n_txt, -np.inf)
    col_best_idx = np.zeros(n_txt, dtype=np.int64)
    for start, S, pos in blocks:
        rows = slice(start, start + len(pos))
        positives[rows] = pos
        neg = S[~np.isnan(S)]
        neg_hist += np.histogram(np.clip(neg, -1, 1), bins=edges)[0]
        neg_max, neg_min = max(neg_max, float(neg.max(initial=-np.inf))), min(neg_min, float(neg.min(initial=np.inf)))
        neg_sum += float(neg.sum())
        neg_count += neg.size
        img_correct[rows] = pos > np.nanmax(S, axis=1)  # strict: ties count as wrong
        full = S.copy()
        r = np.arange(len(pos))
        full[r, labels[rows]] = pos
        better = full.max(axis=0) > col_best_val  # first (lowest-index) image wins ties
        col_best_idx[better] = start + full.argmax(axis=0)[better]
        col_best_val = np.maximum(col_best_val, full.max(axis=0))
    used = np.bincount(labels, minlength=n_txt) > 0
    txt_correct = labels[col_best_idx] == np.arange(n_txt)

    p5 = float(np.percentile(positives, 5))
    n95 = _negative_percentile(blocks, 95, neg_min, neg_max, neg_count)
    mean_pos, mean_neg = float(positives.mean()), neg_sum / neg_count
    X = U - V[labels]
    xi = float(np.mean(np.sum((X - X.mean(0)) ** 2, axis=1)))
    sep = linear_separability(U, V)

    if layout == "paired" and n_img <= C9_EXACT_MAX_N:
        try:
            r = modality_gap_direction(U, V)
            c9 = ("theorem 3.6 construction", True, r.n_separated)
        except ValueError:
            c9 = ("theorem 3.6 construction (no hemisphere holds all images)", False, 0)
    else:
        h = U.mean(0)
        h /= np.linalg.norm(h)
        c9 = ("image-centroid direction", bool(np.all(U @ h > 0)), int(np.sum(V @ h < 0)))

    result = EmbeddingAnalysis(
        n_images=n_img, n_texts=n_txt, dim=U.shape[1], layout=layout,
        margin=(positives.min() - neg_max) / 2, relative_bias=(positives.min() + neg_max) / 2,
        trimmed_margin=(p5 - n95) / 2, trimmed_relative_bias=(p5 + n95) / 2,
        mean_margin=(mean_pos - mean_neg) / 2, mean_relative_bias=(mean_pos + mean_neg) / 2,
        min_positive=float(positives.min()), max_negative=neg_max, positive_p5=p5, negative_p95=n95,
        mean_positive=mean_pos, mean_negative=mean_neg, xi=xi,
        linearly_separable=sep.separable, separability_method=sep.method, separability_certified=sep.certified,
        c9_direction_method=c9[0], c9_u_positive=c9[1], c9_v_separated=c9[2], c9_v_total=n_txt,
        image_to_text_accuracy=float(img_correct.mean()),
        text_to_image_accuracy=float(txt_correct[used].mean()),
    )
    if return_histograms:
        pos_hist = np.histogram(np.clip(positives, -1, 1), bins=edges)[0]
        return result, (edges, pos_hist, neg_hist)
    return result
