"""Shared machinery of the SigLIP studies: a frozen image tower with cached embeddings, and SigLiT runs.

SigLiT (the SigLIP paper's locked-image setting): the image tower is frozen, its embeddings of a
finite training pool are computed once and cached, and only the text tower and the loss scalars
train. One run here is the trainer's own loop (:func:`constellations.siglip.train.train_steps`: same
towers, loss implementations, optax chain and schedule) over chunks of steps whose batches are
gathered from the cached pool on the device, so thousands of small-batch steps cost no Python per
step; the batch at step s is the trainer's stream (``batch_indices``), a pure function of (run seed, s).

**The frozen tower** is a ViT (``lab-xs/8``, MAP head) trained for a few hundred steps as a
*supervised* classifier of the six shape attributes (shape, colour, size, position, count,
background; one linear head each, discarded afterwards; :mod:`constellations.siglip.pretrain`) on
shapes images whose indices are disjoint from both the contrastive pool and the evaluation set. It is a fair frozen tower for comparing
losses because it was trained with neither of the compared losses (as LiT's frozen towers are
pretrained on labels), is bit-identical for every run of every study with the same seed, and its
embedding (the L2-normalized MAP output) carries the attributes the captions talk about, which a
random-init tower would only partly do. It is cached under ``OUT/siglip_frozen_tower/`` with its
config; a later study with the same config loads it instead of retraining. A spec subclass names
another data set, its heads and cache folder (``hard_negatives.FineSpec``: the fine-grained set).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import pickle
import time
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from constellations import io
from constellations.analysis import analyze_embeddings
from constellations import reference as numpy_reference
from constellations.siglip.checkpoint import restore_checkpoint, save_checkpoint
from constellations.siglip.config import default_config, merge
from constellations.siglip.data import ATTRIBUTES, BACKGROUNDS, COLOURS, COUNTS, EVAL_OFFSET, POSITIONS, SHAPES, \
    SIZES, ShapesDataset, batch_indices, make_eval_dataset
from constellations.siglip.distributed import replicate, to_host
from constellations.siglip.embed import apply_in_batches, make_embedders
from constellations.siglip.evaluate import class_embeddings, evaluate_embeddings, zero_shot_accuracy
from constellations.siglip.losses import temperature_and_bias
from constellations.siglip.models import ViT, count_params, decode_variant, init_towers
from constellations.siglip.pretrain import ImageClassifier, batch_order, train_classifier
from constellations.siglip.train import build, init_params, init_state
from experiments.lab import progress_bar
from constellations.siglip.train import train_steps as run_train_steps   # FrozenSpec has a field train_steps


#: Number of classes of each attribute head of the supervised frozen tower.
ATTRIBUTE_CLASSES = {"shape": len(SHAPES), "colour": len(COLOURS), "size": len(SIZES),
                     "position": len(POSITIONS), "count": len(COUNTS), "background": len(BACKGROUNDS)}
#: Shapes indices of the frozen tower's supervised training images: far from the contrastive pool
#: (0 .. pool_size - 1) and from the evaluation range (EVAL_OFFSET = 2^40).
TOWER_OFFSET = 1 << 36
MAX_LEN = 16


# ----------------------------------------------------------------------------------------------
# The frozen image tower.


@dataclass(frozen=True)
class FrozenSpec:
    """The frozen tower and the cached pools (the data seed of every study that uses it)."""

    seed: int = 0
    pool_size: int = 16384          # contrastive training pool: shapes examples 0 .. pool_size - 1
    eval_size: int = 1024           # held-out examples EVAL_OFFSET + 0 .. eval_size - 1
    image_variant: str = "lab-xs/8"
    train_images: int = 8192        # supervised pretraining images (indices TOWER_OFFSET + ...)
    train_steps: int = 600
    train_batch: int = 128
    lr: float = 1e-3

    # Not fields (the cache's config is the fields): what a spec for another data set overrides
    # (``hard_negatives.FineSpec``): the trainer's data.name, the cache folder, and the methods below.
    data_name: ClassVar[str] = "shapes"
    cache_name: ClassVar[str] = "siglip_frozen_tower"

    def dataset(self):
        """The data set of the tower's images, the pool and the held-out set (indices as in the module docstring)."""
        return ShapesDataset(self.seed, 32)

    def attribute_classes(self) -> dict:
        """{label: number of classes}: the supervised heads, and the labels cached for the pool and held-out set."""
        return ATTRIBUTE_CLASSES

    def data_options(self) -> dict:
        """Extra ``data.*`` fields of the trainer config for this data set."""
        return {}

    def __post_init__(self):
        for name in ("pool_size", "eval_size", "train_images", "train_steps", "train_batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"FrozenSpec.{name} must be a positive integer; got {v!r}")
        if self.train_batch > self.train_images:
            raise ValueError(f"train_batch {self.train_batch} exceeds train_images {self.train_images}")


@dataclass
class FrozenImages:
    """The frozen tower's parameters, its cached embeddings, and how good it is."""

    spec: FrozenSpec
    img_params: dict               # the TwoTowers "img" subtree (a ViT)
    train_z: np.ndarray            # (pool_size, d) float32 unit rows of the contrastive pool
    train_norm: np.ndarray         # (pool_size,) norms before normalization
    eval_z: np.ndarray             # (eval_size, d) held-out embeddings
    eval_labels: dict              # attribute -> (eval_size,) int labels
    pool_labels: dict              # attribute -> (pool_size,) int labels
    head_accuracy: dict            # attribute -> held-out accuracy of the (discarded) linear head
    wall_time_s: float = 0.0
    loaded_from_cache: bool = False

    @property
    def dim(self) -> int:
        return int(self.train_z.shape[1])


def _image_config(variant: str) -> dict:
    image = decode_variant(variant)
    image.setdefault("patch_size", (4, 4))
    image["out_dim"] = None
    return image


def _train_classifier(spec: FrozenSpec, progress: bool):
    """Supervised pretraining of the frozen tower (:mod:`constellations.siglip.pretrain`) on its own images."""
    ex = spec.dataset().get(TOWER_OFFSET + np.arange(spec.train_images))
    model = ImageClassifier(_image_config(spec.image_variant), spec.attribute_classes())
    params = model.init(jax.random.key(spec.seed), jnp.asarray(ex["images"][:1]))["params"]
    optim = merge(default_config(), dict(optim=dict(lr=spec.lr))).optim
    order = batch_order(spec.train_images, spec.train_steps, spec.train_batch, spec.seed)
    params, losses = train_classifier(model, params, ex["images"], ex["labels"], order, optim, progress=progress,
                                      desc="frozen tower (supervised)")
    return model, params, losses


def _image_template(spec: FrozenSpec) -> dict:
    """{"img": ViT parameters} of the frozen tower's architecture (the shapes a cached checkpoint must have)."""
    vit = ViT(**_image_config(spec.image_variant))
    return {"img": vit.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))["params"]}


def _load_frozen(folder: Path, spec: FrozenSpec, t0: float) -> FrozenImages:
    """The cached tower: its checkpoint (shape-checked) and its embeddings; ValueError if anything is damaged."""
    try:
        tree, _ = restore_checkpoint(folder, _image_template(spec))
        with np.load(folder / "embeddings.npz", allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        summary = json.loads((folder / "summary.json").read_text())
        frozen = FrozenImages(spec, tree["img"], data["train_z"], data["train_norm"], data["eval_z"],
                              {k.partition("/")[2]: v for k, v in data.items() if k.startswith("eval_label/")},
                              {k.partition("/")[2]: v for k, v in data.items() if k.startswith("pool_label/")},
                              summary["head_accuracy"], time.perf_counter() - t0, True)
    except Exception as e:  # missing file, bad zip, bad JSON, wrong shapes: all mean a damaged cache
        raise ValueError(f"the frozen-tower cache in {folder} is damaged ({type(e).__name__}: {e}); "
                         "delete that folder to train the tower again") from None
    want = ((spec.pool_size, frozen.dim), (spec.eval_size, frozen.dim))
    if (frozen.train_z.shape, frozen.eval_z.shape) != want or frozen.train_norm.shape != (spec.pool_size,):
        raise ValueError(f"the frozen-tower cache in {folder} holds embeddings of the wrong shape "
                         f"{frozen.train_z.shape}, {frozen.eval_z.shape}; delete that folder to train the tower again")
    return frozen


def frozen_image_tower(out_root, spec: FrozenSpec, *, progress: bool = True) -> FrozenImages:
    """Train (or load from ``out_root/<spec.cache_name>``) the frozen tower and cache its embeddings.

    The cache is the tower as a trainer checkpoint (``checkpoints/``), ``embeddings.npz`` (pool and
    held-out embeddings and labels), ``summary.json``, and last ``config.json``, whose spec must
    equal ``spec`` for the cache to be used; a cache of this spec that cannot be read is an error.
    """
    t0 = time.perf_counter()
    folder = Path(out_root) / spec.cache_name
    folder.mkdir(parents=True, exist_ok=True)
    # Studies run side by side (python -m experiments run studies: one process each) share this tower:
    # the first trains it while the others wait on the lock, then load what it saved.
    with _exclusive(folder / ".lock"):
        return _frozen_image_tower(folder, spec, progress, t0)


@contextlib.contextmanager
def _exclusive(lock_file: Path):
    """An exclusive lock between processes on ``lock_file`` (fcntl; no lock where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:         # not POSIX: studies run one after another there anyway
        yield
        return
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _frozen_image_tower(folder: Path, spec: FrozenSpec, progress: bool, t0: float) -> FrozenImages:
    config = {"spec": dataclasses.asdict(spec), "version": 2}
    cfg_file = folder / "config.json"
    if cfg_file.is_file() and json.loads(cfg_file.read_text()) == json.loads(json.dumps(config)):
        return _load_frozen(folder, spec, t0)

    model, params, losses = _train_classifier(spec, progress)
    ds = spec.dataset()

    @jax.jit
    def features_and_heads(p, x):
        f = ViT(**_image_config(spec.image_variant)).apply({"params": p["img"]}, x)
        return f, {k: jnp.argmax(v, axis=1) for k, v in model.apply({"params": p}, x).items()}

    def embed_pool(indices):
        return _embed_images(lambda x: features_and_heads(params, x), ds, indices)

    train_z, train_norm, _ = embed_pool(np.arange(spec.pool_size))
    eval_idx = EVAL_OFFSET + np.arange(spec.eval_size)
    eval_z, _, predicted = embed_pool(eval_idx)
    eval_labels = ds.get(eval_idx, images=False)["labels"]
    pool_labels = ds.get(np.arange(spec.pool_size), images=False)["labels"]
    accuracy = {k: float(np.mean(predicted[k] == eval_labels[k])) for k in spec.attribute_classes()}
    save_checkpoint(folder, {"img": params["img"]}, spec.train_steps, meta={"frozen_spec": dataclasses.asdict(spec)},
                    keep=1)
    io.save_npz(folder / "embeddings.npz", train_z=train_z, train_norm=train_norm, eval_z=eval_z, train_loss=losses,
                **{f"eval_label/{k}": v for k, v in eval_labels.items()},
                **{f"pool_label/{k}": v for k, v in pool_labels.items()})
    io.write_json(folder / "summary.json", {"head_accuracy": accuracy, "final_train_loss": float(losses[-1]),
                                            "embedding_dim": int(train_z.shape[1])})
    io.write_json(cfg_file, config)
    return FrozenImages(spec, params["img"], train_z, train_norm, eval_z, eval_labels, pool_labels, accuracy,
                        time.perf_counter() - t0, False)


def _embed_images(features_and_more, ds, indices, chunk: int = 256):
    """(unit embeddings, norms, rest): ``features_and_more(images) -> (features, rest)`` on ``ds``'s examples
    ``indices``, rendering and embedding ``chunk`` images at a time."""
    parts = [apply_in_batches(lambda x: features_and_more(jnp.asarray(x)), ds.get(indices[a:a + chunk])["images"], chunk)
             for a in range(0, len(indices), chunk)]
    f, rest = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
    f = np.asarray(f, np.float32)
    n = np.linalg.norm(f, axis=1)
    return f / (n[:, None] + 1e-8), n, rest


def embed_with_frozen(frozen: FrozenImages, spec: FrozenSpec) -> FrozenImages:
    """The same frozen tower's cached embeddings of another data configuration ``spec`` (same tower fields).

    For a study that varies the data (not the tower): the tower of ``frozen`` embeds the pool and the
    held-out set of ``spec.dataset()``; its head accuracy is the tower's own (measured on its data).
    """
    t0 = time.perf_counter()
    vit = ViT(**_image_config(frozen.spec.image_variant))
    apply = jax.jit(lambda x: (vit.apply({"params": frozen.img_params}, x), {}))
    ds = spec.dataset()
    train_z, train_norm, _ = _embed_images(apply, ds, np.arange(spec.pool_size))
    eval_idx = EVAL_OFFSET + np.arange(spec.eval_size)
    eval_z, _, _ = _embed_images(apply, ds, eval_idx)
    eval_labels = ds.get(eval_idx, images=False)["labels"]
    pool_labels = ds.get(np.arange(spec.pool_size), images=False)["labels"]
    return FrozenImages(spec, frozen.img_params, train_z, train_norm, eval_z, eval_labels, pool_labels,
                        dict(frozen.head_accuracy), time.perf_counter() - t0, frozen.loaded_from_cache)


def start_study(out_root, name: str, cfg: dict, *, progress: bool) -> tuple[Path, FrozenImages]:
    """Write ``<out_root>/<name>/config.json`` and get the frozen tower of ``cfg["frozen"]`` (cached)."""
    out = Path(out_root) / name
    io.write_json(out / "config.json", cfg)
    return out, frozen_image_tower(out_root, FrozenSpec(**cfg["frozen"]), progress=progress)


def same_attribute_fraction(labels: dict) -> float:
    """P(two distinct pool examples have the same six attributes): the chance a negative is a false one."""
    keys = np.stack([labels[k] for k in ATTRIBUTES], axis=1)
    _, counts = np.unique(keys, axis=0, return_counts=True)
    n = len(keys)
    return float(np.sum(counts * (counts - 1)) / (n * (n - 1)))


# ----------------------------------------------------------------------------------------------
# One SigLiT run.


@dataclass(frozen=True)
class LitSpec:
    """One text tower trained from scratch against the frozen image embeddings."""

    parameterization: str = "standard"     # "standard" (t, b), "relative_bias" (t, b_rel) or "softmax"
    batch_size: int = 256
    examples_seen: int = 1 << 18
    temperature_init: float = 10.0
    bias_init: float = -10.0
    relative_bias_init: float | None = None
    text_variant: str = "mu"
    text_bottleneck: int | None = None
    extra_languages: int = 0
    lr: float = 1e-3
    run_seed: int | None = None            # text-tower init and batch order (default: the data seed)
    label: str = ""

    @property
    def steps(self) -> int:
        return self.examples_seen // self.batch_size


def lit_config(frozen: FrozenSpec, spec: LitSpec):
    """The trainer config of a SigLiT run (LiT mode, cached image embeddings, finite pool)."""
    if spec.examples_seen % spec.batch_size:
        raise ValueError(f"examples_seen {spec.examples_seen} must be a multiple of the batch size {spec.batch_size}")
    if spec.batch_size > frozen.pool_size:
        raise ValueError(f"batch size {spec.batch_size} exceeds the training pool ({frozen.pool_size} examples)")
    return merge(default_config(), dict(
        seed=frozen.seed, total_steps=spec.steps, batch_size=spec.batch_size, progress=False,
        data=dict(name=frozen.data_name, image_size=32, max_len=MAX_LEN, tokenizer="word", num_examples=frozen.pool_size,
                  extra_languages=spec.extra_languages, **frozen.data_options()),
        model=dict(image_variant=frozen.image_variant, text_variant=spec.text_variant,
                   text_bottleneck=spec.text_bottleneck),
        loss=dict(parameterization=spec.parameterization, implementation="dense",
                  temperature_init=spec.temperature_init, bias_init=spec.bias_init,
                  relative_bias_init=spec.relative_bias_init),
        optim=dict(lr=spec.lr),
        lit=dict(enabled=True, cache_image_embeddings=True),
        eval=dict(every_steps=0, num_examples=frozen.eval_size),
    ))


def training_stream(num_examples: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch) example indices: the trainer's stream, epoch after epoch of permutations.

    Position p = s * B + i of the stream is perm_e[p mod N] with e = p // N (``batch_indices``);
    ``batch_indices(e, N, N, seed)`` is exactly perm_e, so the stream is their concatenation.
    """
    total = steps * batch_size
    epochs = [batch_indices(e, num_examples, num_examples, seed)[0] for e in range(math.ceil(total / num_examples))]
    return np.concatenate(epochs)[:total].reshape(steps, batch_size).astype(np.int32)


_POOL_CACHE: dict = {}


def _pool_captions(setup, frozen: FrozenSpec, extra_languages: int):
    """(captions, tokens) of the training pool, computed once per data configuration."""
    key = (frozen.data_name, tuple(sorted(frozen.data_options().items())), frozen.seed, frozen.pool_size,
           extra_languages, setup.max_len, setup.tokenizer.vocab_size)
    if key not in _POOL_CACHE:
        captions = setup.dataset.get(np.arange(frozen.pool_size), images=False)["captions"]
        _POOL_CACHE[key] = (captions, setup.tokenizer.encode(captions, setup.max_len))
    return _POOL_CACHE[key]


def _chunk_length(steps: int, target_chunks: int = 16) -> int:
    for n in range(min(target_chunks, steps), steps + 1):
        if steps % n == 0:
            return steps // n
    return steps


@dataclass
class LitRun:
    """A finished SigLiT run: its spec and config, per-step history, final evaluation and geometry."""

    spec: LitSpec
    config: dict
    history: dict                 # name -> (steps,) float arrays: loss, t, b, b_rel, logit stats, norms, lr
    evaluation: dict              # zero-shot, retrieval, geometry (constellations.siglip.evaluate)
    analysis: dict                # analyze_embeddings of the held-out (image, caption) pairs
    initial_check: dict           # first logged loss vs constellations.loss on the initial towers
    text_params: int
    embedding_params: int
    vocab_size: int
    wall_time_s: float
    examples_per_sec: float
    loaded_from_cache: bool = False   # True when train_lit read it from a study's runs_cache/

    def summary(self) -> dict:
        h = self.history
        return {
            "label": self.spec.label, **dataclasses.asdict(self.spec), "steps": self.spec.steps,
            "final_loss": float(np.mean(h["loss"][-max(1, len(h["loss"]) // 50):])),
            "t": float(h["t"][-1]), "b": float(h["b"][-1]), "b_rel": float(h["b_rel"][-1]),
            "text_params": self.text_params, "embedding_params": self.embedding_params,
            "vocab_size": self.vocab_size, "wall_time_s": self.wall_time_s,
            "examples_per_sec": self.examples_per_sec, "initial_check": self.initial_check,
            "loaded_from_cache": self.loaded_from_cache,
            **self.evaluation, **{f"analysis/{k}": v for k, v in self.analysis.items()},
        }


def zero_shot_mean(evaluation: dict) -> float:
    """Mean of the zero-shot shape and colour accuracies (the headline number of every study)."""
    return 0.5 * (evaluation["zeroshot/shape"] + evaluation["zeroshot/colour"])


def _initial_loss_check(setup, params, batch_idx, captions, frozen: FrozenImages, spec: LitSpec, logged: float) -> dict:
    """The logged (float32) loss at step 0 against the NumPy float64 reference on the initial towers' embeddings.

    The reference takes t0, b0 (or b_rel0) of the spec exactly, not their float32 parameters, so runs that
    start at the same logits in exact arithmetic (b0 = -10 and b_rel0 = 1 at t0 = 10) have equal references.
    """
    _, embed_texts = make_embedders(setup, params, 256)
    V = np.asarray(embed_texts([captions[i] for i in batch_idx]), np.float64)
    U = np.asarray(frozen.train_z[batch_idx], np.float64)
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    t = spec.temperature_init
    if spec.parameterization == "softmax":
        reference = numpy_reference.softmax_loss(U, V, t, "per_example")
    else:
        b_rel = -spec.bias_init / t if spec.relative_bias_init is None else spec.relative_bias_init
        b = spec.bias_init if spec.parameterization == "standard" else -t * b_rel
        reference = numpy_reference.sigmoid_loss(U, V, t, b, "per_example")
    return {"logged": float(logged), "reference": reference,
            "relative_error": abs(float(logged) - reference) / max(abs(reference), 1e-12)}


def scan_training(setup, params: dict, pool: dict, stream: np.ndarray, *, progress: bool = False, label: str = ""):
    """The trainer's loop (:func:`~constellations.siglip.train.train_steps`) for ``len(stream)`` steps, in chunks.

    Args:
      setup: the trainer's Setup of a LiT config with cached image embeddings.
      params: initial host parameters {"img", "txt", "loss"}.
      pool: {"tokens": (N, L) int32, "zimg": (N, d) unit rows, "img_norm": (N,)}: the cached pool.
      stream: (steps, B) pool indices of every step's batch (:func:`training_stream`).
    Returns:
      (final host parameters, history {metric: (steps,) float64} as the trainer logs every step, seconds).
    """
    steps = len(stream)
    mesh = setup.mesh
    state = replicate(mesh, init_state(setup, params))
    pool = replicate(mesh, {"tokens": np.asarray(pool["tokens"], np.int32), "zimg": np.asarray(pool["zimg"], np.float32),
                            "img_norm": np.asarray(pool["img_norm"], np.float32)})
    chunk = _chunk_length(steps)
    history: dict = {}
    start = time.perf_counter()
    with progress_bar(steps, label, progress) as bar:
        for a in range(0, steps, chunk):
            state, metrics = run_train_steps(setup, state, stream[a:a + chunk], pool=pool)
            for k, v in to_host(metrics).items():
                history.setdefault(k, []).append(np.asarray(v, np.float64))
            if bar is not None:
                bar.update(chunk)
                bar.set_postfix(loss=f"{float(history['loss'][-1][-1]):.3f}", t=f"{float(history['t'][-1][-1]):.1f}")
    seconds = time.perf_counter() - start
    history = {k: np.concatenate(v) for k, v in history.items()}
    return to_host(state.params), history, seconds


#: Folder (in a study's output folder) of its finished runs, each saved as it finishes.
RUNS_CACHE = "runs_cache"
_CODE_FINGERPRINT: dict = {}


def _code_fingerprint(*extra_files) -> str:
    """sha256 of the source a run's numbers depend on: the library, this module and ``extra_files``."""
    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "constellations").rglob("*.py")) + [Path(__file__).resolve()] + \
        sorted(Path(f).resolve() for f in extra_files)
    key = tuple(str(f) for f in files)
    if key not in _CODE_FINGERPRINT:
        digest = hashlib.sha256()
        for f in files:
            digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
        _CODE_FINGERPRINT[key] = digest.hexdigest()
    return _CODE_FINGERPRINT[key]


def run_key(frozen: FrozenImages, spec: LitSpec, zero_shot_languages=(), extra_eval=None) -> str:
    """The name of a run in :data:`RUNS_CACHE`: a hash of everything that decides its numbers (the frozen
    tower's spec, the run's spec and evaluations, jax's version and the source code they run)."""
    import inspect

    extra = [] if extra_eval is None else [inspect.getsourcefile(extra_eval)]
    what = {"frozen": [type(frozen.spec).__name__, dataclasses.asdict(frozen.spec)], "spec": dataclasses.asdict(spec),
            "zero_shot_languages": [int(x) for x in zero_shot_languages],
            "extra_eval": None if extra_eval is None else f"{extra_eval.__module__}.{extra_eval.__qualname__}",
            "jax": jax.__version__, "code": _code_fingerprint(*extra)}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:24]


def train_lit(frozen: FrozenImages, spec: LitSpec, *, progress: bool = True, zero_shot_languages=(),
              extra_eval=None, cache_dir=None) -> LitRun:
    """Train one text tower from scratch against the cached frozen image embeddings, then evaluate it.

    ``extra_eval``: None, or ``f(embed_texts, frozen) -> dict`` of a study's own evaluations of the
    trained text tower (``embed_texts``: caption strings -> (n, d) unit rows), merged into the evaluation.
    ``cache_dir``: None, or a folder where the finished run is saved (atomically) under :func:`run_key`,
    and from which it is loaded instead of trained when it is there: a study that stops (a crash, a
    kill) and is run again loses only the run it was in. Any change to the spec, the frozen tower, jax
    or the code behind the run changes the key, so a stale run is never reused.
    """
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{run_key(frozen, spec, zero_shot_languages, extra_eval)}.pickle"
        if cached.is_file():
            run = pickle.loads(cached.read_bytes())
            if isinstance(run, LitRun) and run.spec == spec:
                run.loaded_from_cache = True
                return run
        run = train_lit(frozen, spec, progress=progress, zero_shot_languages=zero_shot_languages,
                        extra_eval=extra_eval)
        io.write_bytes(cached, pickle.dumps(run))
        return run
    t0 = time.perf_counter()
    cfg = lit_config(frozen.spec, spec)
    setup = build(cfg)
    run_seed = frozen.spec.seed if spec.run_seed is None else int(spec.run_seed)
    params = init_params(setup)
    params["img"] = jax.tree.map(np.asarray, frozen.img_params)
    if run_seed != frozen.spec.seed:
        params["txt"] = jax.tree.map(np.asarray, init_towers(setup.model, jax.random.key(run_seed),
                                                             image_size=setup.image_size, max_len=setup.max_len)["txt"])
    captions, tokens = _pool_captions(setup, frozen.spec, spec.extra_languages)
    stream = training_stream(frozen.spec.pool_size, spec.batch_size, spec.steps, run_seed)
    pool = {"tokens": tokens, "zimg": frozen.train_z, "img_norm": frozen.train_norm}
    host, history, train_time = scan_training(setup, params, pool, stream, progress=progress,
                                              label=spec.label or f"{spec.parameterization} B={spec.batch_size}")
    if not np.all(np.isfinite(history["loss"])):
        raise FloatingPointError(f"run {spec.label!r}: the loss became non-finite at step "
                                 f"{int(np.argmin(np.isfinite(history['loss'])))}")

    initial = _initial_loss_check(setup, params, stream[0], captions, frozen, spec, history["loss"][0])
    evaluation, analysis = evaluate_lit(setup, host, frozen, cfg, zero_shot_languages=zero_shot_languages)
    if extra_eval is not None:
        evaluation.update(extra_eval(make_embedders(setup, host, 256)[1], frozen))
    embedding = host["txt"]["embedding"]["embedding"].size + (
        host["txt"]["embedding_projection"]["kernel"].size if "embedding_projection" in host["txt"] else 0)
    return LitRun(spec, cfg.to_dict(), history, evaluation, analysis, initial, count_params(host["txt"]),
                  int(embedding), setup.tokenizer.vocab_size, time.perf_counter() - t0,
                  spec.steps * spec.batch_size / max(train_time, 1e-9))


def evaluate_lit(setup, host: dict, frozen: FrozenImages, cfg, *, zero_shot_languages=()) -> tuple[dict, dict]:
    """Zero-shot, retrieval and geometry on the held-out set (cached image embeddings), plus analyze_embeddings."""
    eval_data = make_eval_dataset(cfg.data, seed=cfg.seed)
    n = frozen.spec.eval_size
    captions = eval_data.get(EVAL_OFFSET + np.arange(n), images=False)["captions"]
    _, embed_texts = make_embedders(setup, host, 256)
    t, b = map(float, temperature_and_bias(host["loss"], cfg.loss.parameterization))
    examples = {"images": np.arange(n), "captions": [[c] for c in captions], "labels": frozen.eval_labels}
    tasks = eval_data.zero_shot_tasks()
    evaluation = evaluate_embeddings(lambda _: frozen.eval_z, embed_texts, examples, tasks, t=t, b=b, geometry=True)
    for lang in zero_shot_languages:
        embed_lang = (lambda caps, lang=lang: embed_texts([eval_data.translate(c, lang) for c in caps]))
        for task, (key, names, templates) in tasks.items():
            W = class_embeddings(embed_lang, list(names), list(templates))
            evaluation[f"zeroshot_language{lang}/{task}"] = zero_shot_accuracy(frozen.eval_z, W, frozen.eval_labels[key])
    U = np.asarray(frozen.eval_z, np.float64)
    V = np.asarray(embed_texts(captions), np.float64)
    paired = analyze_embeddings(U, V, normalize=True).to_dict()
    analysis = {k: paired[k] for k in ("margin", "relative_bias", "trimmed_margin", "trimmed_relative_bias",
                                       "mean_margin", "mean_relative_bias", "xi", "linearly_separable")}
    key, names, templates = tasks["shape"]
    W = class_embeddings(embed_texts, list(names), list(templates))
    classes = analyze_embeddings(U, W, frozen.eval_labels[key], normalize=True).to_dict()
    analysis.update({f"shape_classes_{k}": classes[k] for k in ("margin", "relative_bias", "trimmed_margin",
                                                                "trimmed_relative_bias")})
    return evaluation, analysis


# ----------------------------------------------------------------------------------------------
# Saving.


def save_runs(out: Path, runs: list[LitRun], stem: str = "runs") -> None:
    """``<stem>.json``: one summary per run; ``<stem>_history.npz``: every run's per-step history."""
    io.write_json(out / f"{stem}.json", [r.summary() for r in runs])
    arrays = {}
    for i, r in enumerate(runs):
        for k, v in r.history.items():
            arrays[f"{i:02d}/{k}"] = np.asarray(v, np.float32)
    arrays["labels"] = np.array([r.spec.label for r in runs])
    io.save_npz(out / f"{stem}_history.npz", **arrays)


def frozen_note(frozen: FrozenImages) -> str:
    acc = ", ".join(f"{k} {v:.2f}" for k, v in frozen.head_accuracy.items())
    where = "loaded from its cache" if frozen.loaded_from_cache else f"trained in {frozen.wall_time_s:.0f} s"
    return (f"Frozen image tower: a `{frozen.spec.image_variant}` ViT (MAP head, embedding width {frozen.dim}) trained "
            f"{frozen.spec.train_steps} steps of batch {frozen.spec.train_batch} as a supervised classifier of the six "
            f"shape attributes on {frozen.spec.train_images} images disjoint from the pool and the held-out set "
            f"({where}; held-out accuracy of its discarded linear heads: {acc}). Trained with neither contrastive loss, "
            f"identical in every run, its embeddings of the {frozen.spec.pool_size}-example pool and the "
            f"{frozen.spec.eval_size} held-out examples are computed once and cached.")
