"""Synthetic experiments: the training engine behind E1-E9 (theory.md section 5).

Public surface: :func:`train_synthetic` (api.md), :func:`train_grid` (variants x seeds in one
compiled call) and their :class:`SyntheticResult`; :func:`enable_compilation_cache` (JAX's persistent
compilation cache in a user folder, for command-line runs). ``python -m constellations.synthetic train N d
[options]`` trains one configuration from the command line. The paper's experiments E1-E9 are defined in
the repository's lab (``experiments/synthetic/``) and run there with ``python -m experiments run e6``.
"""

from .compilation import enable_compilation_cache
from .engine import DivergenceError
from .train import SyntheticResult, train_grid, train_synthetic

__all__ = ["DivergenceError", "SyntheticResult", "enable_compilation_cache", "train_grid", "train_synthetic"]
