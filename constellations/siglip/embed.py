"""Embedding a set with the towers: fixed-size batches, the last one padded.

Everything that embeds a set of images or captions (evaluation, LiT's cache of frozen image
embeddings, the studies' frozen tower) goes through :func:`apply_in_batches`: the set is cut into
batches of exactly ``batch_size`` rows, the last one padded by repeating its last row, so every call
has one shape (one compilation); the padding's outputs are dropped.
"""

from __future__ import annotations

import jax
import numpy as np

from .models import TwoTowers, model_key


def apply_in_batches(fn, x, batch_size: int):
    """``fn`` applied to ``x`` in batches of exactly ``batch_size`` rows, the outputs' rows concatenated.

    Args:
      fn: a function of one (batch_size, ...) array returning a pytree of arrays whose leading axis
        is the batch's rows (typically jitted: every call has the same shape).
      x: (n, ...) array with n >= 1 rows.
      batch_size: rows per call; the last batch is padded by repeating its last row, and the
        padding's outputs are dropped.
    Returns:
      fn's output pytree with every leaf an (n, ...) NumPy array.
    """
    x = np.asarray(x)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"need a non-empty (n, ...) array of rows; got shape {x.shape}")
    outputs = []
    for a in range(0, len(x), batch_size):
        batch = x[a:a + batch_size]
        n = len(batch)
        if n < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - n, axis=0)])
        outputs.append(jax.tree.map(lambda y: np.asarray(y)[:n], fn(batch)))
    return jax.tree.map(lambda *ys: np.concatenate(ys), *outputs)


# Jitted tower applications, reused by later calls with the same architecture (compiling costs
# seconds on CPU; tests and sweeps embed with many short-lived parameter sets).
_EMBED_CACHE: dict = {}


def make_embedders(setup, params: dict, batch_size: int = 256):
    """Host-side functions images -> (n, d), captions -> (n, d) unit embeddings (fixed-size batches).

    ``setup`` is the trainer's :class:`~constellations.siglip.train.Setup` (its model, tokenizer and
    caption length); ``params`` holds the "img" and "txt" subtrees. ``embed_images(images,
    with_norms=True)`` also returns the (n,) norms |f(x)| before the division.
    """
    model, dev = setup.model, jax.local_devices()[0]
    variables = jax.device_put({"params": {"img": params["img"], "txt": params["txt"]}}, dev)
    key = model_key(model)
    if key not in _EMBED_CACHE:
        _EMBED_CACHE[key] = (jax.jit(lambda v, x: model.apply(v, x, method=TwoTowers.embed_images)),
                             jax.jit(lambda v, x: model.apply(v, x, method=TwoTowers.embed_texts)))
    img_fn, txt_fn = _EMBED_CACHE[key]

    def embed_images(images, *, with_norms=False):
        z, norm = apply_in_batches(lambda x: img_fn(variables, jax.device_put(x, dev)),
                                   np.asarray(images, np.float32), batch_size)
        return (z, norm) if with_norms else z

    def embed_texts(captions):
        tokens = setup.tokenizer.encode(list(captions), setup.max_len)
        return apply_in_batches(lambda x: txt_fn(variables, jax.device_put(x, dev)), tokens, batch_size)[0]

    return embed_images, embed_texts


def embed_image_pool(setup, params: dict, indices, *, dataset=None, chunk: int = 1024,
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """LiT's cache: the image tower's embeddings of data set examples ``indices``, computed once.

    Renders about ``chunk`` examples of ``dataset`` (default: the training set of ``setup``) at a
    time and embeds them with ``params["img"]`` in batches of ``batch_size`` (the chunk is rounded
    up to a multiple of it, so the batches, and hence the numbers, are those of embedding all
    images at once). Returns (z, norms): (n, d) float32 unit rows z_i = f(x_i) / (|f(x_i)| + 1e-8)
    and the (n,) norms |f(x_i)| before the division.
    """
    dataset = setup.dataset if dataset is None else dataset
    indices = np.asarray(indices, np.int64)
    if indices.ndim != 1 or len(indices) == 0:
        raise ValueError(f"indices must be a non-empty 1-D array of example indices; got shape {indices.shape}")
    if chunk < 1 or batch_size < 1:
        raise ValueError(f"chunk and batch_size must be >= 1; got {chunk}, {batch_size}")
    chunk = -(-chunk // batch_size) * batch_size
    embed_images, _ = make_embedders(setup, params, batch_size)
    parts = [embed_images(dataset.get(indices[a:a + chunk])["images"], with_norms=True)
             for a in range(0, len(indices), chunk)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
