"""A SigLIP trainer on the package's loss: two towers, dense / all-gather / ring losses, LiT, evals.

Modules, in the order data flows:

* :mod:`.losses`: parameterizations (standard t, b; relative bias; softmax baseline) and the
  multi-device implementations of the sigmoid loss (dense, tiled, all-gather, ring, bidirectional ring),
  all on the math of :mod:`constellations.loss`.
* :mod:`.tiled`: the sigmoid loss swept tile by tile with a custom VJP (memory O(B d + tile^2)); the
  ``tiled`` implementation and the ring's blocks.
* :mod:`.models`: the ViT (MAP head) and text transformer (no mask, last-token pooling) towers.
* :mod:`.tokenizer`, :mod:`.data`, :mod:`.finegrained`: sticky-EOS tokenizers; shapes, fine-grained, digits and folder data sets.
* :mod:`.train`, :mod:`.checkpoint`, :mod:`.distributed`, :mod:`.config`: the loop (``train_steps``,
  used by ``train`` and the studies), atomic checkpoints with bit-exact resume, the multi-process
  data mesh, configs as data.
* :mod:`.embed`: embedding a set in fixed-size batches; :mod:`.pretrain`: supervised pretraining
  of an image tower (the studies' frozen tower).
* :mod:`.evaluate`: zero-shot, retrieval and the geometry of the learned embeddings.
* :mod:`.pretrained`: released Hugging Face SigLIP / SigLIP 2 checkpoints in these towers, their
  embeddings of an image folder and the paper's table of real-model statistics.

Command line: ``python -m constellations.siglip train --config CONFIG --workdir DIR`` and ``eval``.
"""

from .config import Config, apply_overrides, default_config, load_config
from .losses import (
    IMPLEMENTATIONS,
    PARAMETERIZATIONS,
    dense_sigmoid_loss,
    init_loss_params,
    make_contrastive_loss,
    make_sigmoid_loss,
    temperature_and_bias,
)
from .tiled import DEFAULT_TILE, tiled_sigmoid_block, tiled_sigmoid_loss
from .train import TrainingDiverged, TrainResult, TrainState, evaluate_checkpoint, train, train_steps

__all__ = [
    "Config",
    "DEFAULT_TILE",
    "IMPLEMENTATIONS",
    "PARAMETERIZATIONS",
    "TrainResult",
    "TrainState",
    "TrainingDiverged",
    "apply_overrides",
    "default_config",
    "dense_sigmoid_loss",
    "evaluate_checkpoint",
    "init_loss_params",
    "load_config",
    "make_contrastive_loss",
    "make_sigmoid_loss",
    "temperature_and_bias",
    "tiled_sigmoid_block",
    "tiled_sigmoid_loss",
    "train",
    "train_steps",
]
