"""constellations: the geometry of the sigmoid contrastive loss (SigLIP).

The public surface (``shared/docs/api.md``): the losses of :mod:`constellations.loss` and the
geometry of :mod:`constellations.geometry`, the modality-gap direction and the max-margin search's
:func:`find_constellation` (:mod:`constellations.search`) are re-exported here; bounds, codes,
constructions, regions, dimension, the synthetic engine and the SigLIP trainer live in their own
submodules.
"""

from .geometry import (
    ConstellationStats,
    ModalityGapStats,
    RetrievalResult,
    Separability,
    constellation_statistics,
    inner_products,
    is_constellation,
    linear_separability,
    margin_and_relative_bias,
    modality_gap_statistics,
    retrieval,
    xi_statistic,
)
from .modality_gap import ModalityGapDirection, modality_gap_direction, satisfies_sign_condition
from .search import find_constellation
from .loss import (
    log_sigmoid_loss,
    multimodal_sigmoid_loss,
    relative_bias_loss,
    sigmoid_loss,
    sigmoid_loss_from_logits,
    softmax_loss,
    synchronization_graph,
    triplet_loss,
)

__version__ = "0.1.0"

__all__ = [
    "ConstellationStats",
    "ModalityGapDirection",
    "ModalityGapStats",
    "RetrievalResult",
    "Separability",
    "constellation_statistics",
    "find_constellation",
    "inner_products",
    "is_constellation",
    "linear_separability",
    "log_sigmoid_loss",
    "margin_and_relative_bias",
    "modality_gap_direction",
    "modality_gap_statistics",
    "multimodal_sigmoid_loss",
    "relative_bias_loss",
    "retrieval",
    "satisfies_sign_condition",
    "sigmoid_loss",
    "sigmoid_loss_from_logits",
    "softmax_loss",
    "synchronization_graph",
    "triplet_loss",
    "xi_statistic",
]
