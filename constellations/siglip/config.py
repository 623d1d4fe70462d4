"""Configs as data: a small attribute dict, Python config files, and the trainer's defaults.

A config file (``experiments/siglip/*.py``) defines ``get_config(arg=None)`` returning a
:class:`Config`; ``load_config("file.py:arg")`` calls it with ``arg``. Overrides use dotted keys,
``apply_overrides(cfg, ["optim.lr=3e-4", "loss.implementation='ring'"])`` (values are Python
literals; a bare word is taken as a string).
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
from pathlib import Path
from typing import Any, Iterable


class Config(dict):
    """A dict whose keys are also attributes; nested dicts become Configs."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def __setitem__(self, key, value):
        if isinstance(value, dict) and not isinstance(value, Config):
            value = Config(value)
        super().__setitem__(key, value)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no field {key!r}") from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def default_config() -> Config:
    """Every field the trainer reads, with its default (``siglip_reference.md`` section 6.4)."""
    return Config(
        seed=0,
        total_steps=1000,
        batch_size=128,                       # global batch, over all devices and processes
        log_steps=10,
        checkpoint_steps=200,
        keep_checkpoints=2,
        progress=True,
        data=dict(name="shapes", image_size=32, max_len=16, tokenizer="word", sentencepiece_vocab_size=1000,
                  root=None, eval_root=None, captions_file=None, resize=False, num_examples=None,
                  extra_languages=0,            # shapes only: captions also in this many generated languages
                  num_classes=None),            # finegrained only: classes in use (None: all 3,840)
        model=dict(image_variant="lab-xs/4", text_variant=None, image_out_dim=None,
                   text_bottleneck=None,        # K: token embedding vocab -> K -> width (None: vocab -> width)
                   init_from=None),             # a Hugging Face SigLIP folder: its towers, weights, t, b, tokenizer
        loss=dict(parameterization="standard", implementation="dense", temperature_init=10.0, bias_init=-10.0,
                  relative_bias_init=None, max_temperature=None,
                  tile=1024,                  # tiled/ring: logit tile edge (or [rows, cols]); None: dense ring blocks
                  kernel="auto"),             # tiled: "auto" (Pallas on GPU/TPU, XLA on CPU), "xla" or "pallas"
        optim=dict(lr=1e-3, b1=0.9, b2=0.95, eps=1e-8, weight_decay=1e-4, grad_clip_norm=1.0,
                   schedule="cosine", warmup_steps=None, warmup_fraction=0.05, rsqrt_timescale=1000),
        lit=dict(enabled=False, cache_image_embeddings=False),
        model_init=None,                      # a checkpoint (file or workdir) to start the towers from
        model_load=("img",),                  # which parts of model_init to load
        eval=dict(every_steps=200, num_examples=512, batch_size=256, geometry=True),
    )


def merge(base: Config, updates: dict) -> Config:
    """``base`` with ``updates`` written over it recursively (unknown keys are an error)."""
    out = copy.deepcopy(base)
    for k, v in updates.items():
        if k not in out:
            raise ValueError(f"unknown config field {k!r}; known: {sorted(out)}")
        if isinstance(out[k], dict) and isinstance(v, dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(spec: str) -> Config:
    """Load ``path.py`` or ``path.py:arg`` (calls ``get_config(arg)``), merged over the defaults."""
    path, _, arg = str(spec).partition(":")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    mod_spec = importlib.util.spec_from_file_location(f"_siglip_config_{path.stem}", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path} must define get_config(arg=None)")
    cfg = module.get_config(arg or None)
    return merge(default_config(), cfg)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(cfg: Config, overrides: Iterable[str]) -> Config:
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        node = cfg
        *parents, leaf = key.strip().split(".")
        for p in parents:
            if p not in node or not isinstance(node[p], dict):
                raise ValueError(f"unknown config field {key!r}")
            node = node[p]
        if leaf not in node:
            raise ValueError(f"unknown config field {key!r}")
        node[leaf] = _literal(value.strip())
    return cfg


#: What every field of :func:`default_config` means (``python -m constellations.siglip config FILE`` prints them).
FIELD_HELP = {
    "seed": "seed of the data order, the initial weights and the generated data",
    "total_steps": "optimizer steps of the whole run (extend it to continue a finished run)",
    "batch_size": "global batch: pairs per step over all devices and processes",
    "log_steps": "write a metrics.jsonl record every this many steps",
    "checkpoint_steps": "save a checkpoint every this many steps (and at the end)",
    "keep_checkpoints": "how many recent checkpoints to keep",
    "progress": "show a tqdm progress bar",
    "data.name": "data set: 'shapes' (procedural), 'finegrained' (procedural, 3,840 classes), 'digits', "
                 "or 'folder' (images + captions file)",
    "data.image_size": "image side in pixels",
    "data.max_len": "caption length in tokens (padded or cut to it)",
    "data.tokenizer": "'word' (a vocabulary of the captions' words) or 'sentencepiece'",
    "data.sentencepiece_vocab_size": "vocabulary size when training a SentencePiece tokenizer",
    "data.root": "folder data: the images' folder",
    "data.eval_root": "folder data: the held-out images' folder",
    "data.captions_file": "folder data: IMAGE<TAB>caption lines",
    "data.resize": "folder data: resize images to image_size (else they must have that size)",
    "data.num_examples": "size of a finite training set (None: generated on the fly)",
    "data.extra_languages": "shapes: captions also in this many generated languages",
    "data.num_classes": "finegrained: classes in use, K (None: all 3,840); P(two examples share a caption) = 1/K",
    "model.image_variant": "image tower: ViT variant 'NAME/PATCH' (lab-xs/4, mu/8, B/16, ...)",
    "model.text_variant": "text tower variant (None: the image tower's width)",
    "model.image_out_dim": "embedding dimension of both towers (None: the width)",
    "model.text_bottleneck": "K: token embedding vocab -> K -> width (None: vocab -> width)",
    "model.init_from": "a Hugging Face SigLIP folder: start from its towers, weights, t, b and tokenizer",
    "loss.parameterization": "'standard' (t, b), 'relative_bias' (t, b_rel = -b/t) or 'softmax' (CLIP)",
    "loss.implementation": "'dense' or 'tiled' (one device), 'all_gather', 'ring' or 'ring_bidirectional' across devices",
    "loss.temperature_init": "initial inverse temperature t (t = exp(t') is trained)",
    "loss.bias_init": "initial bias b (standard parameterization)",
    "loss.relative_bias_init": "initial b_rel (relative_bias; None: -bias_init / temperature_init)",
    "loss.max_temperature": "clamp t at this value (None: no clamp)",
    "loss.tile": "tiled and ring losses: logit tile side (int or [rows, cols]); memory O(B d + tile^2); "
                 "None: the ring's dense blocks",
    "loss.kernel": "tiled loss: how tiles are swept, 'auto' (Pallas on GPU/TPU, XLA scan on CPU), 'xla', 'pallas' "
                   "or 'pallas_interpret'; on GPU pick a tile that suits a kernel block (e.g. 128)",
    "optim.lr": "peak learning rate of AdamW",
    "optim.b1": "Adam's first-moment decay (0 <= b1 < 1)",
    "optim.b2": "Adam's second-moment decay (0 <= b2 < 1; 0.95 as in SigLIP)",
    "optim.eps": "Adam's epsilon",
    "optim.weight_decay": "decoupled weight decay of the kernels",
    "optim.grad_clip_norm": "clip the global gradient norm to this (None: no clipping)",
    "optim.schedule": "'cosine', 'rsqrt' or 'constant' after the warmup",
    "optim.warmup_steps": "linear warmup steps (None: warmup_fraction of total_steps)",
    "optim.warmup_fraction": "warmup as a fraction of total_steps",
    "optim.rsqrt_timescale": "timescale of the 'rsqrt' schedule",
    "lit.enabled": "LiT: freeze the image tower, train the text tower",
    "lit.cache_image_embeddings": "LiT: embed the frozen images once and train from the cache",
    "model_init": "a checkpoint (file or workdir) to start the towers from",
    "model_load": "which parts of model_init to load ('img', 'txt')",
    "eval.every_steps": "evaluate every this many steps (0: never during training)",
    "eval.num_examples": "held-out pairs for retrieval, zero-shot and geometry",
    "eval.batch_size": "batch size when embedding for evaluation",
    "eval.geometry": "also compute m*, b*_rel and the modality-gap statistics of the held-out embeddings",
}


def _flatten(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def describe_config(cfg: Config) -> str:
    """Every field of ``cfg`` (merged over the defaults), its value, and what it means."""
    flat = _flatten(merge(default_config(), cfg))
    width = max(len(f"{k} = {v!r}") for k, v in flat.items())
    return "\n".join(f"{f'{k} = {v!r}':<{width}}  # {FIELD_HELP.get(k, '(undocumented)')}" for k, v in flat.items())
