"""Released SigLIP and SigLIP 2 checkpoints (Hugging Face folders) in the package's flax towers.

``load_pretrained(DIR)`` reads a local Hugging Face checkpoint folder (``config.json``,
``model.safetensors`` and the tokenizer files; the hub cache layout
``models--google--siglip-.../snapshots/<hash>/`` or its parent works too; nothing is downloaded)
and returns a :class:`Pretrained`: the :class:`~.models.TwoTowers`, their parameters
(``{"img", "txt", "loss": {"t_prime", "b"}}``, the trainer's layout), the tokenizer and the
image preprocessing, with batched ``embed_images`` / ``embed_texts``.

How the Hugging Face architectures map onto the towers (``transformers``' ``modeling_siglip.py``
and ``modeling_siglip2.py`` are the reference; tests/test_siglip_pretrained.py checks embeddings,
logits, t and b against them):

* both: pre-LN encoder blocks with LayerNorm eps from the config and the tanh GELU
  (``hidden_act="gelu_pytorch_tanh"``; the towers' default is the exact GELU, so the loader sets
  ``gelu_approximate``); the vision tower's ``post_layernorm`` is ``encoder_norm``, its MAP head
  (``torch.nn.MultiheadAttention`` with a packed q/k/v projection) is ``MAPHead_0``; the text
  tower's ``final_layer_norm`` is its ``encoder_norm``, pooled at the last position, then ``head``.
* SigLIP: the patch embedding is a Conv2d (D, C, p, p) -> flax Conv (p, p, C, D).
* SigLIP 2 (``Siglip2Model``, NaFlex): the patch embedding is a Linear over flattened (p, p, C)
  patches, the same map as the Conv; the position embedding is a sqrt(P) x sqrt(P) grid that
  NaFlex resizes to each image's aspect ratio. Here images are resized to the square grid
  (sqrt(P) * p pixels), where that resize is the identity: exact for that input, and a square
  resize where NaFlex would keep the aspect ratio (documented deviation).
* logit_scale = t' (t = exp t') and logit_bias = b; HF divides by |z| where the towers divide by
  |z| + 1e-8 (a relative difference of ~1e-8 / |z|).

Text: SigLIP pads with EOS ("sticky EOS": the last position is EOS); SigLIP 2's Gemma tokenizer
appends EOS and pads with ``<pad>``, and its tokenizer config may name no maximum length, in
which case Hugging Face's ``padding="max_length"`` silently does not pad and the last position is a
real token. The towers have exactly ``max_position_embeddings`` text positions, so the loader
always tokenizes to that length and refuses any other.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

#: Hugging Face's config defaults (transformers' SiglipTextConfig / SiglipVisionConfig /
#: Siglip2VisionConfig); configs saved by older transformers omit the keys that hold defaults.
TEXT_DEFAULTS = dict(vocab_size=32000, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                     num_attention_heads=12, max_position_embeddings=64, hidden_act="gelu_pytorch_tanh",
                     layer_norm_eps=1e-6, projection_size=None)
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       num_channels=3, image_size=224, patch_size=16, hidden_act="gelu_pytorch_tanh",
                       layer_norm_eps=1e-6, vision_use_head=True, num_patches=256)
#: config.json "architectures" / "model_type" -> the kind of checkpoint.
ARCHITECTURES = {"SiglipModel": "siglip", "Siglip2Model": "siglip2"}
#: hidden_act -> gelu_approximate (the tanh form, as jax.nn.gelu(approximate=True)).
ACTIVATIONS = {"gelu": False, "gelu_pytorch_tanh": True, "gelu_new": True}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# --------------------------------------------------------------------------------------- files

def resolve_checkpoint_dir(path) -> Path:
    """The folder holding config.json: ``path`` itself, or a hub cache entry's snapshot.

    Accepts ``.../models--ORG--NAME`` (uses ``refs/main``, or the only snapshot) and
    ``.../snapshots/<hash>``.
    """
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ValueError(f"pretrained checkpoint: no such folder: {path}")
    if (p / "config.json").is_file():
        return p
    snaps = p / "snapshots"
    if snaps.is_dir():
        ref = p / "refs" / "main"
        if ref.is_file() and (snaps / ref.read_text().strip() / "config.json").is_file():
            return snaps / ref.read_text().strip()
        found = sorted(s for s in snaps.iterdir() if (s / "config.json").is_file())
        if len(found) == 1:
            return found[0]
        if found:
            raise ValueError(f"pretrained checkpoint: {p} holds several snapshots ({[s.name for s in found]}) "
                             "and no refs/main; pass the snapshot folder")
    raise ValueError(f"pretrained checkpoint: {p} has no config.json (expected a Hugging Face model folder "
                     "or a hub cache entry models--ORG--NAME)")


_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
                       "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
                       "BOOL": np.bool_}


def read_safetensors(path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as numpy (bfloat16 widened to float32), without torch.

    The format: an 8-byte little-endian header size, a JSON header {name: {dtype, shape,
    data_offsets}}, then the raw little-endian data. The file is memory-mapped.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        n = int.from_bytes(head, "little")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a safetensors file ({e})") from None
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has an unsupported dtype {info.get('dtype')!r}")
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=np.dtype(dtype).newbyteorder("<")).reshape(info["shape"])
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr
    return out


def load_state_dict(folder) -> dict[str, np.ndarray]:
    """The checkpoint's tensors: model.safetensors, or the shards named by model.safetensors.index.json."""
    folder = Path(folder)
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return read_safetensors(single)
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state = {}
        for s in shards:
            if not (folder / s).is_file():
                raise ValueError(f"pretrained checkpoint: shard {s} named in {index.name} is missing from {folder}")
            state.update(read_safetensors(folder / s))
        return state
    other = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".msgpack", ".h5")]
    hint = f" (found {other}: only safetensors is read; convert with transformers' save_pretrained)" if other else ""
    raise ValueError(f"pretrained checkpoint: {folder} has no model.safetensors{hint}")


# ------------------------------------------------------------------------------- architecture

def _kind(config: dict) -> str:
    for arch in config.get("architectures") or []:
        if arch in ARCHITECTURES:
            return ARCHITECTURES[arch]
    mt = config.get("model_type")
    if mt in ("siglip", "siglip2"):
        return mt
    raise ValueError(f"unknown architecture {config.get('architectures') or mt!r}: the loader reads SigLIP "
                     f"(SiglipModel) and SigLIP 2 (Siglip2Model) checkpoints")


def _gelu(act, side):
    if act not in ACTIVATIONS:
        raise ValueError(f"{side} hidden_act {act!r} is not supported (known: {sorted(ACTIVATIONS)})")
    return ACTIVATIONS[act]


def tower_fields(config: dict) -> tuple[str, dict, dict, int, int]:
    """(kind, ViT fields, TextTransformer fields, image size, text length) from a config.json dict."""
    kind = _kind(config)
    v = {**VISION_DEFAULTS, **(config.get("vision_config") or {})}
    t = {**TEXT_DEFAULTS, **(config.get("text_config") or {})}
    if not v["vision_use_head"]:
        raise ValueError("vision_use_head is false: a SigLIP image embedding needs the MAP head")
    if v["num_channels"] != 3:
        raise ValueError(f"the image tower reads RGB images; this checkpoint has num_channels = {v['num_channels']}")
    patch = int(v["patch_size"])
    if kind == "siglip2":
        grid = int(round(np.sqrt(v["num_patches"])))
        if grid * grid != v["num_patches"]:
            raise ValueError(f"SigLIP 2 num_patches = {v['num_patches']} is not a square grid")
        image_size = grid * patch
    else:
        image_size = v["image_size"]
        if isinstance(image_size, (list, tuple)):
            if len(set(image_size)) != 1:
                raise ValueError(f"only square images are supported; image_size = {image_size}")
            image_size = image_size[0]
        image_size = int(image_size)
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch}")
    image = dict(width=int(v["hidden_size"]), depth=int(v["num_hidden_layers"]), mlp_dim=int(v["intermediate_size"]),
                 num_heads=int(v["num_attention_heads"]), patch_size=(patch, patch), out_dim=None,
                 layer_norm_eps=float(v["layer_norm_eps"]), gelu_approximate=_gelu(v["hidden_act"], "vision"))
    out_dim = int(t["projection_size"] or t["hidden_size"])
    text = dict(width=int(t["hidden_size"]), depth=int(t["num_hidden_layers"]), mlp_dim=int(t["intermediate_size"]),
                num_heads=int(t["num_attention_heads"]), vocab_size=int(t["vocab_size"]), out_dim=out_dim,
                layer_norm_eps=float(t["layer_norm_eps"]), gelu_approximate=_gelu(t["hidden_act"], "text"))
    if out_dim != image["width"]:
        raise ValueError(f"text projection_size {out_dim} differs from the image embedding width {image['width']}")
    for side, f in (("vision", image), ("text", text)):
        if f["width"] % f["num_heads"]:
            raise ValueError(f"{side} hidden_size {f['width']} is not divisible by {f['num_heads']} heads")
    return kind, image, text, image_size, int(t["max_position_embeddings"])


def _linear(w):
    return np.ascontiguousarray(np.asarray(w, np.float32).T)


def _attention(get, prefix, heads):
    """HF q/k/v/out projections -> flax MultiHeadDotProductAttention params."""
    out = {}
    for hf, fx in (("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value")):
        w = _linear(get(f"{prefix}.{hf}.weight"))
        d = w.shape[0]
        out[fx] = {"kernel": w.reshape(d, heads, -1), "bias": get(f"{prefix}.{hf}.bias").reshape(heads, -1)}
    w = _linear(get(f"{prefix}.out_proj.weight"))
    out["out"] = {"kernel": w.reshape(heads, -1, w.shape[1]), "bias": get(f"{prefix}.out_proj.bias")}
    return out


def _layer_norm(get, prefix):
    return {"scale": get(f"{prefix}.weight"), "bias": get(f"{prefix}.bias")}


def _mlp(get, prefix):
    return {"Dense_0": {"kernel": _linear(get(f"{prefix}.fc1.weight")), "bias": get(f"{prefix}.fc1.bias")},
            "Dense_1": {"kernel": _linear(get(f"{prefix}.fc2.weight")), "bias": get(f"{prefix}.fc2.bias")}}


def _encoder(get, prefix, depth, heads, final_norm):
    enc = {}
    for i in range(depth):
        p = f"{prefix}.layers.{i}"
        enc[f"encoderblock_{i}"] = {
            "LayerNorm_0": _layer_norm(get, f"{p}.layer_norm1"), "LayerNorm_1": _layer_norm(get, f"{p}.layer_norm2"),
            "MultiHeadDotProductAttention_0": _attention(get, f"{p}.self_attn", heads),
            "MlpBlock_0": _mlp(get, f"{p}.mlp")}
    enc["encoder_norm"] = _layer_norm(get, final_norm)
    return enc


def convert_state_dict(state: dict, kind: str, image: dict, text: dict) -> dict:
    """Hugging Face SigLIP tensors -> the towers' parameter tree {"img", "txt", "loss"} (float32 numpy).

    Every tensor of ``state`` must be used (buffers such as ``position_ids`` aside) and every
    parameter found; a missing or unused name is a ValueError naming it.
    """
    used = set()

    def get(name):
        if name not in state:
            raise ValueError(f"pretrained checkpoint: weight {name} is missing")
        used.add(name)
        return np.asarray(state[name], np.float32)

    heads = image["num_heads"]
    v = "vision_model"
    w = get(f"{v}.embeddings.patch_embedding.weight")
    p = image["patch_size"][0]
    if kind == "siglip2":   # Linear over (p, p, C)-flattened patches == a stride-p conv
        if w.ndim != 2 or w.shape[1] != p * p * 3:
            raise ValueError(f"weight {v}.embeddings.patch_embedding.weight has shape {w.shape}; "
                             f"expected ({image['width']}, {p * p * 3})")
        kernel = _linear(w).reshape(p, p, 3, -1)
    else:
        if w.ndim != 4:
            raise ValueError(f"weight {v}.embeddings.patch_embedding.weight has shape {w.shape}; expected a conv "
                             f"({image['width']}, 3, {p}, {p})")
        kernel = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    in_w, in_b = get(f"{v}.head.attention.in_proj_weight"), get(f"{v}.head.attention.in_proj_bias")
    d = image["width"]
    if in_w.shape != (3 * d, d) or in_b.shape != (3 * d,):
        raise ValueError(f"weight {v}.head.attention.in_proj_weight/bias has shape {in_w.shape}/{in_b.shape}; "
                         f"expected ({3 * d}, {d})/({3 * d},)")
    map_attn = {}
    for k, name in enumerate(("query", "key", "value")):
        map_attn[name] = {"kernel": _linear(in_w[k * d:(k + 1) * d]).reshape(d, heads, -1),
                          "bias": in_b[k * d:(k + 1) * d].reshape(heads, -1)}
    ow = _linear(get(f"{v}.head.attention.out_proj.weight"))
    map_attn["out"] = {"kernel": ow.reshape(heads, -1, d), "bias": get(f"{v}.head.attention.out_proj.bias")}
    img = {
        "embedding": {"kernel": kernel, "bias": get(f"{v}.embeddings.patch_embedding.bias")},
        "pos_embedding": get(f"{v}.embeddings.position_embedding.weight")[None],
        "Transformer": _encoder(get, f"{v}.encoder", image["depth"], heads, f"{v}.post_layernorm"),
        "MAPHead_0": {"probe": get(f"{v}.head.probe").reshape(1, 1, d),
                      "LayerNorm_0": _layer_norm(get, f"{v}.head.layernorm"),
                      "MlpBlock_0": _mlp(get, f"{v}.head.mlp"),
                      "MultiHeadDotProductAttention_0": map_attn},
    }
    t = "text_model"
    txt = {
        "embedding": {"embedding": get(f"{t}.embeddings.token_embedding.weight")},
        "pos_embedding": get(f"{t}.embeddings.position_embedding.weight")[None],
        "Encoder_0": _encoder(get, f"{t}.encoder", text["depth"], text["num_heads"], f"{t}.final_layer_norm"),
        "head": {"kernel": _linear(get(f"{t}.head.weight")), "bias": get(f"{t}.head.bias")},
    }
    loss = {"t_prime": get("logit_scale").reshape(()), "b": get("logit_bias").reshape(())}
    unused = sorted(k for k in state if k not in used and not k.endswith("position_ids"))
    if unused:
        raise ValueError(f"pretrained checkpoint: weights not used by the towers: {unused[:8]}"
                         + (f" and {len(unused) - 8} more" if len(unused) > 8 else ""))
    return {"img": img, "txt": txt, "loss": loss}


_SHAPES: dict = {}


def _check_shapes(params: dict, model, image_size: int, max_len: int) -> None:
    """Every converted array has the shape the towers expect (a ValueError naming the weight if not)."""
    import jax
    import jax.numpy as jnp

    from .models import model_key

    key = (model_key(model), image_size, max_len)
    if key not in _SHAPES:
        images = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
        tokens = jax.ShapeDtypeStruct((1, max_len), jnp.int32)
        want = jax.eval_shape(lambda i, t: model.init(jax.random.PRNGKey(0), i, t), images, tokens)["params"]
        _SHAPES[key] = {"/".join(str(getattr(k, "key", k)) for k in path): leaf.shape
                        for path, leaf in jax.tree_util.tree_flatten_with_path(want)[0]}
    want_flat = _SHAPES[key]
    got_flat = {"/".join(str(getattr(k, "key", k)) for k in path): np.shape(leaf)
                for path, leaf in jax.tree_util.tree_flatten_with_path({"img": params["img"], "txt": params["txt"]})[0]}
    for name, shape in want_flat.items():
        if name not in got_flat:
            raise ValueError(f"pretrained checkpoint: no weight for tower parameter {name}")
        if tuple(got_flat[name]) != tuple(shape):
            raise ValueError(f"pretrained checkpoint: weight for {name} has shape {tuple(got_flat[name])}; "
                             f"the config implies {tuple(shape)}")


# ---------------------------------------------------------------------------------- tokenizer

def _special(cfg: dict, key: str, default: str) -> str:
    v = cfg.get(key, default)
    if isinstance(v, dict):
        v = v.get("content", default)
    return v if isinstance(v, str) else default


class PretrainedTokenizer:
    """A checkpoint's tokenizer with its training-time text contract, padded to the full length.

    ``encode(texts, max_len)`` returns (N, max_len) int32 ids: [BOS if the tokenizer adds one] + the
    text's pieces, truncated to leave room for EOS, then EOS ("sticky": it survives truncation),
    then the pad id up to ``max_len``. SigLIP: lower-cased, punctuation removed (Hugging Face's
    ``SiglipTokenizer.canonicalize_text``), pad = EOS, so the pooled last position is EOS. SigLIP 2:
    lower-cased (``Siglip2Tokenizer``), ``<pad>`` after ``<eos>``.
    """

    def __init__(self, pieces: Callable[[str], list], *, eos_id: int | None, pad_id: int, bos_id: int | None,
                 canonicalize: bool, vocab_size: int, source: str):
        self._pieces, self.eos_id, self.pad_id, self.bos_id = pieces, eos_id, int(pad_id), bos_id
        self.canonicalize, self.vocab_size, self.source = canonicalize, int(vocab_size), source

    def normalize(self, text: str) -> str:
        if not isinstance(text, str):
            raise ValueError(f"texts must be strings; got {type(text).__name__}")
        text = text.lower()
        if self.canonicalize:
            text = " ".join(text.translate(str.maketrans("", "", string.punctuation)).split())
        return text

    def tokens(self, text: str) -> list[int]:
        return list(self._pieces(self.normalize(text)))

    def to_dict(self) -> dict:
        """A description for a run's tokenizer.json (the trainer reloads the checkpoint folder itself)."""
        return {"kind": "pretrained", "source": self.source}

    def encode(self, texts: Sequence[str], max_len: int) -> np.ndarray:
        head = [] if self.bos_id is None else [self.bos_id]
        tail = [] if self.eos_id is None else [self.eos_id]
        room = max_len - len(head) - len(tail)
        if room < 0:
            raise ValueError(f"max_len {max_len} leaves no room for the special tokens")
        out = np.full((len(texts), max_len), self.pad_id, np.int32)
        for i, t in enumerate(texts):
            ids = head + self.tokens(t)[:room] + tail
            out[i, :len(ids)] = ids
        return out


def load_tokenizer(folder, kind: str) -> PretrainedTokenizer:
    """The tokenizer of a checkpoint folder: a SentencePiece model (spiece.model / tokenizer.model,
    read with ``sentencepiece``) or a ``tokenizer.json`` (read with the optional ``tokenizers``).

    The text contract follows the tokenizer, not the tower (SigLIP 2's fixed-resolution checkpoints
    are ``SiglipModel`` towers with SigLIP 2's Gemma tokenizer): a ``SiglipTokenizer`` (``spiece.model``)
    canonicalizes, appends ``</s>`` and pads with it; a Gemma tokenizer (SigLIP 2) lower-cases, and
    BOS/EOS are what its ``tokenizer.json`` post-processor adds (probed) or, from a SentencePiece
    file, ``add_bos_token`` / ``add_eos_token`` of tokenizer_config.json, defaulting to the converted
    checkpoints' choice (no BOS, EOS); pad ``<pad>``.
    """
    folder = Path(folder)
    cfg = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):   # the latter wins
        if (folder / name).is_file():
            try:
                cfg.update(json.loads((folder / name).read_text()))
            except ValueError as e:
                raise ValueError(f"{folder / name} is not valid JSON ({e})") from None
    cls = str(cfg.get("tokenizer_class") or "")
    if cls.startswith("Siglip2") or cls.startswith("Gemma"):
        kind = "siglip2"
    elif cls == "SiglipTokenizer" or (folder / "spiece.model").is_file():
        kind = "siglip"
    if kind == "siglip":
        eos, pad, bos_tok, add_bos, add_eos = (_special(cfg, "eos_token", "</s>"), _special(cfg, "pad_token", "</s>"),
                                               None, False, True)
    else:
        eos, pad, bos_tok = (_special(cfg, "eos_token", "<eos>"), _special(cfg, "pad_token", "<pad>"),
                             _special(cfg, "bos_token", "<bos>"))
        add_bos, add_eos = bool(cfg.get("add_bos_token", False)), bool(cfg.get("add_eos_token", True))
    spm_files = [folder / n for n in ("spiece.model", "tokenizer.model") if (folder / n).is_file()]
    if spm_files and (kind == "siglip" or not (folder / "tokenizer.json").is_file()):
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(spm_files[0]))
        ids = {tok: sp.piece_to_id(tok) for tok in (eos, pad) + ((bos_tok,) if add_bos else ())}
        for tok, i in ids.items():
            if sp.id_to_piece(i) != tok:
                raise ValueError(f"{spm_files[0]}: the special token {tok!r} is not in the vocabulary")
        return PretrainedTokenizer(lambda s: sp.encode(s), eos_id=ids[eos] if add_eos else None, pad_id=ids[pad],
                                   bos_id=ids[bos_tok] if add_bos else None, canonicalize=kind == "siglip",
                                   vocab_size=sp.get_piece_size(), source=str(spm_files[0]))
    if (folder / "tokenizer.json").is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ValueError(f"{folder} has only tokenizer.json, which needs the optional 'tokenizers' package "
                             "(pip install 'constellations[hf]')") from None
        tk = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tk.no_padding()
        tk.no_truncation()
        ids = {tok: tk.token_to_id(tok) for tok in (eos, pad, bos_tok) if tok is not None}
        for tok in (eos, pad):
            if ids[tok] is None:
                raise ValueError(f"{folder / 'tokenizer.json'}: the special token {tok!r} is not in the vocabulary")
        bare, full = tk.encode("a", add_special_tokens=False).ids, tk.encode("a").ids
        add_bos = bool(full) and full[0] == ids.get(bos_tok) and full[1:len(bare) + 1] == bare
        add_eos = bool(full) and full[-1] == ids[eos]
        if kind == "siglip":
            add_bos, add_eos = False, True
        return PretrainedTokenizer(lambda s: tk.encode(s, add_special_tokens=False).ids,
                                   eos_id=ids[eos] if add_eos else None,
                                   pad_id=ids[pad], bos_id=ids[bos_tok] if add_bos else None,
                                   canonicalize=kind == "siglip", vocab_size=tk.get_vocab_size(),
                                   source=str(folder / "tokenizer.json"))
    raise ValueError(f"pretrained checkpoint: {folder} has no tokenizer (spiece.model, tokenizer.model or "
                     "tokenizer.json)")


# ------------------------------------------------------------------------------------- images

def _preprocessing(folder: Path, kind: str) -> dict:
    out = {"resample": "bicubic" if kind == "siglip" else "bilinear", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
           "rescale": 1 / 255}
    f = folder / "preprocessor_config.json"
    if f.is_file():
        c = json.loads(f.read_text())
        pil = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
        if isinstance(c.get("resample"), int):
            out["resample"] = pil.get(c["resample"], out["resample"])
        for k, key in (("mean", "image_mean"), ("std", "image_std")):
            if isinstance(c.get(key), (list, tuple)) and len(c[key]) == 3:
                out[k] = tuple(float(x) for x in c[key])
        if isinstance(c.get("rescale_factor"), (int, float)):
            out["rescale"] = float(c["rescale_factor"])
    return out


def load_image(path, size: int, preprocessing: dict | None = None) -> np.ndarray:
    """An image file -> (size, size, 3) float32: RGB, resized (bicubic for SigLIP), x / 255, then
    (x - mean) / std with mean = std = 0.5, i.e. values in [-1, 1] (Hugging Face's image processor)."""
    from PIL import Image

    pre = preprocessing or {"resample": "bicubic", "mean": (0.5,) * 3, "std": (0.5,) * 3, "rescale": 1 / 255}
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), getattr(Image.Resampling, pre["resample"].upper()))
    except OSError as e:
        raise ValueError(f"cannot read image {path}: {e}") from None
    x = np.asarray(im, np.float32) * np.float32(pre["rescale"])
    return (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)


# -------------------------------------------------------------------------------------- model

_EMBED_FNS: dict = {}


@dataclass
class Pretrained:
    """A loaded checkpoint: towers, parameters, tokenizer, and the input sizes they were trained on."""

    kind: str
    model: object
    params: dict
    tokenizer: PretrainedTokenizer
    image_size: int
    max_len: int
    path: Path
    preprocessing: dict = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        """t = exp(logit_scale)."""
        return float(np.exp(self.params["loss"]["t_prime"]))

    @property
    def bias(self) -> float:
        return float(self.params["loss"]["b"])

    @property
    def dim(self) -> int:
        return int(self.model.image["width"])

    def _fn(self, which):
        from .models import model_key

        key = (model_key(self.model), which)
        if key not in _EMBED_FNS:   # per architecture: a reloaded checkpoint reuses the compiled function
            import jax

            from .models import TwoTowers

            method = TwoTowers.embed_images if which == "img" else TwoTowers.embed_texts
            model = self.model
            _EMBED_FNS[key] = jax.jit(lambda p, x: model.apply({"params": p}, x, method=method)[0])
        return _EMBED_FNS[key]

    def _batched(self, which, x, batch_size, progress, desc, pad_to=None):
        from tqdm.auto import tqdm

        if int(batch_size) < 1:
            raise ValueError(f"batch size must be >= 1; got {batch_size}")
        params = {"img": self.params["img"], "txt": self.params["txt"]}
        out = []
        n = len(x)
        size = pad_to or (batch_size if n > batch_size else n)
        for a in tqdm(range(0, n, batch_size), desc=desc, disable=not progress, unit="batch"):
            chunk = np.asarray(x[a:a + batch_size])
            k = len(chunk)
            if k < size:   # pad the last batch: one compiled shape
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - k, 0)])
            out.append(np.asarray(self._fn(which)(params, chunk))[:k])
        d = self.dim
        return np.concatenate(out) if out else np.zeros((0, d), np.float32)

    def embed_images(self, images, *, batch_size: int = 64, progress: bool = False, pad_to: int | None = None
                     ) -> np.ndarray:
        """(N, S, S, 3) preprocessed images (see :func:`load_image`) -> (N, d) unit rows.

        Batches of ``batch_size`` (the last one padded, so one shape is compiled; ``pad_to`` pads a
        short call to that size, for callers that stream several calls)."""
        images = np.asarray(images, np.float32)
        s = self.image_size
        if images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise ValueError(f"images must be (N, {s}, {s}, 3) (this checkpoint's size); got {images.shape}")
        return self._batched("img", images, batch_size, progress, "images", pad_to)

    def embed_tokens(self, tokens, *, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """(N, max_len) token ids -> (N, d) unit rows. Any other length is refused: the text tower
        pools the last of exactly ``max_len`` positions."""
        tokens = np.asarray(tokens, np.int32)
        if tokens.ndim != 2 or tokens.shape[1] != self.max_len:
            raise ValueError(f"token ids must be (N, {self.max_len}) (the checkpoint's max_position_embeddings); "
                             f"got {tokens.shape}: pad every text to the full length")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.model.text["vocab_size"]):
            raise ValueError(f"token ids must lie in [0, {self.model.text['vocab_size']})")
        return self._batched("txt", tokens, batch_size, progress, "texts")

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Texts -> (N, d) unit rows, tokenized to the checkpoint's full length."""
        return self.embed_tokens(self.tokenizer.encode(list(texts), self.max_len), batch_size=batch_size,
                                 progress=progress)

    def load_images(self, paths, *, progress: bool = False) -> np.ndarray:
        from tqdm.auto import tqdm

        return np.stack([load_image(p, self.image_size, self.preprocessing)
                         for p in tqdm(paths, desc="reading images", disable=not progress)])

    def logits(self, zimg, ztxt) -> np.ndarray:
        """t <x_i, y_j> + b, (N_img, N_txt)."""
        return self.temperature * np.asarray(zimg) @ np.asarray(ztxt).T + self.bias


def load_pretrained(path, *, max_len: int | None = None) -> Pretrained:
    """Load a Hugging Face SigLIP / SigLIP 2 folder into the towers (float32, on the default device).

    ``max_len``: optional; if given it must equal the checkpoint's ``max_position_embeddings``
    (the text tower has exactly that many positions and pools the last one).
    """
    import jax

    from .models import TwoTowers

    folder = resolve_checkpoint_dir(path)
    try:
        config = json.loads((folder / "config.json").read_text())
    except ValueError as e:
        raise ValueError(f"{folder / 'config.json'} is not valid JSON ({e})") from None
    kind, image, text, image_size, length = tower_fields(config)
    if max_len is not None and int(max_len) != length:
        raise ValueError(f"max_len {max_len} differs from the checkpoint's text length {length} "
                         "(max_position_embeddings): the towers were trained on exactly that length")
    tokenizer = load_tokenizer(folder, kind)
    if tokenizer.vocab_size > text["vocab_size"]:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} pieces but the text tower only "
                         f"{text['vocab_size']} embeddings")
    params = convert_state_dict(load_state_dict(folder), kind, image, text)
    model = TwoTowers(image=image, text=text)
    _check_shapes(params, model, image_size, length)
    params = jax.tree.map(lambda a: jax.numpy.asarray(a, jax.numpy.float32), params)
    return Pretrained(kind=kind, model=model, params=params, tokenizer=tokenizer, image_size=image_size,
                      max_len=length, path=folder, preprocessing=_preprocessing(folder, kind))


# ------------------------------------------------------------------- checkpoint -> embeddings

def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_class_folders(images, class_names) -> tuple[list[Path], np.ndarray, list[str]]:
    """(image paths, label of each image, class names) of an ImageNet-style folder FOLDER/<class>/<image>.

    ``class_names``: a text file, one class a line, either ``SUBFOLDER<TAB>name`` (any order, e.g.
    ImageNet's ``n01440764<TAB>tench``) or just ``name`` (the i-th line names the i-th subfolder
    in sorted order). Classes are numbered in the file's order.
    """
    images, class_names = Path(images), Path(class_names)
    if not images.is_dir():
        raise ValueError(f"--images: no such folder: {images}")
    if not class_names.is_file():
        raise ValueError(f"--class-names: no such file: {class_names}")
    lines = [ln.rstrip("\n") for ln in class_names.read_text().splitlines() if ln.strip()]
    subs = sorted(p.name for p in images.iterdir() if p.is_dir())
    if not subs:
        raise ValueError(f"--images {images} has no class subfolders (expected FOLDER/<class>/<image>)")
    if all("\t" in ln for ln in lines):
        pairs = [tuple(ln.split("\t", 1)) for ln in lines]
        missing = sorted({s for s, _ in pairs} - set(subs))
        if missing:
            raise ValueError(f"--class-names names subfolders that {images} lacks: {missing[:5]}")
    else:
        if len(lines) != len(subs):
            raise ValueError(f"--class-names has {len(lines)} names for {len(subs)} subfolders of {images} "
                             "(or use SUBFOLDER<TAB>name lines)")
        pairs = list(zip(subs, lines))
    paths, labels = [], []
    for c, (sub, _) in enumerate(pairs):
        found = _images_in(images / sub)
        paths += found
        labels += [c] * len(found)
    if not paths:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {images}")
    return paths, np.asarray(labels, np.int64), [name.strip() for _, name in pairs]


def read_captions(images, captions) -> tuple[list[Path], list[str]]:
    """Paired (image, caption) rows from a file of ``RELATIVE_IMAGE_PATH<TAB>caption`` lines."""
    images, captions = Path(images), Path(captions)
    if not images.is_dir():
        raise ValueError(f"--images: no such folder: {images}")
    if not captions.is_file():
        raise ValueError(f"--captions: no such file: {captions}")
    paths, texts = [], []
    for i, ln in enumerate(captions.read_text().splitlines(), 1):
        if not ln.strip():
            continue
        if "\t" not in ln:
            raise ValueError(f"--captions {captions}:{i}: expected IMAGE<TAB>caption")
        name, text = ln.split("\t", 1)
        if not (images / name).is_file():
            raise ValueError(f"--captions {captions}:{i}: no image {images / name}")
        paths.append(images / name)
        texts.append(text.strip())
    if not paths:
        raise ValueError(f"--captions {captions} holds no IMAGE<TAB>caption line")
    return paths, texts


def export_pretrained_embeddings(pretrained, images, out, *, class_names=None, captions=None, template: str = "{}",
                                 batch_size: int = 64, limit: int | None = None, progress: bool = True) -> dict:
    """Embed a folder of images and their class names or captions with a checkpoint; write ``out`` (.npz).

    Keys: ``image`` (N, d) and ``text`` (C or N, d) unit rows (float64), with ``labels`` (N,) each
    image's class (class names; ``python -m constellations analyze``'s labelled layout) or none
    (captions: paired row by row); ``t``, ``b`` (the checkpoint's scalars), ``texts`` and ``files``.
    ``template`` formats each class name (the paper's analysis uses the bare name, "{}").
    Returns {key: shape}.
    """
    if (class_names is None) == (captions is None):
        raise ValueError("give exactly one of class names or captions")
    if "{}" not in template:
        raise ValueError(f"--template must contain '{{}}' where the class name goes; got {template!r}")
    pre = pretrained if isinstance(pretrained, Pretrained) else load_pretrained(pretrained)
    if class_names is not None:
        paths, labels, names = read_class_folders(images, class_names)
        texts = [template.format(n) for n in names]
    else:
        paths, texts = read_captions(images, captions)
        labels = None
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be >= 1; got {limit}")
        paths = paths[:limit]
        if labels is not None:
            labels = labels[:limit]
        else:
            texts = texts[:limit]
    size = min(batch_size, len(paths))
    zimg = np.concatenate([pre.embed_images(pre.load_images(paths[a:a + batch_size]), batch_size=size, pad_to=size)
                           for a in _progress(range(0, len(paths), batch_size), progress, "image batches")])
    ztxt = pre.embed_texts(texts, batch_size=batch_size, progress=progress)
    arrays = {"image": np.asarray(zimg, np.float64), "text": np.asarray(ztxt, np.float64),
              "t": np.float64(pre.temperature), "b": np.float64(pre.bias),
              "texts": np.asarray(texts, dtype=str), "files": np.asarray([str(p) for p in paths], dtype=str)}
    if labels is not None:
        arrays["labels"] = labels
    from .. import io

    io.save_npz(out, **arrays)
    return {k: tuple(np.shape(v)) for k, v in arrays.items()}


def _progress(it, progress, desc):
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, disable=not progress, unit="batch")


# ----------------------------------------------------------------------------- the E10 table

#: (column title, function of (analysis, npz arrays)) for :func:`e10_table`.
E10_COLUMNS = (
    ("d", lambda a, z: f"{a.dim}"),
    ("images x texts", lambda a, z: f"{a.n_images} x {a.n_texts}"),
    ("mean positive cos", lambda a, z: f"{a.mean_positive:.4f}"),
    ("mean negative cos", lambda a, z: f"{a.mean_negative:.4f}"),
    ("mean-based margin", lambda a, z: f"{a.mean_margin:.4f}"),
    ("mean-based b_rel", lambda a, z: f"{a.mean_relative_bias:.4f}"),
    ("trimmed margin", lambda a, z: f"{a.trimmed_margin:.4f}"),
    ("m*", lambda a, z: f"{a.margin:.4f}"),
    ("xi", lambda a, z: f"{a.xi:.3f}"),
    ("separable", lambda a, z: "yes" if a.linearly_separable else "no"),
    ("t", lambda a, z: f"{float(z['t']):.2f}" if "t" in z else ""),
    ("b", lambda a, z: f"{float(z['b']):.2f}" if "b" in z else ""),
    ("-b/t", lambda a, z: f"{-float(z['b']) / float(z['t']):.4f}" if "t" in z and "b" in z else ""),
)


def e10_table(embeddings: dict) -> tuple[str, dict]:
    """The paper's table of real-model statistics (theory.md E10), one row per checkpoint.

    Args:
      embeddings: {row name: path of an .npz written by :func:`export_pretrained_embeddings`
        (keys image, text, optional labels, t, b)}.
    Returns:
      (markdown table, {row name: EmbeddingAnalysis}) from :func:`constellations.analysis.analyze_embeddings`.
    """
    from ..analysis import analyze_embeddings

    rows, results = [], {}
    for name, path in embeddings.items():
        try:
            with np.load(path, allow_pickle=False) as f:
                z = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read embeddings {path}: {e}") from None
        if "image" not in z or "text" not in z:
            raise ValueError(f"{path} lacks the image/text arrays of `embed --pretrained`")
        a = analyze_embeddings(z["image"], z["text"], z.get("labels"))
        results[name] = a
        rows.append("| " + " | ".join([name] + [f(a, z) for _, f in E10_COLUMNS]) + " |")
    head = "| checkpoint | " + " | ".join(t for t, _ in E10_COLUMNS) + " |"
    rule = "|" + "---|" * (len(E10_COLUMNS) + 1)
    return "\n".join([head, rule] + rows) + "\n", results


# ---------------------------------------------------------------------- training from a checkpoint

_LOADED: dict = {}


def _load_cached(path) -> Pretrained:
    """load_pretrained, once per folder and weights file version (build and init_params both ask)."""
    folder = resolve_checkpoint_dir(path)
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file())
    key = (str(folder.resolve()), stamp)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_pretrained(folder)
    return _LOADED[key]


def towers_for_training(cfg) -> tuple[dict, dict, PretrainedTokenizer]:
    """(ViT fields, TextTransformer fields, tokenizer) of ``cfg.model.init_from`` for the trainer.

    The checkpoint fixes the architecture (the ``model`` variants are ignored), the tokenizer and
    the input sizes: ``data.image_size`` and ``data.max_len`` must equal the checkpoint's.
    """
    pre = _load_cached(cfg.model["init_from"])
    if int(cfg.data.image_size) != pre.image_size or int(cfg.data.max_len) != pre.max_len:
        raise ValueError(f"model.init_from {cfg.model['init_from']} takes {pre.image_size} px images and "
                         f"{pre.max_len} text tokens; set data.image_size={pre.image_size} "
                         f"data.max_len={pre.max_len} (got {cfg.data.image_size} and {cfg.data.max_len})")
    return dict(pre.model.image), dict(pre.model.text), pre.tokenizer


def params_for_training(cfg) -> dict:
    """{"img", "txt", "loss"} of ``cfg.model.init_from`` as float32 numpy, the loss scalars in
    ``cfg.loss.parameterization``: standard (t', b), relative_bias (t', b_rel = -b / t), softmax (t')."""
    pre = _load_cached(cfg.model["init_from"])
    t_prime = np.asarray(pre.params["loss"]["t_prime"], np.float32)
    b = np.asarray(pre.params["loss"]["b"], np.float32)
    loss = {"t_prime": t_prime}
    if cfg.loss.parameterization == "standard":
        loss["b"] = b
    elif cfg.loss.parameterization == "relative_bias":
        loss["b_rel"] = np.asarray(-b / np.exp(t_prime), np.float32)
    import jax

    towers = jax.tree.map(lambda a: np.array(a, np.float32), {"img": pre.params["img"], "txt": pre.params["txt"]})
    return {**towers, "loss": loss}
