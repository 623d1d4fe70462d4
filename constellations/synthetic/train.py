"""``train_synthetic`` and ``train_grid``: the public entry points of the synthetic engine.

``train_synthetic`` trains ``seeds`` runs of one configuration (api.md); ``train_grid`` trains a list
of variants (each a dict overriding t0, b_rel0, parameterization, trainable, lr, adapter_x0) times
``seeds``, all in one compiled, vmapped call. Both return a :class:`SyntheticResult` whose final
m* and b*_rel come from :mod:`constellations.geometry` in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .._validation import check_int
from . import engine
from .engine import PARAMETERIZATIONS, TRAINABLE_NAMES, EngineConfig, RunInputs

#: Keys a variant of :func:`train_grid` may set.
VARIANT_KEYS = ("parameterization", "t0", "b_rel0", "trainable", "lr", "adapter_x0")


@dataclass(frozen=True)
class SyntheticResult:
    """Result of synthetic training. Arrays have a leading batch shape B: (seeds,) from
    :func:`train_synthetic`, (variants, seeds) from :func:`train_grid`.

    Attributes:
      U, V: (*B, N, d') the final vectors of modalities 0 and 1 as the loss sees them (unit rows;
        d' = d + 1 with the explicit adapter, which is then applied). Training precision (float32).
      embeddings: (*B, k, N, d') every modality.
      t: (*B,) final inverse temperature.
      b_rel: (*B,) final relative bias (-b / t in the standard parameterization).
      bias: (*B,) the final bias in the run's own coordinate (b_rel, or b for "standard").
      delta: (*B,) adapter delta = sigmoid(x) (NaN without adapter).
      loss: (*B, steps // loss_every) the loss before each step of ``loss_steps`` (reduction "mean").
      loss_steps: (steps // loss_every,) the steps whose loss is recorded: every step by default; with
        ``loss_every = L`` the last of every L (L - 1, 2L - 1, ..., steps - 1), so ``final_loss`` is
        always the loss before the last step.
      margin, relative_bias: (*B,) m* and b*_rel of the final vectors (geometry, float64).
      history: metric name -> (*B, n_points) records at ``history_steps`` (float32, in-graph).
      history_steps: (n_points,) step numbers of the records (0 = initial state).
      config: the engine options and per-variant settings (JSON-ready).
      variants: the variant dicts (resolved), one per leading index of a grid.
      wall_time_s: training wall time.
    """

    U: np.ndarray
    V: np.ndarray
    embeddings: np.ndarray
    t: np.ndarray
    b_rel: np.ndarray
    bias: np.ndarray
    delta: np.ndarray
    loss: np.ndarray
    margin: np.ndarray
    relative_bias: np.ndarray
    history: dict
    history_steps: np.ndarray
    config: dict
    variants: tuple = field(default=())
    wall_time_s: float = 0.0
    loss_steps: np.ndarray | None = None

    @property
    def final_loss(self) -> np.ndarray:
        return self.loss[..., -1]


def _check_real(x, name, *, positive=False):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number; got {x!r}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite; got {x}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be > 0; got {x}")
    return x


def _resolve_variant(base: Mapping[str, Any], override: Mapping[str, Any], k: int, adapter: bool) -> dict:
    unknown = set(override) - set(VARIANT_KEYS)
    if unknown:
        raise ValueError(f"unknown variant key(s) {sorted(unknown)}; allowed: {VARIANT_KEYS}")
    v = {**base, **override}
    if v["parameterization"] not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}; got {v['parameterization']!r}")
    trainable = v["trainable"]
    if isinstance(trainable, str):
        raise ValueError(f"trainable must be a collection of names from {TRAINABLE_NAMES}, not a string; got {trainable!r}")
    trainable = tuple(trainable)
    bad = [n for n in trainable if n not in TRAINABLE_NAMES]
    if bad:
        raise ValueError(f"unknown trainable name(s) {bad}; allowed: {TRAINABLE_NAMES} (a name left out is frozen)")
    v["trainable"] = tuple(n for n in TRAINABLE_NAMES if n in trainable)
    v["t0"] = _check_real(v["t0"], "t0 (initial inverse temperature)", positive=True)
    v["b_rel0"] = _check_real(v["b_rel0"], "b_rel0 (initial relative bias)")
    v["lr"] = _check_real(v["lr"], "lr (learning rate)", positive=True)
    v["adapter_x0"] = _check_real(v["adapter_x0"], "adapter_x0")
    v["adapter"] = adapter
    return v


def _run_inputs(variants: Sequence[dict], seeds: int, k: int) -> RunInputs:
    rows = []
    for v in variants:
        rb = v["parameterization"] == "relative_bias"
        mask = [("U" if a == 0 else "V") in v["trainable"] for a in range(k)]
        mask += ["t" in v["trainable"], "bias" in v["trainable"], v["adapter"]]
        for s in range(seeds):
            rows.append((s, v["t0"], v["b_rel0"] if rb else -v["t0"] * v["b_rel0"], v["lr"], v["adapter_x0"], rb, mask))
    cols = list(zip(*rows))
    return RunInputs(
        seed_index=np.array(cols[0], np.int32), t0=np.array(cols[1]), bias0=np.array(cols[2]), lr=np.array(cols[3]),
        adapter_x0=np.array(cols[4]), relative_bias=np.array(cols[5], bool), trainable=np.array(cols[6], bool))


def train_grid(N: int, d: int, variants: Sequence[Mapping[str, Any]] = ({},), *, seeds: int = 1, steps: int = 5000,
               parameterization: str = "relative_bias", t0: float = 10.0, b_rel0: float = 0.0,
               trainable: Sequence[str] = TRAINABLE_NAMES, lr: float = 1e-2, adapter_x0: float = 0.0, seed: int = 0,
               k: int = 2, graph="complete", adapter: bool = False, normalize: bool = True, loss: str = "exact",
               dtype: str = "float32", metric_every: int | None = None, loss_every: int = 1,
               chunk_size: int | None = None,
               workers: int | None = None, progress=None) -> SyntheticResult:
    """Train len(variants) x seeds runs in one compiled, vmapped call (see :func:`train_synthetic`).

    Each variant is a dict that overrides the keyword defaults for ``parameterization``, ``t0``,
    ``b_rel0``, ``trainable``, ``lr`` and ``adapter_x0``; run (v, s) starts from the seed-s vectors
    of :func:`engine.initial_embeddings`, the same for every variant. The result's arrays have
    leading shape (len(variants), seeds).
    """
    seeds = check_int(seeds, "seeds (runs per variant)", low=1)
    seed = check_int(seed, "seed", low=0)
    cfg = engine.make_config(N, d, steps=steps, k=k, graph=graph, normalize=normalize, loss=loss, adapter=adapter,
                             dtype=dtype, metric_every=metric_every, loss_every=loss_every)
    if isinstance(variants, Mapping) or not len(variants):
        raise ValueError("variants must be a non-empty sequence of dicts")
    base = dict(parameterization=parameterization, t0=t0, b_rel0=b_rel0, trainable=trainable, lr=lr,
                adapter_x0=adapter_x0)
    resolved = [_resolve_variant(base, v, cfg.k, cfg.adapter) for v in variants]
    runs = _run_inputs(resolved, seeds, cfg.k)

    def describe(i):
        v = resolved[i // seeds]
        return (f"variant {i // seeds} (seed index {i % seeds}; {v['parameterization']}, t0={v['t0']:g}, "
                f"b_rel0={v['b_rel0']:g}, lr={v['lr']:g}, trainable={','.join(v['trainable']) or 'none'})")

    if progress is True:
        from tqdm.auto import tqdm

        with tqdm(total=len(runs) * cfg.steps, desc=f"train N={cfg.N} d={cfg.d}", unit="step", unit_scale=True,
                  leave=False, dynamic_ncols=True) as bar:
            out = engine.run_batch(cfg, runs, seed=seed, chunk_size=chunk_size, workers=workers, progress=bar,
                                   describe=describe)
    else:
        if progress is not None and progress is not False and not callable(getattr(progress, "update", None)):
            raise ValueError(f"progress must be True, False, None or a tqdm-like object with update(n); got {progress!r}")
        out = engine.run_batch(cfg, runs, seed=seed, chunk_size=chunk_size, workers=workers,
                               progress=None if progress is False else progress, describe=describe)
    margin, rel = engine.final_geometry(out.embeddings, cfg.edges)
    shape = (len(resolved), seeds)
    t = np.exp(out.scalars[:, 0].astype(np.float64))
    bias = out.scalars[:, 1].astype(np.float64)
    b_rel = np.where(runs.relative_bias, bias, -bias / t)
    delta = 1 / (1 + np.exp(-out.scalars[:, 2].astype(np.float64))) if cfg.adapter else np.full(len(runs), np.nan)
    emb = out.embeddings.reshape(shape + out.embeddings.shape[1:])
    return SyntheticResult(
        U=emb[..., 0, :, :], V=emb[..., 1, :, :], embeddings=emb,
        t=t.reshape(shape), b_rel=b_rel.reshape(shape), bias=bias.reshape(shape), delta=delta.reshape(shape),
        loss=out.loss.reshape(shape + out.loss.shape[1:]), loss_steps=cfg.loss_steps,
        margin=margin.reshape(shape), relative_bias=rel.reshape(shape),
        history={m: h.reshape(shape + h.shape[1:]) for m, h in out.history.items()},
        history_steps=out.history_steps, config=engine_config_dict(cfg, seed=seed, seeds=seeds),
        variants=tuple(resolved), wall_time_s=out.wall_time_s)


def train_synthetic(N: int, d: int, *, seeds: int = 1, steps: int = 5000, parameterization: str = "relative_bias",
                    t0: float = 10.0, b_rel0: float = 0.0, trainable: Sequence[str] = TRAINABLE_NAMES,
                    lr: float = 1e-2, seed: int = 0, **options) -> SyntheticResult:
    """Train ``seeds`` independent runs of free unit vectors with full-batch Adam (theory.md s.5).

    N pairs (U_i, V_i) of free vectors on S^{d-1}, t = exp(t') from t0, the bias from b_rel0 (b_rel
    itself for ``parameterization="relative_bias"``; b = -t0 b_rel0 for ``"standard"``), loss
    reduction "mean", in-loss row normalization plus re-projection after every step, float32. All
    seeds run in one compiled call (vmap over runs, lax.scan over steps).

    Args:
      N: pairs (>= 2). d: dimension (>= 1). seeds: independent runs (different initial vectors).
      steps: Adam steps (>= 1). parameterization: "relative_bias" or "standard".
      t0: initial inverse temperature (> 0). b_rel0: initial relative bias.
      trainable: names among ("U", "V", "t", "bias"); a name left out is frozen (e.g. without "U"
        the first modality is locked, as in E2; without "bias", b_rel or b stays at its start).
      lr: Adam learning rate. seed: base seed of the initial vectors.
      **options: keyword-only engine options: ``k`` (modalities; "U" is modality 0, "V" the others),
        ``graph`` ("complete", "star" or edges), ``adapter`` (explicit adapter of C10, k = 2; its x
        trains, from ``adapter_x0``), ``normalize`` (in-loss normalization, default True),
        ``loss`` ("exact" or "epsilon"), ``dtype``, ``metric_every``, ``loss_every`` (record the
        loss every L steps, the last of each L; the other steps skip the loss value, ~25% faster at
        N = 100; must divide metric_every), ``chunk_size``,
        ``workers``, ``progress``.

    Returns:
      A :class:`SyntheticResult` with arrays of leading shape (seeds,): ``.U``, ``.V`` (seeds, N, d),
      ``.t``, ``.b_rel``, ``.margin``, ``.relative_bias`` (seeds,), ``.loss`` (seeds, steps).

    Raises:
      ValueError: bad arguments. engine.DivergenceError: a run's loss became NaN or infinite.

    Example:
      >>> r = train_synthetic(20, 3, seeds=2, steps=200)
      >>> r.U.shape, r.loss.shape
      ((2, 20, 3), (2, 200))
    """
    res = train_grid(N, d, ({},), seeds=seeds, steps=steps, parameterization=parameterization, t0=t0, b_rel0=b_rel0,
                     trainable=trainable, lr=lr, seed=seed, **options)
    squeeze = {f: getattr(res, f)[0] for f in ("U", "V", "embeddings", "t", "b_rel", "bias", "delta", "loss",
                                               "margin", "relative_bias")}
    return SyntheticResult(**squeeze, history={m: h[0] for m, h in res.history.items()},
                           history_steps=res.history_steps, config={**res.config, **_variant_json(res.variants[0])},
                           variants=res.variants, wall_time_s=res.wall_time_s, loss_steps=res.loss_steps)


def _variant_json(v: dict) -> dict:
    return {key: (list(v[key]) if key == "trainable" else v[key]) for key in VARIANT_KEYS}


def engine_config_dict(cfg: EngineConfig, **extra) -> dict:
    """The engine options as a JSON-ready dict (goes into every experiment's config.json)."""
    import jax

    return {"N": cfg.N, "d": cfg.d, "k": cfg.k, "edges": [list(e) for e in cfg.edges], "steps": cfg.steps,
            "normalize_in_loss": cfg.normalize, "reproject_after_step": True, "loss": cfg.loss,
            "loss_reduction": "mean (over pairs, then over edges)", "adapter": cfg.adapter,
            "dtype": cfg.dtype, "optimizer": "Adam (optax.scale_by_adam: b1=0.9, b2=0.999, eps=1e-8), full batch",
            "metric_every": cfg.metric_every, "loss_every": cfg.loss_every, "jax_version": jax.__version__, **extra}
