"""Evaluation of trained towers: zero-shot classification, retrieval, and the learned geometry.

* Zero-shot (big_vision's ``discriminative_classifier``): embed every (class, template) prompt,
  average the unit text embeddings over templates, re-normalize (+1e-8), and predict
  argmax_c <x_i, w_c>. t and b do not change the argmax.
* Retrieval (big_vision's semantics, open_clip's deterministic ties): similarities x_i . y_j;
  the rank of a candidate is the number of candidates scoring strictly higher plus the number
  scoring equally with a smaller index. image->text counts a hit at k when *any* caption of the
  image ranks below k; text->image is scored per caption.
* Geometry (the bridge to the theory): m* and b*_rel (``constellations.geometry``) of the
  (image, first caption) pairs, the modality-gap statistics, and the loss's relative bias b_rel = -b/t
  (where the loss's threshold ended, to compare with the embeddings' best threshold b*_rel).
"""

from __future__ import annotations

import numpy as np

from ..geometry import margin_and_relative_bias, modality_gap_statistics, retrieval

RECALL_KS = (1, 5, 10)


def _ranks_of(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each row r, the deterministic rank of column target[r] among that row's scores."""
    rows = np.arange(len(scores))
    s = scores[rows, target][:, None]
    cols = np.arange(scores.shape[1])[None, :]
    return np.sum(scores > s, axis=1) + np.sum((scores == s) & (cols < target[:, None]), axis=1)


def retrieval_recall(similarity, text_to_image, ks=RECALL_KS, *, block: int = 1024) -> dict:
    """Recall@k in both directions for images (rows) and captions (columns).

    Args:
      similarity: (n_images, n_texts) scores (higher = more similar).
      text_to_image: (n_texts,) the image index of each caption (an image may have several).
      ks: the k of recall@k.
    Returns:
      {"img2txt_recall@k": ..., "txt2img_recall@k": ...} as floats in [0, 1].
    """
    S = np.asarray(similarity, np.float64)
    t2i = np.asarray(text_to_image, np.int64)
    if S.ndim != 2 or t2i.shape != (S.shape[1],):
        raise ValueError(f"similarity must be (n_images, n_texts) and text_to_image (n_texts,); got {S.shape}, {t2i.shape}")
    n_img, n_txt = S.shape
    if n_txt == 0 or t2i.min() < 0 or t2i.max() >= n_img:
        raise ValueError("text_to_image must map every caption to an image index in [0, n_images)")
    if len(np.unique(t2i)) != n_img:
        raise ValueError("every image needs at least one caption for image->text recall")
    # text -> image: rank of the true image in each column.
    txt_rank = np.concatenate([_ranks_of(S[:, a:a + block].T, t2i[a:a + block]) for a in range(0, n_txt, block)])
    # image -> text: best rank over the image's captions.
    best = np.full(n_img, np.iinfo(np.int64).max)
    cols = np.arange(n_txt)
    for a in range(0, n_img, block):
        blk = S[a:a + block]
        # rank of every caption j in row i: #(S[i] > S[i, j]) + #(S[i] == S[i, j] and col < j)
        order = np.lexsort((np.broadcast_to(cols, blk.shape), -blk), axis=1)    # by score desc, index asc
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.broadcast_to(cols, blk.shape), axis=1)
        own = t2i[None, :] == np.arange(a, a + len(blk))[:, None]
        best[a:a + len(blk)] = np.where(own, rank, np.iinfo(np.int64).max).min(axis=1)
    out = {}
    for k in ks:
        out[f"img2txt_recall@{k}"] = float(np.mean(best < k))
        out[f"txt2img_recall@{k}"] = float(np.mean(txt_rank < k))
    return out


def class_embeddings(embed_texts, class_names, templates) -> np.ndarray:
    """(C, d): per class, the mean of the unit embeddings of its prompts, re-normalized (+1e-8)."""
    if not class_names or not templates:
        raise ValueError("zero-shot needs at least one class name and one template")
    prompts = [tpl.format(name) for name in class_names for tpl in templates]
    Z = np.asarray(embed_texts(prompts), np.float64).reshape(len(class_names), len(templates), -1)
    W = Z.mean(axis=1)
    return W / (np.linalg.norm(W, axis=1, keepdims=True) + 1e-8)


def zero_shot_accuracy(image_embeddings, class_weights, labels) -> float:
    """Fraction of images whose argmax_c <x_i, w_c> (first maximum on ties) equals the label."""
    pred = np.argmax(np.asarray(image_embeddings, np.float64) @ np.asarray(class_weights, np.float64).T, axis=1)
    return float(np.mean(pred == np.asarray(labels)))


def geometry_report(zimg, ztxt, *, t: float | None = None, b: float | None = None,
                    separability_method: str = "auto") -> dict:
    """m*, b*_rel, retrieval gaps and modality-gap statistics of paired unit embeddings (float64).

    ``margin`` and ``relative_bias`` are m* and b*_rel of the embeddings; given the loss's t and b,
    ``b_rel`` is the loss's relative bias -b/t.
    """
    U = np.asarray(zimg, np.float64)
    V = np.asarray(ztxt, np.float64)
    margin, rel = margin_and_relative_bias(U, V, normalize=True)
    gap = modality_gap_statistics(U, V, normalize=True, separability_method=separability_method)
    ret = retrieval(U, V, normalize=True)
    out = {
        "margin": margin, "relative_bias": rel,
        "centroid_distance": gap.centroid_distance, "mean_positive": gap.mean_positive,
        "mean_negative": gap.mean_negative, "xi": gap.xi, "linearly_separable": bool(gap.linearly_separable),
        "nn_accuracy_img2txt": ret.u_to_v_accuracy, "nn_accuracy_txt2img": ret.v_to_u_accuracy,
    }
    if t is not None and b is not None:
        out["b_rel"] = float(-b / t)
    return out


def evaluate_embeddings(embed_images, embed_texts, examples: dict, zero_shot_tasks: dict, *,
                        t: float | None = None, b: float | None = None, geometry: bool = True) -> dict:
    """All evaluations on one set of examples.

    Args:
      embed_images, embed_texts: functions from images / caption strings to (n, d) unit embeddings.
      examples: {"images": (n, H, W, 3), "captions": list of lists of strings, "labels": {...}}.
      zero_shot_tasks: {task: (label key, class names, templates)}.
    Returns:
      a flat dict: "zeroshot/<task>" and "zeroshot/<task>_chance", "retrieval/<direction>_recall@k"
      with "retrieval/chance@k" (k / n_images for txt2img), and "geometry/..." entries.
    """
    zimg = np.asarray(embed_images(examples["images"]), np.float64)
    caps = examples["captions"]
    flat = [c for cs in caps for c in cs]
    t2i = np.repeat(np.arange(len(caps)), [len(cs) for cs in caps])
    ztxt = np.asarray(embed_texts(flat), np.float64)
    out = {}
    for task, (key, names, templates) in zero_shot_tasks.items():
        if key not in examples["labels"]:
            continue
        W = class_embeddings(embed_texts, list(names), list(templates))
        out[f"zeroshot/{task}"] = zero_shot_accuracy(zimg, W, examples["labels"][key])
        out[f"zeroshot/{task}_chance"] = 1.0 / len(names)
    for k, v in retrieval_recall(zimg @ ztxt.T, t2i).items():
        out[f"retrieval/{k}"] = v
    for k in RECALL_KS:
        out[f"retrieval/chance@{k}"] = min(k / len(caps), 1.0)
    if geometry:
        first = np.array([np.flatnonzero(t2i == i)[0] for i in range(len(caps))])
        for k, v in geometry_report(zimg, ztxt[first], t=t, b=b).items():
            out[f"geometry/{k}"] = v
    return out
