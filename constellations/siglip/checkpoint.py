"""Atomic checkpoints with a LAST pointer, and exact restore into a template pytree.

Layout (big_vision's ``-LAST`` logic without tensorstore)::

    WORKDIR/checkpoints/ckpt-000000200.npz     every leaf of the train state + a JSON header
    WORKDIR/checkpoints/LAST                   the file name of the newest complete checkpoint

A checkpoint is written to a temporary file and renamed (``constellations.io.save_npz``); only then
is LAST rewritten (also by rename), and only then are old checkpoints pruned. A crash at any point
leaves LAST naming a complete file (and perhaps a ``.ckpt-*.npz.*`` temporary, which
:func:`remove_temporaries` deletes when the run restarts). The arrays are stored bit for bit, so a
restored state is identical to the saved one; restore checks every leaf's name, shape and dtype
against a template (the freshly initialised state) and raises ValueError on any mismatch.

Every checkpoint carries a SHA-256 digest of its header and of every array's dtype, shape and bytes
(the ``__digest__`` member), so a damaged file is never loaded silently: reading it raises
:class:`CorruptCheckpoint`, and :func:`newest_intact_checkpoint` finds the newest one that is whole.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import jax
import numpy as np

from .. import io

FORMAT = 1
_META = "__meta__"
_DIGEST = "__digest__"


class CorruptCheckpoint(ValueError):
    """A checkpoint file is missing, truncated or damaged (its bytes disagree with its digest)."""


def _digest(meta: np.ndarray, arrays: list) -> np.ndarray:
    """SHA-256 of the header bytes and of each array's dtype, shape and bytes, in order, as 32 uint8."""
    h = hashlib.sha256(meta.tobytes())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"|{a.dtype.str}{a.shape}|".encode())
        h.update(a.tobytes())
    return np.frombuffer(h.digest(), np.uint8)


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
    arrays[_DIGEST] = _digest(arrays[_META], [arrays[f"a{i:05d}"] for i in range(len(leaves))])
    folder = checkpoint_dir(workdir)
    path = io.save_npz(folder / f"ckpt-{int(step):09d}.npz", **arrays)
    io.write_text(folder / "LAST", path.name + "\n")
    if keep and keep > 0:
        old = sorted(p for p in folder.glob("ckpt-*.npz") if p.name != path.name)
        for p in old[: max(len(old) - (keep - 1), 0)]:
            p.unlink(missing_ok=True)
    return path


def remove_temporaries(workdir) -> list[Path]:
    """Delete the ``.ckpt-*.npz.*`` / ``.LAST.*`` temporaries of writes that a killed run left behind."""
    folder = checkpoint_dir(workdir)
    return io.remove_temporaries(folder, "ckpt-*.npz") + io.remove_temporaries(folder, "LAST")


def latest_checkpoint(workdir) -> Path | None:
    """The checkpoint LAST points to, or None when the workdir has no LAST (a fresh run)."""
    last = checkpoint_dir(workdir) / "LAST"
    if not last.is_file():
        return None
    name = last.read_text().strip()
    path = last.parent / name
    if not name or not path.is_file():
        raise CorruptCheckpoint(f"{last} points to {name!r}, which does not exist: the checkpoint folder is damaged")
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
    """(header, {name: array}) of a checkpoint file; :class:`CorruptCheckpoint` if it is missing, truncated
    or its contents disagree with its digest (files written before digests existed are read unchecked)."""
    path = resolve_checkpoint(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = z[_META]
            header = json.loads(bytes(meta).decode("utf-8"))
            arrays = {name: z[f"a{i:05d}"] for i, name in enumerate(header["names"])}
            digest = z[_DIGEST] if _DIGEST in z.files else None
    except Exception as e:  # zipfile, zlib, struct, json, NumPy header errors: all mean a damaged file
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if digest is not None and not np.array_equal(digest, _digest(meta, list(arrays.values()))):
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt: its contents do not match its SHA-256 digest")
    if header.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has format {header.get('format')!r}; this code reads format {FORMAT}")
    return header, arrays


def newest_intact_checkpoint(workdir) -> tuple[Path | None, list[tuple[Path | None, str]]]:
    """(the newest checkpoint of ``workdir`` that reads back whole, or None; [(file, why)] for each newer one
    that was skipped, file None when LAST itself names no file).

    Starts from the one LAST names and goes back through the older ``ckpt-*.npz`` files; the first
    that passes :func:`read_checkpoint` (digest included) wins. A fresh workdir gives (None, []).
    """
    folder = checkpoint_dir(workdir)
    skipped = []
    try:
        last = latest_checkpoint(workdir)
    except CorruptCheckpoint as e:
        last, skipped = None, [(None, str(e))]
    if last is None and not skipped:
        return None, []
    candidates = sorted(folder.glob("ckpt-*.npz"), reverse=True)
    if last is not None:   # LAST first, then anything older than it (a newer file was never pointed to)
        candidates = [last] + [p for p in candidates if p.name < last.name]
    for path in candidates:
        try:
            read_checkpoint(path)
            return path, skipped
        except CorruptCheckpoint as e:
            skipped.append((path, str(e)))
    return None, skipped


def checkpoint_to_resume(workdir) -> Path | None:
    """The checkpoint a run in ``workdir`` resumes from: LAST's if intact, else the newest intact one.

    Falling back warns, naming each damaged file and why; those are renamed ``*.corrupt`` (kept for a
    post-mortem, never read again) and LAST is pointed at the intact one. None for a fresh workdir;
    :class:`CorruptCheckpoint` when checkpoints exist but none is whole.
    """
    path, skipped = newest_intact_checkpoint(workdir)
    if not skipped:
        return path
    why = "; ".join(msg for _, msg in skipped)
    if path is None:
        raise CorruptCheckpoint(f"no intact checkpoint in {checkpoint_dir(workdir)}: {why}. Move the checkpoints "
                                "folder away to start the run afresh.")
    for bad, _ in skipped:
        if bad is not None:
            bad.rename(bad.with_name(bad.name + ".corrupt"))
    io.write_text(checkpoint_dir(workdir) / "LAST", path.name + "\n")
    warnings.warn(f"resuming from {path}, the newest intact checkpoint, because {why} (damaged files renamed "
                  "*.corrupt)", stacklevel=2)
    return path


def read_header(path) -> dict:
    """The JSON header of a checkpoint (step, leaf names, the run's config), without reading the arrays."""
    path = resolve_checkpoint(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(bytes(z[_META]).decode("utf-8"))
    except Exception as e:
        raise CorruptCheckpoint(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {e})") from None


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
