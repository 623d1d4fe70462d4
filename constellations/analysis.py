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
which there can be 10^10, are exact: the first pass counts them in 2^17 bins of width 2^-16, a later
pass collects the values of the bin holding the wanted rank and sorts them (NumPy's "linear" rule);
if that bin is crowded, passes with 2^12 times finer bins narrow it down first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._validation import as_unit_rows, check_int, check_pair
from .geometry import BLOCK_BYTES, iter_inner_product_blocks, linear_separability
from .modality_gap import modality_gap_direction

#: At most this many values are collected in memory for an exact order statistic.
COLLECT_LIMIT = 2_000_000
#: Paired sets up to this size use Theorem 3.6's construction for the C9 count (two LPs of size N).
C9_EXACT_MAX_N = 3000


def _validate_labels(labels, n_img: int, n_txt: int) -> np.ndarray:
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):
        raise ValueError(f"labels must be a 1-D array of integer caption indices; got {type(labels).__name__}") from None
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
    """Row blocks of S = U V^T, each with the row indices and column labels of its positives."""

    def __init__(self, U, V, labels, block_bytes):
        self.U, self.V, self.labels, self.block_bytes = U, V, labels, block_bytes

    def __iter__(self):
        for start, _, S in iter_inner_product_blocks(self.U, self.V, block_bytes=self.block_bytes):
            r = np.arange(S.shape[0])
            yield start, S, r, self.labels[start:start + len(r)]


# Exact binning: floor(v * 2^k) is exact in float64 (scaling by a power of two), so a value's bin is
# the same in every pass and nested bins at finer k refine coarser ones exactly.
_K0, _KSTEP = 16, 12
_OFFSET0 = 2**_K0 + 1          # level-0 bin index = floor(v * 2^16) + offset, >= 0 for v >= -1 - 2^-16
_NBINS0 = 2 * 2**_K0 + 3       # covers [-1 - 2^-16, 1 + 2^-16]


def _level0_index(S):
    return np.floor(S * float(2**_K0)).astype(np.int64) + _OFFSET0


def _order_statistic(blocks: _Blocks, hist0: np.ndarray, k: int) -> float:
    """The exact value of rank k (0-based, ascending) among the negative inner products.

    ``hist0`` counts the negatives in the level-0 bins. Each further pass either collects the (at most
    COLLECT_LIMIT) values of the bin holding rank k, or histograms that bin 2^12 times finer.
    """
    cum = np.cumsum(hist0)
    j = int(np.searchsorted(cum, k + 1))
    below = int(cum[j - 1]) if j > 0 else 0
    count, level, J = int(hist0[j]), 0, j - _OFFSET0  # bin: floor(v * 2^(16 + 12 level)) == J
    while True:
        scale = 2.0 ** (_K0 + _KSTEP * level)
        if 1.0 / scale <= np.spacing(abs(J) / scale):  # the bin holds one float: every value in it is J / scale
            return float(J) / scale
        if count <= COLLECT_LIMIT:
            vals = []
            for _, S, r, lab in blocks:
                S[r, lab] = np.nan  # positives never match (floor(NaN) comparisons are False)
                with np.errstate(invalid="ignore"):
                    vals.append(S[np.floor(S * scale) == J])
            vals = np.sort(np.concatenate(vals))
            return float(vals[k - below])
        finer = 2.0 ** (_K0 + _KSTEP * (level + 1))
        sub = np.zeros(2**_KSTEP, dtype=np.int64)
        for _, S, r, lab in blocks:
            S[r, lab] = np.nan
            with np.errstate(invalid="ignore"):
                v = S[np.floor(S * scale) == J]
            sub += np.bincount((np.floor(v * finer) - J * 2**_KSTEP).astype(np.int64), minlength=2**_KSTEP)
        cum = np.cumsum(sub)
        i = int(np.searchsorted(cum, k - below + 1))
        below += int(cum[i - 1]) if i > 0 else 0
        count, level, J = int(sub[i]), level + 1, J * 2**_KSTEP + i


def _negative_percentile(blocks, hist0, q: float, total: int) -> float:
    """np.percentile(negatives, q) with NumPy's default "linear" rule, computed exactly in passes."""
    pos = q / 100 * (total - 1)
    k0 = int(np.floor(pos))
    k1 = min(k0 + 1, total - 1)
    v0 = _order_statistic(blocks, hist0, k0)
    v1 = v0 if k1 == k0 else _order_statistic(blocks, hist0, k1)
    return v0 + (pos - k0) * (v1 - v0)


#: Every key of :meth:`EmbeddingAnalysis.to_dict` (the JSON of ``python -m constellations analyze --json``):
#: key -> (meaning in words, the paper's symbol or "" ).
FIELDS = {
    "n_images": ("number of image embeddings (rows of U)", "N_img"),
    "n_texts": ("number of text embeddings (rows of V)", "N_txt"),
    "dim": ("embedding dimension", "d"),
    "layout": ("'paired' (image i goes with text i) or 'labelled' (labels[i] is image i's caption)", ""),
    "margin": ("margin: half the gap between the worst positive and the worst negative inner product; "
               "> 0 means every positive beats every negative (a constellation)", "m*"),
    "relative_bias": ("relative bias: the threshold midway between the worst positive and the worst negative", "b*_rel"),
    "full_gap": ("worst positive minus worst negative (= 2 m*)", "2 m*"),
    "trimmed_margin": ("trimmed margin: (5th-percentile positive - 95th-percentile negative) / 2", "m_trim"),
    "trimmed_relative_bias": ("trimmed relative bias: (5th-percentile positive + 95th-percentile negative) / 2",
                              "b_rel,trim"),
    "trimmed_full_gap": ("5th-percentile positive minus 95th-percentile negative (= 2 m_trim)", ""),
    "mean_margin": ("mean-based margin: (mean positive - mean negative) / 2", "m_mean"),
    "mean_relative_bias": ("mean-based relative bias: (mean positive + mean negative) / 2", "b_rel,mean"),
    "mean_full_gap": ("mean positive minus mean negative (= 2 m_mean)", ""),
    "min_positive": ("smallest inner product of a matching (positive) pair", "min_i <U_i, V_i>"),
    "max_negative": ("largest inner product of a non-matching (negative) pair", "max_{i!=j} <U_i, V_j>"),
    "positive_p5": ("5th percentile of the positive inner products", ""),
    "negative_p95": ("95th percentile of the negative inner products (exact)", ""),
    "mean_positive": ("mean positive inner product (cosine)", ""),
    "mean_negative": ("mean negative inner product (cosine)", ""),
    "xi": ("xi: mean squared deviation of U_i - V_i from its mean; ~0 when the modalities differ by one "
           "constant shift (claim C13)", "xi"),
    "linearly_separable": ("whether a hyperplane separates all image from all text embeddings (the modality gap)", ""),
    "separability_method": ("how separability was decided", ""),
    "separability_certified": ("whether the separability answer is certified (an LP solution or infeasibility)", ""),
    "c9_direction_method": ("how the direction h of claim C9 was found (Theorem 3.6's construction for paired "
                            "sets up to 3000, else the image centroid)", ""),
    "c9_u_positive": ("whether every image embedding has <h, U_i> > 0 for that direction h (C9)", ""),
    "c9_v_separated": ("number of text embeddings with <h, V_j> < 0 (C9 guarantees N - d when m* > 0 at b*_rel = 0)", ""),
    "c9_v_total": ("number of text embeddings", ""),
    "image_to_text_accuracy": ("fraction of images whose own caption has the largest inner product (ties count wrong)", ""),
    "text_to_image_accuracy": ("fraction of captions whose best image is one of theirs", ""),
}


@dataclass(frozen=True)
class EmbeddingAnalysis:
    """The statistics of E10 for one pair of embedding arrays (see the module docstring). Every field,
    and the derived ``*_full_gap`` keys of :meth:`to_dict`, is explained in :data:`FIELDS`."""

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

    @property
    def is_constellation(self) -> bool:
        """m* > 0: every positive inner product beats every negative one."""
        return self.margin > 0

    def summary(self) -> str:
        """A short human reading of the statistics: each number with its name in words and the paper's symbol."""
        layout = ("paired: image i goes with text i" if self.layout == "paired"
                  else "labelled: many images per caption")
        verdict = ("a constellation: every positive pair beats every negative pair" if self.is_constellation
                   else "not a constellation: some negative pair beats some positive pair")
        sep = "yes" if self.linearly_separable else "no"
        sep += f" ({self.separability_method}{', certified' if self.separability_certified else ''})"
        c9 = (f"{self.c9_v_separated} of {self.c9_v_total} texts lie on the far side of a direction h"
              + (" with every image on the near side" if self.c9_u_positive else " (not every image is on the near side)")
              + f" ({self.c9_direction_method})")
        return "\n".join([
            f"{self.n_images} images x {self.n_texts} texts in d = {self.dim} ({layout})",
            f"  margin m*                 {self.margin:+.4f}   -> {verdict}",
            f"  relative bias b*_rel      {self.relative_bias:+.4f}   (threshold midway between the worst positive "
            f"{self.min_positive:+.4f} and the worst negative {self.max_negative:+.4f})",
            f"  trimmed margin            {self.trimmed_margin:+.4f}   (5th-percentile positive {self.positive_p5:+.4f} vs "
            f"95th-percentile negative {self.negative_p95:+.4f}; relative bias {self.trimmed_relative_bias:+.4f})",
            f"  mean-based margin         {self.mean_margin:+.4f}   (mean positive cosine {self.mean_positive:+.4f} vs "
            f"mean negative {self.mean_negative:+.4f}; relative bias {self.mean_relative_bias:+.4f})",
            f"  modality gap              linearly separable: {sep}",
            f"  C9 direction              {c9}",
            f"  xi (C13)                  {self.xi:.4f}   (~0: the two modalities differ by one constant shift)",
            f"  retrieval accuracy        image -> text {self.image_to_text_accuracy:.3f}, "
            f"text -> image {self.text_to_image_accuracy:.3f}",
        ])


def analyze_embeddings(image, text, labels=None, *, normalize: bool = False, block_bytes: int = BLOCK_BYTES,
                       histogram_bins: int = 256, return_histograms: bool = False):
    """Compute the E10 statistics of image embeddings U (N_img, d) and text embeddings V (N_txt, d).

    Args:
      image, text: arrays of unit rows (checked to 1e-6; ``normalize=True`` divides by the norms instead).
      labels: None (paired: N_img == N_txt) or (N_img,) integer caption index of every image.
      histogram_bins: bins on [-1, 1] of the positive/negative histograms (returned if asked; rounded to a
        power of two).

    Returns:
      An :class:`EmbeddingAnalysis`; with ``return_histograms=True`` also (edges, pos_counts, neg_counts).
    """
    block_bytes = check_int(block_bytes, "block_bytes", low=1)
    histogram_bins = check_int(histogram_bins, "histogram_bins", low=1)
    check_pair(image, text, min_rows=1, same_n=False, names=("image embeddings", "text embeddings"))
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
    hist0 = np.zeros(_NBINS0, dtype=np.int64)
    positives = np.empty(n_img)
    neg_max, neg_sum = -np.inf, 0.0
    img_correct = np.zeros(n_img, dtype=bool)
    col_best_val = np.full(n_txt, -np.inf)
    col_best_idx = np.zeros(n_txt, dtype=np.int64)
    for start, S, r, lab in blocks:
        pos = S[r, lab].copy()
        positives[start:start + len(r)] = pos
        # text -> image: the first (lowest-index) image with the largest inner product wins ties
        col_val = S.max(axis=0)
        better = col_val > col_best_val
        col_best_idx[better] = start + S.argmax(axis=0)[better]
        col_best_val = np.maximum(col_best_val, col_val)
        hist0 += np.bincount(_level0_index(S).ravel(), minlength=_NBINS0)
        hist0 -= np.bincount(_level0_index(pos), minlength=_NBINS0)
        neg_sum += float(S.sum() - pos.sum())
        S[r, lab] = -np.inf
        row_best = S.max(axis=1)
        neg_max = max(neg_max, float(row_best.max()))
        img_correct[start:start + len(r)] = pos > row_best  # strict: ties count as wrong
    neg_count = n_img * n_txt - n_img
    used = np.bincount(labels, minlength=n_txt) > 0
    txt_correct = labels[col_best_idx] == np.arange(n_txt)

    p5 = float(np.percentile(positives, 5))
    n95 = _negative_percentile(blocks, hist0, 95, neg_count)
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
        # the plot's bins are groups of 2^k level-0 bins on [-1, 1] (the +-2^-16 edge bins folded in)
        group = max(1, (2 * 2**_K0) // histogram_bins)
        nb = (2 * 2**_K0) // group
        inner = hist0[1:1 + nb * group].copy()
        inner[0] += hist0[0]
        inner[-1] += hist0[1 + nb * group:].sum()
        neg_hist = inner.reshape(nb, group).sum(axis=1)
        edges = np.linspace(-1.0, 1.0, nb + 1)
        pos_hist = np.histogram(np.clip(positives, -1, 1), bins=edges)[0]
        return result, (edges, pos_hist, neg_hist)
    return result
