"""Input checks shared by every public function.

Bad input gets a ``ValueError`` that says what is wrong, never a silent wrong answer. Checks on
values (finiteness, unit norms) need concrete arrays; inside ``jax.jit`` the arrays are tracers and
only the shape checks run, which is why the public JAX losses are thin wrappers that validate and
then call a jitted core.
"""

from __future__ import annotations

import numbers

import jax
import numpy as np

#: Default tolerance on | |x|_2 - 1 | for rows that must be unit vectors.
UNIT_NORM_ATOL = 1e-6

#: Rounding slack on the domain [-1, 1] of inner-product thresholds (so that values computed from
#: float64 inner products, like b*_rel = 1 + 2e-16, are accepted back).
THRESHOLD_SLACK = 1e-12


def is_concrete(x) -> bool:
    """True when ``x`` holds actual values (not a JAX tracer under jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def check_matrix(x, name: str, *, min_rows: int = 1):
    """Check that ``x`` is a 2-D (N, d) array with N >= min_rows, d >= 1 and a real float dtype."""
    shape = np.shape(x)
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, d) with one embedding per row; got shape {shape}")
    n, d = shape
    if d < 1:
        raise ValueError(f"{name} must have embedding dimension d >= 1; got shape {shape}")
    if n < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows (N >= {min_rows}); got shape {shape}")
    dtype = np.result_type(x) if not hasattr(x, "dtype") else x.dtype
    if np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{name} must be real; got dtype {dtype}")
    return shape


def check_finite(x, name: str) -> None:
    if is_concrete(x):
        arr = np.asarray(x)
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")


def check_unit_rows(x, name: str, atol: float = UNIT_NORM_ATOL) -> None:
    """Raise if some row of ``x`` is not a unit vector within ``atol`` (concrete arrays only)."""
    if not is_concrete(x):
        return
    arr = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(arr, axis=1)
    err = np.abs(norms - 1.0)
    worst = int(np.argmax(err))
    if err[worst] > atol:
        raise ValueError(
            f"rows of {name} must be unit vectors (|row| = 1 within {atol:g}); row {worst} has norm "
            f"{norms[worst]:.6g}. Normalize first, or pass normalize=True."
        )


def check_pair(U, V, *, min_rows: int = 2, same_n: bool = True):
    """Check a pair of embedding matrices: 2-D, same width, same N (when required), N >= min_rows."""
    nu, du = check_matrix(U, "U", min_rows=min_rows)
    nv, dv = check_matrix(V, "V", min_rows=min_rows)
    if du != dv:
        raise ValueError(f"U and V must have the same embedding dimension; got U {np.shape(U)} and V {np.shape(V)}")
    if same_n and nu != nv:
        raise ValueError(
            f"U and V must have the same number of rows N (row i of U is paired with row i of V); "
            f"got U {np.shape(U)} and V {np.shape(V)}"
        )
    return nu, du


def as_unit_rows(x, name: str, *, normalize: bool = False, atol: float = UNIT_NORM_ATOL) -> np.ndarray:
    """Return ``x`` as a float64 NumPy array of unit rows, validating or normalizing it."""
    arr = np.asarray(x, dtype=np.float64)
    check_finite(arr, name)
    if normalize:
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError(f"{name} has an all-zero row, which cannot be normalized")
        return arr / norms
    check_unit_rows(arr, name, atol)
    return arr


def validated_pair(U, V, *, normalize: bool = False, atol: float = UNIT_NORM_ATOL, min_rows: int = 2):
    """Validate (U, V) as paired unit-row embeddings and return them as float64 NumPy arrays."""
    check_pair(U, V, min_rows=min_rows)
    return as_unit_rows(U, "U", normalize=normalize, atol=atol), as_unit_rows(V, "V", normalize=normalize, atol=atol)


def check_scalar(x, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Check a real scalar (when concrete): finite and inside [low, high] (open ends if asked)."""
    if np.ndim(x) != 0:
        raise ValueError(f"{name} must be a scalar; got shape {np.shape(x)}")
    if not is_concrete(x):
        return
    v = float(x)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}; got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}; got {v}")


def check_int(x, name: str, *, low: int | None = None) -> int:
    """Check that ``x`` is an integer (bools refused) with x >= low; return it as int."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {x!r}")
    x = int(x)
    if low is not None and x < low:
        raise ValueError(f"{name} must be >= {low}; got {x}")
    return x


def check_threshold(x, name: str) -> None:
    """An inner-product threshold (b_rel, s): finite and in [-1, 1] up to THRESHOLD_SLACK."""
    check_scalar(x, name, low=-1.0 - THRESHOLD_SLACK, high=1.0 + THRESHOLD_SLACK)


def check_margin(x, name: str = "m (margin)") -> None:
    """A margin: finite and in [0, 1] up to THRESHOLD_SLACK above."""
    check_scalar(x, name, low=0.0, high=1.0 + THRESHOLD_SLACK)
