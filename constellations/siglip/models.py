"""SigLIP's two towers in flax.linen, after big_vision's ``vit.py``, ``text_transformer.py`` and
``two_towers.py`` (``siglip_reference.md`` section 2).

* Image tower: a ViT (patchify conv, learned position embedding, pre-LN encoder blocks, final
  LayerNorm) pooled by a MAP head (a learned probe cross-attending over the tokens). No image
  projection by default (``out_dim=(None, width)``): the MAP output *is* the embedding.
* Text tower: token embedding + learned position embedding, the same encoder with **no attention
  mask** (bidirectional, pads attended), pooled at the **last** position, which is always EOS
  because captions are padded with the EOS id to the full length (sticky EOS), then a Dense head
  projecting to the image width.
* Both embeddings are divided by (|z| + 1e-8); the norms before the division are returned for
  logging. The loss scalars (t', b or b_rel) live beside the towers in the parameter tree.

Parameters are plain nested dicts of arrays (``{"img": ..., "txt": ..., "loss": ...}``), so a
checkpoint is a flat list of arrays and resume is bit-exact.
"""

from __future__ import annotations

import json
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

#: big_vision's size table (width, depth, mlp_dim, heads) plus small lab variants for CPU.
VARIANTS = {
    "mu": (32, 1, 128, 2),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
    # Lab variants: train in minutes on 2 CPU cores.
    "lab-xs": (48, 2, 192, 2),
    "lab-s": (64, 2, 256, 4),
}


def decode_variant(variant: str) -> dict:
    """"NAME" or "NAME/PATCH" -> dict(width, depth, mlp_dim, num_heads[, patch_size]).

    >>> decode_variant("mu/4")
    {'width': 32, 'depth': 1, 'mlp_dim': 128, 'num_heads': 2, 'patch_size': (4, 4)}
    """
    if not isinstance(variant, str):
        raise ValueError(f"variant must be a string like 'mu' or 'Ti/16'; got {variant!r}")
    name, _, patch = variant.partition("/")
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {sorted(VARIANTS)}")
    width, depth, mlp, heads = VARIANTS[name]
    out = {"width": width, "depth": depth, "mlp_dim": mlp, "num_heads": heads}
    if patch:
        if not re.fullmatch(r"\d+", patch) or int(patch) < 1:
            raise ValueError(f"patch size in variant {variant!r} must be a positive integer")
        out["patch_size"] = (int(patch), int(patch))
    return out


class MlpBlock(nn.Module):
    """Dense(mlp_dim) -> GELU -> Dense(d). ``gelu_approximate=True`` is the tanh GELU of the released
    SigLIP checkpoints (Hugging Face's ``gelu_pytorch_tanh``); the default is the exact (erf) GELU."""

    mlp_dim: int
    gelu_approximate: bool = False

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        init = dict(kernel_init=nn.initializers.xavier_uniform(), bias_init=nn.initializers.normal(stddev=1e-6))
        x = nn.Dense(self.mlp_dim, **init)(x)
        x = nn.gelu(x, approximate=self.gelu_approximate)
        return nn.Dense(d, **init)(x)


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: x + MHA(LN(x)), then x + MLP(LN(x)). No mask."""

    mlp_dim: int
    num_heads: int
    layer_norm_eps: float = 1e-6
    gelu_approximate: bool = False

    @nn.compact
    def __call__(self, x):
        y = nn.LayerNorm(epsilon=self.layer_norm_eps)(x)
        y = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, kernel_init=nn.initializers.xavier_uniform())(y, y)
        x = x + y
        y = nn.LayerNorm(epsilon=self.layer_norm_eps)(x)
        return x + MlpBlock(self.mlp_dim, self.gelu_approximate)(y)


class Encoder(nn.Module):
    depth: int
    mlp_dim: int
    num_heads: int
    layer_norm_eps: float = 1e-6
    gelu_approximate: bool = False

    @nn.compact
    def __call__(self, x):
        for i in range(self.depth):
            x = EncoderBlock(self.mlp_dim, self.num_heads, self.layer_norm_eps, self.gelu_approximate,
                             name=f"encoderblock_{i}")(x)
        return nn.LayerNorm(epsilon=self.layer_norm_eps, name="encoder_norm")(x)


class MAPHead(nn.Module):
    """Multihead attention pooling: a learned probe attends over the tokens, then x + MLP(LN(x))."""

    mlp_dim: int
    num_heads: int
    layer_norm_eps: float = 1e-6
    gelu_approximate: bool = False

    @nn.compact
    def __call__(self, x):
        n, _, d = x.shape
        probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, d), jnp.float32)
        probe = jnp.tile(probe, (n, 1, 1))
        x = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, kernel_init=nn.initializers.xavier_uniform())(probe, x)
        y = nn.LayerNorm(epsilon=self.layer_norm_eps)(x)
        x = x + MlpBlock(self.mlp_dim, self.gelu_approximate)(y)
        return x[:, 0]


class ViT(nn.Module):
    """Image tower: (N, H, W, 3) in [-1, 1] -> (N, width) (or (N, out_dim) with a head).

    ``layer_norm_eps`` and ``gelu_approximate`` (every LayerNorm and MLP of the tower) exist for
    released checkpoints (``pretrained.py``); the defaults are big_vision's 1e-6 and the exact GELU.
    """

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    patch_size: tuple[int, int] = (4, 4)
    out_dim: int | None = None
    layer_norm_eps: float = 1e-6
    gelu_approximate: bool = False

    @nn.compact
    def __call__(self, images):
        x = nn.Conv(self.width, self.patch_size, strides=self.patch_size, padding="VALID", name="embedding")(images)
        n, h, w, c = x.shape
        x = jnp.reshape(x, (n, h * w, c))
        pos = self.param("pos_embedding", nn.initializers.normal(stddev=1 / jnp.sqrt(self.width)), (1, h * w, c),
                         jnp.float32)
        x = Encoder(self.depth, self.mlp_dim, self.num_heads, self.layer_norm_eps, self.gelu_approximate,
                    name="Transformer")(x + pos)
        x = MAPHead(self.mlp_dim, self.num_heads, self.layer_norm_eps, self.gelu_approximate, name="MAPHead_0")(x)
        if self.out_dim is not None:
            # A non-zero head init: a zero head would make every embedding 0 (normalized by 1e-8).
            x = nn.Dense(self.out_dim, kernel_init=nn.initializers.lecun_normal(), name="head")(x)
        return x


class TextTransformer(nn.Module):
    """Text tower: (N, L) token ids -> (N, out_dim). No mask; pools the last position (EOS).

    ``embedding_bottleneck=K`` factors the token embedding as vocab -> K -> width (mSigLIP's
    bottleneck, K = 96 at width 768): an (vocab, K) table E and a (K, width) projection P without
    bias, so a token's input vector is E[token] @ P and the embedding costs vocab * K + K * width
    parameters instead of vocab * width. E keeps flax's default init (entries of variance 1/K) and
    P is drawn with variance 1/width (fan-out scaling), so E[token] @ P has entries of variance
    1/width, as the full table's do. None (the default) is the full (vocab, width) table.

    ``layer_norm_eps`` and ``gelu_approximate`` as in :class:`ViT`.
    """

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    vocab_size: int
    out_dim: int
    embedding_bottleneck: int | None = None
    layer_norm_eps: float = 1e-6
    gelu_approximate: bool = False

    @nn.compact
    def __call__(self, tokens):
        if self.embedding_bottleneck is None:
            x = nn.Embed(self.vocab_size, self.width, name="embedding")(tokens)
        else:
            x = nn.Embed(self.vocab_size, self.embedding_bottleneck, name="embedding")(tokens)
            x = nn.Dense(self.width, use_bias=False, name="embedding_projection",
                         kernel_init=nn.initializers.variance_scaling(1.0, "fan_out", "normal"))(x)
        pos = self.param("pos_embedding", nn.initializers.normal(stddev=1 / jnp.sqrt(self.width)),
                         (1, tokens.shape[1], self.width), jnp.float32)
        x = Encoder(self.depth, self.mlp_dim, self.num_heads, self.layer_norm_eps, self.gelu_approximate,
                    name="Encoder_0")(x + pos)
        x = x[:, -1, :]
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.lecun_normal(), name="head")(x)


def _normalize(z):
    norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
    return z / (norm + 1e-8), norm[..., 0]


class TwoTowers(nn.Module):
    """The two towers. ``image`` and ``text`` are dicts of ViT / TextTransformer fields.

    ``__call__(images, tokens)`` returns (zimg, ztxt, out) with L2-normalized embeddings and
    ``out["img/norm"]``, ``out["txt/norm"]`` (the norms before normalization). Either input may be
    None (then that embedding is None).
    """

    image: dict
    text: dict

    def setup(self):
        self.img = ViT(**self.image)
        self.txt = TextTransformer(**self.text)

    def embed_images(self, images):
        return _normalize(self.img(images))

    def embed_texts(self, tokens):
        return _normalize(self.txt(tokens))

    def __call__(self, images, tokens):
        out: dict[str, Any] = {}
        zimg = ztxt = None
        if images is not None:
            zimg, out["img/norm"] = self.embed_images(images)
        if tokens is not None:
            ztxt, out["txt/norm"] = self.embed_texts(tokens)
        return zimg, ztxt, out


def tower_configs(model_cfg, *, vocab_size: int, image_size: int, max_len: int) -> tuple[dict, dict]:
    """Resolve a model config (variants, patch, widths) into ViT and TextTransformer field dicts.

    ``model_cfg`` keys: ``image_variant`` ("mu/4"), ``text_variant`` ("mu"), optional
    ``image_out_dim`` (None = no image head, SigLIP's choice), ``out_dim`` for the text head
    (default: the image embedding width) and ``text_bottleneck`` (K of the text tower's
    vocab -> K -> width token embedding; None or absent = the full table).
    """
    image = decode_variant(model_cfg["image_variant"])
    image.setdefault("patch_size", (4, 4))
    if image_size % image["patch_size"][0]:
        raise ValueError(f"image size {image_size} is not a multiple of the patch size {image['patch_size'][0]}")
    image["out_dim"] = model_cfg.get("image_out_dim")
    text = decode_variant(model_cfg.get("text_variant") or model_cfg["image_variant"])
    text.pop("patch_size", None)
    text["vocab_size"] = int(vocab_size)
    embed_dim = image["out_dim"] or image["width"]
    text["out_dim"] = int(model_cfg.get("out_dim") or embed_dim)
    bottleneck = model_cfg.get("text_bottleneck")
    if bottleneck is not None:
        if isinstance(bottleneck, bool) or not isinstance(bottleneck, int) or bottleneck < 1:
            raise ValueError(f"model.text_bottleneck must be None or a positive integer K; got {bottleneck!r}")
        text["embedding_bottleneck"] = bottleneck
    if text["out_dim"] != embed_dim:
        raise ValueError(f"the text head must project to the image embedding width {embed_dim}; "
                         f"got out_dim = {text['out_dim']}")
    for side, cfg in (("image", image), ("text", text)):
        if cfg["width"] % cfg["num_heads"]:
            raise ValueError(f"{side} width {cfg['width']} is not divisible by {cfg['num_heads']} heads")
    return image, text


_INIT_CACHE: dict = {}


def model_key(model: TwoTowers) -> str:
    """A string identifying the towers' architecture (for caching compiled functions)."""
    return json.dumps([model.image, model.text], sort_keys=True, default=str)


def init_towers(model: TwoTowers, rng, *, image_size: int, max_len: int):
    """Initialise the tower parameters (float32) from dummy inputs of the right shapes.

    The jitted initializer is cached per architecture: compiling it costs seconds on CPU.
    """
    key = (model_key(model), image_size, max_len)
    if key not in _INIT_CACHE:
        images = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
        tokens = jnp.zeros((1, max_len), jnp.int32)
        _INIT_CACHE[key] = jax.jit(
            lambda k: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), model.init(k, images, tokens)))
    return dict(_INIT_CACHE[key](rng)["params"])


def count_params(tree) -> int:
    return int(sum(x.size for x in jax.tree.leaves(tree)))
