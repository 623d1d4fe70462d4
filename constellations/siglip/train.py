"""The SigLIP trainer, top to bottom: build, restore or init, loop, evaluate, checkpoint.

One training step on a global batch of B (image, caption) pairs sharded over the ("data",) mesh:

    zimg = img_tower(images) / |.|,  ztxt = txt_tower(tokens) / |.|          (towers under plain jit)
    L = -(1/B) sum_ij log sigmoid(z_ij (t <zimg_i, ztxt_j> + b))             (losses.py; dense/all-gather/ring)
    params <- params - s(step) * (lr * adam_{b1, b2}(clip(grad)) + wd * kernel)   (big_vision's optax chain)

(wd is *not* multiplied by lr, only by the schedule s, as in big_vision.) LiT mode freezes the image
tower: it is left out of the differentiated and optimized parameters (so it stays bit-identical) and
its embedding is ``stop_gradient``-ed; optionally the frozen embeddings of a finite data set are
computed once and cached. The batch at step s is a pure function of (seed, s), checkpoints hold every
leaf of the state, and so a run stopped at step k and resumed equals the uninterrupted run bit for bit.

Every update goes through :func:`train_steps`, which applies the step (:func:`make_train_step`) to a
stack of k batches in one compiled ``lax.scan``: :func:`train` calls it one step at a time (a batch
rendered on the host per step, logging, checkpoints and evaluations in between); the SigLIP studies
call it on chunks of hundreds of steps whose batches are gathered from a device-resident pool.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from tqdm.auto import tqdm

from .. import io
from . import checkpoint as ckpt
from .config import Config, default_config, merge
from .data import batch_indices, make_dataset, make_eval_dataset, texts_for_tokenizer
from .distributed import data_mesh, global_batch, replicate, to_host
from .evaluate import evaluate_embeddings
from .embed import embed_image_pool, make_embedders
from .losses import check_loss_choice, init_loss_params, make_contrastive_loss, temperature_and_bias
from .models import TwoTowers, init_towers, model_key, tower_configs
from .tiled import KERNELS, check_tile
from .tokenizer import SentencePieceTokenizer, WordTokenizer, tokenizer_from_dict


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite; the run stops without checkpointing it."""


class TrainingInterrupted(RuntimeError):
    """SIGINT or SIGTERM stopped the run after saving a checkpoint at ``step``; training again resumes it."""

    def __init__(self, message: str, signum: int, step: int):
        super().__init__(message)
        self.signum, self.step = signum, step


class ConfigChanged(ValueError):
    """Resuming a run with a config that differs from its checkpoint's in a field that changes the training."""


# Fields a resumed run may change without ``allow_config_change``: they only decide what is logged,
# saved or evaluated, and when. (total_steps too, checked separately: it must not fall below the
# restored step; extending it stretches the learning-rate schedule from there on.)
RESUMABLE_FIELDS = ("total_steps", "log_steps", "checkpoint_steps", "keep_checkpoints", "progress", "eval.*")


# ----------------------------------------------------------------------------------------------
# Building blocks.


def learning_rate_schedule(optim: Config, total_steps: int):
    """s(step) in [0, 1]: linear warmup, then cosine to 0, rsqrt (1/sqrt(1 + (s - w)/tau)) or constant."""
    warmup = optim.warmup_steps if optim.warmup_steps is not None else round(optim.warmup_fraction * total_steps)
    warmup = int(max(0, min(warmup, total_steps)))
    kind = optim.schedule
    if kind not in ("cosine", "rsqrt", "constant"):
        raise ValueError(f"optim.schedule must be 'cosine', 'rsqrt' or 'constant'; got {kind!r}")
    tau = float(optim.rsqrt_timescale)

    def schedule(count):
        s = jnp.asarray(count, jnp.float32)
        warm = jnp.minimum(1.0, (s + 1.0) / max(warmup, 1)) if warmup else 1.0
        after = jnp.maximum(s - warmup, 0.0)
        if kind == "cosine":
            decay = 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.minimum(after / max(total_steps - warmup, 1), 1.0)))
        elif kind == "rsqrt":
            decay = 1.0 / jnp.sqrt(1.0 + after / tau)
        else:
            decay = 1.0
        return warm * decay

    return schedule


def kernel_mask(params):
    """True for leaves named 'kernel' (the weights that get weight decay), False elsewhere."""
    return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def make_optimizer(optim: Config, total_steps: int) -> optax.GradientTransformation:
    """big_vision's chain: clip, Adam(b1, b2=0.95), * lr, + wd * kernel, * schedule, * -1."""
    for name in ("lr", "weight_decay", "grad_clip_norm"):
        if not (optim[name] >= 0 and math.isfinite(optim[name])):
            raise ValueError(f"optim.{name} must be finite and >= 0; got {optim[name]!r}")
    return optax.chain(
        optax.clip_by_global_norm(optim.grad_clip_norm),
        optax.scale_by_adam(b1=optim.b1, b2=optim.b2, eps=optim.eps),
        optax.scale(optim.lr),
        optax.add_decayed_weights(optim.weight_decay, mask=kernel_mask),
        optax.scale_by_schedule(learning_rate_schedule(optim, total_steps)),
        optax.scale(-1.0),
    )


def build_tokenizer(cfg: Config, dataset, workdir: Path | None):
    """The workdir's saved tokenizer if there is one, else a new one (word vocabulary or SentencePiece)."""
    saved = workdir / "tokenizer.json" if workdir is not None else None
    if saved is not None and saved.is_file():
        return tokenizer_from_dict(json.loads(saved.read_text()))
    kind = cfg.data.tokenizer
    if kind == "word":
        words = dataset.vocabulary()
        return WordTokenizer(words) if words is not None else WordTokenizer.from_texts(texts_for_tokenizer(dataset))
    if kind == "sentencepiece":
        return SentencePieceTokenizer.train(texts_for_tokenizer(dataset), vocab_size=cfg.data.sentencepiece_vocab_size)
    raise ValueError(f"data.tokenizer must be 'word' or 'sentencepiece'; got {kind!r}")


def validate_config(cfg: Config) -> None:
    check_loss_choice(cfg.loss.parameterization, cfg.loss.implementation)
    if cfg.loss.tile is not None or cfg.loss.implementation == "tiled":
        check_tile(cfg.loss.tile, "loss.tile")
    if cfg.loss.kernel not in KERNELS:
        raise ValueError(f"loss.kernel must be one of {KERNELS}; got {cfg.loss.kernel!r}")
    for name in ("total_steps", "batch_size", "log_steps", "checkpoint_steps"):
        if not isinstance(cfg[name], int) or isinstance(cfg[name], bool) or cfg[name] < 1:
            raise ValueError(f"{name} must be a positive integer; got {cfg[name]!r}")
    if cfg.batch_size < 2:
        raise ValueError("batch_size must be at least 2 (a contrastive loss needs negatives)")
    if cfg.lit.cache_image_embeddings and not cfg.lit.enabled:
        raise ValueError("lit.cache_image_embeddings needs lit.enabled=True (the image tower must be frozen)")
    if cfg.loss.max_temperature is not None and not cfg.loss.max_temperature > 0:
        raise ValueError(f"loss.max_temperature must be None (no clamp) or > 0; got {cfg.loss.max_temperature!r}")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {cfg.seed!r}")
    o = cfg.optim
    _check_real(o.lr, "optim.lr", low=0.0, strict=True)
    _check_real(o.b1, "optim.b1", low=0.0, high=1.0)
    _check_real(o.b2, "optim.b2", low=0.0, high=1.0)
    _check_real(o.eps, "optim.eps", low=0.0, strict=True)
    _check_real(o.weight_decay, "optim.weight_decay", low=0.0)
    if o.grad_clip_norm is not None:      # 0 would scale every gradient to nothing: the model never learns
        _check_real(o.grad_clip_norm, "optim.grad_clip_norm (None: no clipping)", low=0.0, strict=True)
    _check_real(o.warmup_fraction, "optim.warmup_fraction", low=0.0, high=1.0)
    if o.warmup_steps is not None and (not isinstance(o.warmup_steps, int) or isinstance(o.warmup_steps, bool)
                                       or o.warmup_steps < 0):
        raise ValueError(f"optim.warmup_steps must be None or an integer >= 0; got {o.warmup_steps!r}")
    _check_real(cfg.loss.temperature_init, "loss.temperature_init", low=0.0, strict=True)
    _check_real(cfg.loss.bias_init, "loss.bias_init")
    if cfg.loss.relative_bias_init is not None:
        _check_real(cfg.loss.relative_bias_init, "loss.relative_bias_init")


def _check_real(x, name: str, *, low: float | None = None, high: float | None = None, strict: bool = False) -> None:
    """A finite real in [low, high) (low excluded too when ``strict``), or a ValueError naming the field."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite real number; got {x!r}")
    if low is not None and (x < low or (strict and x == low)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}; got {x!r}")
    if high is not None and x >= high:
        raise ValueError(f"{name} must be < {high:g}; got {x!r}")


@dataclass
class Setup:
    """Everything built from a config (no state): model, tokenizer, data, loss, optimizer, mesh."""

    cfg: Config
    model: TwoTowers
    tokenizer: object
    dataset: object
    loss_fn: object
    tx: optax.GradientTransformation
    mesh: object
    trainable_keys: tuple
    image_size: int
    max_len: int


def build(cfg: Config, workdir: Path | None = None) -> Setup:
    validate_config(cfg)
    dataset = make_dataset(cfg.data, seed=cfg.seed)
    image_size, max_len = int(cfg.data.image_size), int(cfg.data.max_len)
    if cfg.model.get("init_from"):   # a released checkpoint defines the towers and the tokenizer
        from .pretrained import towers_for_training

        image, text, tokenizer = towers_for_training(cfg)
    else:
        tokenizer = build_tokenizer(cfg, dataset, workdir)
        image, text = tower_configs(cfg.model, vocab_size=tokenizer.vocab_size, image_size=image_size, max_len=max_len)
    mesh = data_mesh()
    n_dev = mesh.devices.size
    if cfg.batch_size % n_dev:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {n_dev} devices")
    loss_fn = make_contrastive_loss(cfg.loss.parameterization, cfg.loss.implementation, mesh, tile=cfg.loss.tile,
                                   kernel=cfg.loss.kernel)
    trainable = ("txt", "loss") if cfg.lit.enabled else ("img", "txt", "loss")
    return Setup(cfg, TwoTowers(image, text), tokenizer, dataset, loss_fn, make_optimizer(cfg.optim, cfg.total_steps),
                 mesh, trainable, image_size, max_len)


def init_params(setup: Setup) -> dict:
    """Fresh parameters {"img", "txt", "loss"} (float32), or those of ``model.init_from``, then
    ``model_init`` parts if configured."""
    cfg = setup.cfg
    if cfg.model.get("init_from"):
        from .pretrained import params_for_training

        params = params_for_training(cfg)
    else:
        towers = init_towers(setup.model, jax.random.key(cfg.seed), image_size=setup.image_size, max_len=setup.max_len)
        params = {"img": towers["img"], "txt": towers["txt"],
                  "loss": init_loss_params(cfg.loss.parameterization, temperature_init=cfg.loss.temperature_init,
                                           bias_init=cfg.loss.bias_init, relative_bias_init=cfg.loss.relative_bias_init)}
    if cfg.model_init:
        params = ckpt.load_subtrees(cfg.model_init, params, tuple(cfg.model_load))
    return jax.tree.map(np.asarray, params)


def split_params(params: dict, trainable_keys) -> tuple[dict, dict]:
    return ({k: v for k, v in params.items() if k in trainable_keys},
            {k: v for k, v in params.items() if k not in trainable_keys})


@struct.dataclass
class TrainState:
    """Where a run is: the parameters being trained, the optimizer's state, the step count, and the
    parameters held fixed (LiT's image tower; left out of the gradient and the optimizer)."""

    trainable: dict
    opt_state: object
    step: jax.Array         # int32: steps taken
    frozen: dict

    @property
    def params(self) -> dict:
        return {**self.frozen, **self.trainable}


def init_state(setup: Setup, params: dict, step: int = 0, opt_state=None) -> TrainState:
    """The state of ``params`` ({"img", "txt", "loss"}) split by ``setup.trainable_keys`` (host arrays)."""
    trainable, frozen = split_params(params, setup.trainable_keys)
    opt_state = setup.tx.init(trainable) if opt_state is None else opt_state
    return TrainState(trainable, opt_state, np.int32(step), frozen)


def make_train_step(setup: Setup):
    """The update (trainable, frozen, opt_state, batch, step) -> (trainable, opt_state, metrics).

    ``batch`` is {"tokens", "images"} or, with LiT's cached image embeddings, {"tokens", "zimg",
    "img_norm"}; ``step`` (int32) only feeds the logged learning rate (optax counts its own steps).
    """
    cfg, model, loss_fn, tx = setup.cfg, setup.model, setup.loss_fn, setup.tx
    lit = cfg.lit.enabled
    max_t = cfg.loss.max_temperature
    schedule = learning_rate_schedule(cfg.optim, cfg.total_steps)

    def objective(trainable, frozen, batch):
        params = {**frozen, **trainable}
        variables = {"params": {"img": params["img"], "txt": params["txt"]}}
        if "zimg" in batch:
            zimg, img_norm = batch["zimg"], batch["img_norm"]
        else:
            zimg, img_norm = model.apply(variables, batch["images"], method=TwoTowers.embed_images)
        if lit:
            zimg = jax.lax.stop_gradient(zimg)
        ztxt, txt_norm = model.apply(variables, batch["tokens"], method=TwoTowers.embed_texts)
        loss, stats = loss_fn(zimg, ztxt, params["loss"])
        return loss, dict(stats, img_norm=jnp.mean(img_norm), txt_norm=jnp.mean(txt_norm))

    def step_fn(trainable, frozen, opt_state, batch, step):
        (loss, stats), grads = jax.value_and_grad(objective, has_aux=True)(trainable, frozen, batch)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        new = optax.apply_updates(trainable, updates)
        if max_t is not None:  # open_clip-style clamp of t' (off unless asked)
            new["loss"] = dict(new["loss"], t_prime=jnp.minimum(new["loss"]["t_prime"], jnp.float32(math.log(max_t))))
        metrics = dict(stats, loss=loss, t_prime=new["loss"]["t_prime"], grad_norm=optax.tree.norm(grads),
                       update_norm=optax.tree.norm(updates), param_norm=optax.tree.norm(new),
                       lr=cfg.optim.lr * schedule(step))
        return new, opt_state, metrics

    return step_fn


def train_steps(setup: Setup, state: TrainState, batches, *, pool=None) -> tuple[TrainState, dict]:
    """Advance ``state`` by k steps: the train step over k batches in one compiled ``lax.scan``.

    Args:
      setup: from :func:`build`.
      state: a :class:`TrainState` (on ``setup.mesh``, replicated; its buffers are donated).
      batches: the k batches stacked on a leading axis ({"tokens": (k, B, L), "images": (k, B, H,
        W, 3)} or, with cached image embeddings, "zimg": (k, B, d) and "img_norm": (k, B) instead
        of "images"); or, with ``pool``, a (k, B) int32 array of rows of ``pool``.
      pool: None, or {"tokens": (N, L), "zimg": (N, d), "img_norm": (N,)} on the device: each batch
        is then gathered from it inside the compiled loop (no host work per step).
    Returns:
      (the state after k steps, {metric: (k,) array}: every step's metrics).
    """
    run = _compiled_steps(setup)
    (trainable, opt_state, step), metrics = run((state.trainable, state.opt_state, state.step), state.frozen,
                                                batches, pool)
    return state.replace(trainable=trainable, opt_state=opt_state, step=step), metrics


# Compiled loops, reused by later runs in the same process that compile the same thing (compiling
# costs seconds on CPU; tests and sweeps train many short runs). The key holds only what the step
# compiles: architecture, loss choice and clamp, optimizer and schedule, LiT, devices; jit itself
# tells apart the shapes and batch kinds. Initial values are inputs, so they need no key.
_STEP_CACHE: dict = {}


def _compiled_steps(setup: Setup):
    cfg = setup.cfg
    key = json.dumps([model_key(setup.model), cfg.loss.parameterization, cfg.loss.implementation,
                      cfg.loss.max_temperature, cfg.optim, cfg.total_steps, cfg.lit.enabled,
                      [d.id for d in setup.mesh.devices.flat]], sort_keys=True, default=str)
    if key not in _STEP_CACHE:
        step_fn = make_train_step(setup)

        def run(carry, frozen, batches, pool):
            def body(carry, xs):
                trainable, opt_state, step = carry
                batch = xs if pool is None else jax.tree.map(lambda a: a[xs], pool)
                trainable, opt_state, metrics = step_fn(trainable, frozen, opt_state, batch, step)
                return (trainable, opt_state, step + 1), metrics

            return jax.lax.scan(body, carry, batches)

        repl = jax.sharding.NamedSharding(setup.mesh, jax.sharding.PartitionSpec())
        _STEP_CACHE[key] = jax.jit(run, donate_argnums=0, out_shardings=repl)
    return _STEP_CACHE[key]


class MetricsLog:
    """metrics.jsonl, rewritten atomically; on resume, records after the restored step are dropped. Where the
    tensorboard package is installed, every record also goes to event files in ``<workdir>/tensorboard``."""

    def __init__(self, path: Path, start_step: int, enabled: bool = True):
        from .plots import TensorBoardLog

        self.path, self.enabled, self.records = path, enabled, []
        self.tensorboard = TensorBoardLog.create(path.parent) if enabled else None
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    if rec.get("step", 0) <= start_step:
                        self.records.append(rec)

    def write(self, record: dict) -> None:
        self.records.append(record)
        if self.enabled:
            io.write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.records))
            if self.tensorboard is not None:
                self.tensorboard.write(record)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


@dataclass
class TrainResult:
    params: dict
    step: int
    workdir: Path
    metrics: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    parameterization: str = "standard"

    @property
    def t(self) -> float:
        return float(temperature_and_bias(self.params["loss"], self.parameterization)[0])

    @property
    def b(self) -> float:
        return float(temperature_and_bias(self.params["loss"], self.parameterization)[1])

    @property
    def b_rel(self) -> float:
        """The loss's relative bias -b/t where training ended (not b*_rel of the embeddings)."""
        return -self.b / self.t


# ----------------------------------------------------------------------------------------------
# Resuming and stopping.


def config_changes(saved: dict, cfg: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """[(dotted field, saved value, new value)] for every field where two configs (as JSON) differ."""
    out = []
    for key in sorted(set(saved) | set(cfg)):
        a, b = saved.get(key, "<absent>"), cfg.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((prefix + key, a, b))
    return out


def check_resume_config(saved: dict, cfg: Config, step: int, *, allow: bool, where) -> None:
    """Refuse (:class:`ConfigChanged`) to resume at ``step`` with ``cfg`` if it differs from the ``saved``
    config in a field outside :data:`RESUMABLE_FIELDS` (or shortens total_steps below ``step``), unless
    ``allow``; then every change is reported in a warning."""
    try:   # fields added to the defaults since the checkpoint was written count as their defaults
        saved = json.loads(merge(default_config(), saved).to_json())
    except ValueError:   # a field that no longer exists: compare as saved (it shows up as a change)
        pass
    changes = config_changes(saved, json.loads(cfg.to_json()))
    if not changes:
        return
    harmless = lambda k: any(k == f or (f.endswith(".*") and k.startswith(f[:-1])) for f in RESUMABLE_FIELDS)
    refused = [(k, a, b) for k, a, b in changes
               if not harmless(k) or (k == "total_steps" and isinstance(b, int) and b < step)]
    listing = ", ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in (refused or changes))
    if refused and not allow:
        raise ConfigChanged(f"{where} was trained to step {step} with a different config ({listing}); resuming "
                            "would silently mix two runs. Use a new workdir, or pass --allow-config-change "
                            "(train(..., allow_config_change=True)) to continue with the new config anyway.")
    if refused:
        warnings.warn(f"resuming {where} at step {step} with a changed config: {listing}", stacklevel=3)


class _StopOnSignal:
    """While active, the first SIGINT / SIGTERM only records itself (the loop then saves and stops); a
    second one goes to the handler that was there before (Ctrl-C: KeyboardInterrupt; SIGTERM: exit).
    Inactive outside the main thread and in multi-process runs, where every process would have to
    stop at the same step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum, self.previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            self.__exit__()
            signal.raise_signal(signum)
            return
        self.signum = signum
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint after this step, then stopping "
              "(send it again to abort without saving)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}


# ----------------------------------------------------------------------------------------------
# The loop.


def train(cfg: Config, workdir, *, stop_at_step: int | None = None, allow_config_change: bool = False) -> TrainResult:
    """Train (or resume) the run in ``workdir``; returns the final host parameters and logs.

    Resumes automatically from ``workdir/checkpoints/LAST`` (or, if that file is damaged, from the
    newest intact checkpoint, with a warning). A resumed run must keep its config except for the
    fields in :data:`RESUMABLE_FIELDS`, unless ``allow_config_change`` (:class:`ConfigChanged`
    otherwise); ``config.json`` is only written once the restore has succeeded. ``stop_at_step``
    stops early (with a checkpoint) as an interrupted run would; calling again continues where it
    stopped. SIGINT / SIGTERM save a checkpoint at the current step and raise
    :class:`TrainingInterrupted` (single-process runs).
    """
    cfg = merge(default_config(), cfg)
    workdir = Path(workdir)
    lead = jax.process_index() == 0
    setup = build(cfg, workdir)
    if lead:
        ckpt.remove_temporaries(workdir)     # of checkpoint writes a killed run left half done
    last = ckpt.checkpoint_to_resume(workdir) if lead else ckpt.newest_intact_checkpoint(workdir)[0]

    state = init_state(setup, init_params(setup))
    if last is not None:
        header = ckpt.read_header(last)
        if "config" in header:
            check_resume_config(header["config"], cfg, int(header["step"]), allow=allow_config_change, where=workdir)
        template = {"params": state.params, "opt_state": state.opt_state, "step": np.int64(0)}
        restored, _ = ckpt.restore_checkpoint(last, template)
        state = init_state(setup, restored["params"], int(restored["step"]), restored["opt_state"])
    if lead:
        workdir.mkdir(parents=True, exist_ok=True)
        io.write_text(workdir / "config.json", cfg.to_json() + "\n")
        io.write_text(workdir / "tokenizer.json", json.dumps(setup.tokenizer.to_dict()) + "\n")
    start = int(state.step)
    end = cfg.total_steps if stop_at_step is None else min(int(stop_at_step), cfg.total_steps)

    dataset, B = setup.dataset, cfg.batch_size
    cache = None
    if cfg.lit.cache_image_embeddings:
        if dataset.num_examples is None:
            raise ValueError("lit.cache_image_embeddings needs a finite data set (set data.num_examples for shapes)")
        cache = embed_image_pool(setup, state.params, np.arange(dataset.num_examples), batch_size=cfg.eval.batch_size)

    def host_batch(step):
        idx, epochs = batch_indices(step, B, dataset.num_examples, cfg.seed, process_index=jax.process_index(),
                                    process_count=jax.process_count())
        ex = dataset.get(idx, epochs, images=cache is None)
        batch = {"tokens": setup.tokenizer.encode(ex["captions"], setup.max_len)}
        if cache is None:
            batch["images"] = ex["images"]
        else:
            batch["zimg"], batch["img_norm"] = cache[0][idx], cache[1][idx]
        return batch

    mesh = setup.mesh
    state = replicate(mesh, state)
    log = MetricsLog(workdir / "metrics.jsonl", start, enabled=lead)
    eval_set = None
    evals = []
    saved_at = start

    def run_eval(step):
        nonlocal eval_set
        if eval_set is None:
            eval_data = make_eval_dataset(cfg.data, seed=cfg.seed)
            eval_set = (eval_data.eval_examples(cfg.eval.num_examples), eval_data.zero_shot_tasks())
        host = to_host(state.params)
        embed_images, embed_texts = make_embedders(setup, host, cfg.eval.batch_size)
        t, b = map(float, temperature_and_bias(host["loss"], cfg.loss.parameterization))
        res = evaluate_embeddings(embed_images, embed_texts, eval_set[0], eval_set[1], t=t, b=b,
                                  geometry=cfg.eval.geometry)
        record = {"step": step, **res}
        evals.append(record)
        log.write(record)
        return record

    def save(step):
        nonlocal saved_at
        saved_at = step
        if lead:
            saved = {"params": to_host(state.params), "opt_state": to_host(state.opt_state), "step": np.int64(step)}
            ckpt.save_checkpoint(workdir, saved, step, meta={"config": cfg.to_dict()}, keep=cfg.keep_checkpoints)

    do_eval = cfg.eval.every_steps and cfg.eval.every_steps > 0
    if do_eval and start == 0:
        run_eval(0)
    bar = tqdm(total=end, initial=start, desc="siglip", disable=not (lead and cfg.progress), dynamic_ncols=True)
    t_log, steps_since = time.perf_counter(), 0
    last_good = start
    done = start
    with _StopOnSignal() as stopper:
        for step in range(start, end):
            if stopper.signum is not None:   # stop between steps: after a whole step, before the next batch
                break
            batch = global_batch(mesh, jax.tree.map(lambda x: x[None], host_batch(step)), stacked=True)
            new_state, metrics = train_steps(setup, state, batch)          # one step
            metrics = {k: float(v[0]) for k, v in to_host(metrics).items()}
            loss, gnorm = metrics["loss"], metrics["grad_norm"]
            if not (math.isfinite(loss) and math.isfinite(gnorm)):
                bar.close()
                raise TrainingDiverged(
                    f"loss = {loss}, grad norm = {gnorm} at step {step + 1} (steps {last_good + 1}..{step + 1} since "
                    f"the last finite log); stopping without saving. The last checkpoint in {workdir / 'checkpoints'} "
                    "is unaffected: lower optim.lr, set loss.max_temperature, or check the data.")
            state = new_state
            steps_since += 1
            done = step + 1
            bar.update(1)
            if done % cfg.log_steps == 0 or done == end:
                now = time.perf_counter()
                record = {"step": done, **metrics, "examples_per_sec": steps_since * B / max(now - t_log, 1e-9)}
                log.write(record)
                bar.set_postfix(loss=f"{loss:.4f}", t=f"{record['t']:.2f}", b=f"{record['b']:.2f}")
                t_log, steps_since, last_good = now, 0, done
            if done % cfg.checkpoint_steps == 0 or done == end:
                save(done)
            if do_eval and (done % cfg.eval.every_steps == 0 or done == cfg.total_steps):
                run_eval(done)
        if stopper.signum is not None and done < end:
            if saved_at != done:
                save(done)
            bar.close()
            log.close()
            name = signal.Signals(stopper.signum).name
            raise TrainingInterrupted(f"{name}: stopped at step {done} of {end} with a checkpoint in "
                                      f"{workdir / 'checkpoints'}; train again to resume", stopper.signum, done)
    bar.close()
    log.close()
    if lead and log.records:
        from .plots import plot_runs

        plot_runs([workdir], workdir / "curves.png")   # the curves a SigLIP user looks at (plot command: any workdirs)
    return TrainResult(to_host(state.params), end, workdir, log.records, evals, cfg.loss.parameterization)


def _restore_for_eval(path, *, num_examples: int | None = None, overrides: dict | None = None):
    """(cfg, setup, params, step, checkpoint file) of a run (workdir) or checkpoint file, for evaluation."""
    path = Path(path)
    ckpt_file = ckpt.resolve_checkpoint(path)
    header, _ = ckpt.read_checkpoint(ckpt_file)
    workdir = ckpt_file.parent.parent
    if "config" not in header:
        raise ValueError(f"checkpoint {ckpt_file} has no saved config")
    cfg = merge(default_config(), header["config"])
    if overrides:
        cfg = merge(cfg, overrides)
    if num_examples is not None:
        cfg.eval.num_examples = int(num_examples)
    cfg.model_init = None  # every parameter comes from the checkpoint
    setup = build(cfg, workdir)
    params = init_params(setup)
    template = {"params": params, "opt_state": init_state(setup, params).opt_state, "step": np.int64(0)}
    state, _ = ckpt.restore_checkpoint(ckpt_file, template)
    return cfg, setup, state["params"], int(state["step"]), ckpt_file


def export_embeddings(path, out, *, num_examples: int | None = None) -> dict:
    """Write the held-out embeddings of a run's checkpoint to ``out`` (.npz), for ``python -m constellations analyze``.

    Keys: ``image`` (n, d) and ``text`` (n, d), one caption per image (the first), paired row by row;
    for every zero-shot task, ``<task>_classes`` (C, d) prompt-ensembled class embeddings and
    ``<task>_labels`` (n,) each image's class (many images per caption, as in the ImageNet analysis).
    Returns {key: shape}.
    """
    from .evaluate import class_embeddings

    cfg, setup, host, step, _ = _restore_for_eval(path, num_examples=num_examples)
    data = make_eval_dataset(cfg.data, seed=cfg.seed)
    embed_images, embed_texts = make_embedders(setup, host, cfg.eval.batch_size)
    ex = data.eval_examples(cfg.eval.num_examples)
    arrays = {"image": np.asarray(embed_images(ex["images"]), np.float64),
              "text": np.asarray(embed_texts([c[0] for c in ex["captions"]]), np.float64)}
    for task, (key, names, templates) in data.zero_shot_tasks().items():
        if key in ex["labels"]:
            arrays[f"{task}_classes"] = np.asarray(class_embeddings(embed_texts, list(names), list(templates)), np.float64)
            arrays[f"{task}_labels"] = np.asarray(ex["labels"][key], np.int64)
    io.save_npz(out, **arrays)
    return {k: v.shape for k, v in arrays.items()}


def evaluate_checkpoint(path, *, num_examples: int | None = None, overrides: dict | None = None) -> dict:
    """Evaluate a run (workdir) or checkpoint file with the config and tokenizer saved beside it."""
    cfg, setup, host, step, ckpt_file = _restore_for_eval(path, num_examples=num_examples, overrides=overrides)
    eval_data = make_eval_dataset(cfg.data, seed=cfg.seed)
    embed_images, embed_texts = make_embedders(setup, host, cfg.eval.batch_size)
    t, b = map(float, temperature_and_bias(host["loss"], cfg.loss.parameterization))
    res = evaluate_embeddings(embed_images, embed_texts, eval_data.eval_examples(cfg.eval.num_examples),
                              eval_data.zero_shot_tasks(), t=t, b=b, geometry=cfg.eval.geometry)
    return {"step": step, "checkpoint": str(ckpt_file), **res}
