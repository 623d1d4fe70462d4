"""JAX's persistent compilation cache for the synthetic engine's command-line runs.

The engine compiles one program per shape and option set (N, d, k, steps, loss, ...); seeds, initial
values, learning rates and trainable masks are data. Within a process each program compiles once;
:func:`enable_compilation_cache` lets later processes load it from disk instead of compiling again.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Set to 1 (or any value but "", "0") to leave JAX's compilation cache off.
DISABLE_ENV = "CONSTELLATIONS_NO_COMPILATION_CACHE"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/constellations/jax``, or ``~/.cache/constellations/jax`` without XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "constellations" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in a user cache folder; return it (None when off).

    Call it once, before the first compilation (the command lines do, first thing in ``main``).
    The folder is ``path``, else :func:`default_cache_dir`; it is created. Nothing changes when the
    environment variable ``CONSTELLATIONS_NO_COMPILATION_CACHE`` is set (to anything but "" or "0"),
    or when JAX already has a cache folder (``JAX_COMPILATION_CACHE_DIR`` or
    ``jax.config.update("jax_compilation_cache_dir", ...)``), which is kept and returned.
    Programs that compile in under 0.1 s are not cached.

    Example:
      >>> from constellations.synthetic import enable_compilation_cache
      >>> enable_compilation_cache()  # doctest: +SKIP
      PosixPath('/home/me/.cache/constellations/jax')
    """
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    folder = Path(path) if path is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    return folder
