"""Atomic file output: everything the package writes goes to a temporary file first, then is renamed.

A crash or a full disk therefore never leaves a half-written result, config, figure or checkpoint
behind: readers see either the old file or the complete new one (``os.replace`` is atomic on POSIX).
The file is fsync-ed before the rename and its folder after it, so a power loss cannot leave the
new name pointing at data that never reached the disk, nor undo a rename a later step relied on.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# The process umask, read once (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush ``path``'s data (a file) or its entries (a folder) to the disk."""
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:   # some filesystems cannot fsync a folder; a file that cannot be synced is an error
            raise
    finally:
        os.close(fd)


def remove_temporaries(folder: str | os.PathLike, name_glob: str = "*") -> list[Path]:
    """Delete the temporaries that :func:`atomic_path` left in ``folder`` when its process was killed
    mid-write (``.NAME.XXXXXXXX.SUFFIX`` for final names matching ``name_glob``); returns them.

    Only call this when no other process writes there (e.g. at the start of a run).
    """
    folder = Path(folder)
    gone = sorted(p for p in folder.glob(f".{name_glob}.*") if p.is_file()) if folder.is_dir() else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed.

    The temporary name keeps the final suffix (or ``suffix``), so writers that pick a format from
    the extension (matplotlib, NumPy) behave as for the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or "".join(path.suffixes))
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_UMASK)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _to_jsonable(x: Any):
    if isinstance(x, dict):
        return {str(k): _to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_jsonable(v) for v in x]
    if isinstance(x, (np.generic,)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if hasattr(x, "__dataclass_fields__"):
        return {k: _to_jsonable(getattr(x, k)) for k in x.__dataclass_fields__}
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path, obj: Any) -> Path:
    """Write ``obj`` (dicts, lists, NumPy scalars and arrays, dataclasses) as indented JSON, atomically."""
    return write_text(path, json.dumps(_to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def save_npz(path, **arrays) -> Path:
    """``np.savez_compressed`` to ``path``, atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path)


def save_figure(fig, path, **kwargs) -> Path:
    """``fig.savefig`` to ``path``, atomically (default dpi 120, tight bounding box)."""
    kwargs.setdefault("dpi", 120)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    return Path(path)


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check that a file can be written in it, before any work.

    Raises ValueError naming the folder when it cannot be created or written.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as e:
        raise ValueError(f"cannot write in {str(path)!r}: {e.strerror or e}") from None
    return path
