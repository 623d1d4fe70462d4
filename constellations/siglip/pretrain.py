"""Supervised pretraining of an image tower on labels (a frozen tower for LiT-style runs).

The model is the trainer's ViT, named "img" so that its parameters are exactly the ``"img"``
subtree of :class:`~constellations.siglip.models.TwoTowers`, with one linear head per label; the
objective is the sum over heads of the mean softmax cross-entropy,

    L = sum_k -(1/B) sum_i log softmax(W_k f(x_i) + c_k)[y_ik],

and the optimizer is the trainer's (:func:`constellations.siglip.train.make_optimizer`: clip, Adam
b2 = 0.95, weight decay on kernels, warmup and cosine schedule). The steps run in ``lax.scan``
chunks over a fixed batch order (epochs of permutations), with the images on the device.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .models import ViT
from .train import make_optimizer


class ImageClassifier(nn.Module):
    """The ViT named "img" (TwoTowers' "img" subtree) and one linear head per label: images -> {label: logits}."""

    image: dict         # ViT keyword arguments
    heads: dict         # label name -> number of classes

    @nn.compact
    def __call__(self, images):
        features = ViT(**self.image, name="img")(images)
        return {k: nn.Dense(n, name=f"head_{k}")(features) for k, n in self.heads.items()}


def batch_order(num_examples: int, steps: int, batch_size: int, seed: int) -> np.ndarray:
    """(steps, batch_size) int32 example indices: epoch after epoch of random permutations."""
    if not 1 <= batch_size <= num_examples:
        raise ValueError(f"batch_size must be in [1, {num_examples}]; got {batch_size}")
    rng = np.random.default_rng([seed, 17])
    epochs = math.ceil(steps * batch_size / num_examples)
    order = np.concatenate([rng.permutation(num_examples) for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def train_classifier(model: ImageClassifier, params: dict, images, labels: dict, order: np.ndarray, optim, *,
                     progress: bool = False, desc: str = "classifier") -> tuple[dict, np.ndarray]:
    """Train ``model`` from ``params`` on ``images`` and ``labels`` over the batches of ``order``.

    Args:
      model, params: the classifier and its initial parameters.
      images: (N, H, W, 3) float32; labels: {head: (N,) int class indices}.
      order: (steps, B) example indices of every step's batch (:func:`batch_order`).
      optim: the trainer's ``optim`` config (lr, b1, b2, warmup, schedule, ...); the schedule spans
        ``len(order)`` steps.
    Returns:
      (final host parameters, (steps,) float32 losses L of every step's batch).
    """
    steps = len(order)
    tx = make_optimizer(optim, steps)
    images = jnp.asarray(images)
    labels = {k: jnp.asarray(labels[k]) for k in model.heads}

    def loss_fn(p, idx):
        logits = model.apply({"params": p}, images[idx])
        return sum(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits[k], labels[k][idx]))
                   for k in model.heads)

    def step(carry, idx):
        p, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(p, idx)
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), loss

    run_chunk = jax.jit(lambda carry, idx: jax.lax.scan(step, carry, idx))
    chunk = max(1, steps // 10)
    carry, losses = (params, tx.init(params)), []
    with tqdm(total=steps, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=not progress) as bar:
        for a in range(0, steps, chunk):
            carry, loss = run_chunk(carry, jnp.asarray(order[a:a + chunk], jnp.int32))
            losses.append(np.asarray(loss))
            bar.update(len(order[a:a + chunk]))
    return jax.tree.map(np.asarray, carry[0]), np.concatenate(losses)
