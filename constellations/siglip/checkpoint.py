"""Atomic checkpoints with a LAST pointer, and exact restore into a template pytree.

Layout (big_vision's ``-LAST`` logic without tensorstore)::

    WORKDIR/checkpoints/ckpt-000000200.npz     every leaf of the train state + a JSON header
    WORKDIR/checkpoints/LAST                   the file name of the newest complete checkpoint

A checkpoint is written to a temporary file and renamed (``constellations.io.save_npz``); only then
is LAST rewritten (also by rename), and only then are old checkpoints pruned. A crash at any point
leaves LAST naming a complete file. The arrays are stored bit for bit, so a restored state is
identical to the saved one; restore checks every leaf's name, shape and dtype against a template
(the freshly initialised state) and raises ValueError on any mismatch or a corrupt file.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from .. import io

FORMAT = 1
_META = "__meta__"


def checkpoint_dir(workdir) -> Path:
    return Path(workdir) / "checkpoints"


def _flatten(tree):
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return [jax.tree_util.keystr(p) for p, _ in pairs], [v for _, v in pairs], treedef


def save_checkpoint(workdir, tree, step: int, *, meta: dict | None = None, keep: int = 2) -> Path:
    """Write ``tree`` (host arrays) as checkpoint ``step`` atomically, then point LAST at it."""
    names, leaves, _ = _flatten(tree)
    header = {"format": FORMAT, "step": int(step), "names": names, **(meta or {})}
    arrays = {f"a{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
    arrays[_META] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    folder = checkpoint_dir(workdir)
    path = io.save_npz(folder / f"ckpt-{int(step):09d}.npz", **arrays)
    io.write_text(folder / "LAST", path.name + "\n")
    if keep and keep > 0:
        old = sorted(p for p in folder.glob("ckpt-*.npz") if p.name != path.name)
        for p in old[: max(len(old) - (keep - 1), 0)]:
            p.unlink(missing_ok=True)
    return path


def latest_checkpoint(workdir) -> Path | None:
    """The checkpoint LAST points to, or None when the workdir has no LAST (a fresh run)."""
    last = checkpoint_dir(workdir) / "LAST"
    if not last.is_file():
        return None
    name = last.read_text().strip()
    path = last.parent / name
    if not name or not path.is_file():
        raise ValueError(f"{last} points to {name!r}, which does not exist: the checkpoint folder is damaged")
    return path


def resolve_checkpoint(path) -> Path:
    """A checkpoint file, or a workdir / checkpoints folder whose LAST names one."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for workdir in (path, path.parent):
            if (checkpoint_dir(workdir) / "LAST").is_file():
                return latest_checkpoint(workdir)
        raise ValueError(f"no checkpoint in {path} (expected {checkpoint_dir(path) / 'LAST'})")
    raise ValueError(f"checkpoint {path} does not exist")


def read_checkpoint(path) -> tuple[dict, dict]:
    """(header, {name: array}) of a checkpoint file; ValueError if it is missing or corrupt."""
    path = resolve_checkpoint(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z[_META]).decode("utf-8"))
            arrays = {name: z[f"a{i:05d}"] for i, name in enumerate(header["names"])}
    except Exception as e:  # zipfile, zlib, struct, json, NumPy header errors: all mean a damaged file
        raise ValueError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has format {header.get('format')!r}; this code reads format {FORMAT}")
    return header, arrays


def _check_leaf(name, saved, want, path):
    want_shape, want_dtype = np.shape(want), np.asarray(want).dtype if not hasattr(want, "dtype") else want.dtype
    if saved.shape != want_shape or saved.dtype != want_dtype:
        raise ValueError(f"checkpoint {path}: {name} has shape {saved.shape} dtype {saved.dtype}, but the model "
                         f"expects {want_shape} {want_dtype} (a different config?)")


def restore_checkpoint(path, template) -> tuple[object, dict]:
    """(tree, header): the saved leaves put into the structure of ``template``, checked leaf by leaf."""
    header, arrays = read_checkpoint(path)
    names, leaves, treedef = _flatten(template)
    missing = [n for n in names if n not in arrays]
    extra = [n for n in arrays if n not in set(names)]
    if missing or extra:
        raise ValueError(f"checkpoint {path} does not match the model: missing {missing[:5]}, unexpected {extra[:5]}")
    out = []
    for name, want in zip(names, leaves):
        _check_leaf(name, arrays[name], want, path)
        out.append(arrays[name])
    return jax.tree_util.tree_unflatten(treedef, out), header


def load_subtrees(path, template: dict, parts, *, prefix: str = "['params']") -> dict:
    """``template`` (a params dict) with the subtrees named in ``parts`` read from a checkpoint.

    Used for ``model_init`` (e.g. LiT: start the image tower from an earlier run).
    """
    header, arrays = read_checkpoint(path)
    out = dict(template)
    for part in parts:
        if part not in template:
            raise ValueError(f"model_load names {part!r}; the model has {sorted(template)}")
        names, leaves, treedef = _flatten(template[part])
        loaded = []
        for name, want in zip(names, leaves):
            key = f"{prefix}['{part}']{name}"
            if key not in arrays:
                raise ValueError(f"checkpoint {path} has no {key}: it was not saved by a matching model")
            _check_leaf(key, arrays[key], want, path)
            loaded.append(arrays[key])
        out[part] = jax.tree_util.tree_unflatten(treedef, loaded)
    return out
