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

#: Default tolerance on | |x|_2 - 1 | for rows that must be unit vectors, for float32 and float64
#: rows; lower-precision rows get a tolerance that follows their dtype (:func:`unit_norm_atol`).
UNIT_NORM_ATOL = 1e-6

#: Rounding slack on the domain [-1, 1] of inner-product thresholds (so that values computed from
#: float64 inner products, like b*_rel = 1 + 2e-16, are accepted back).
THRESHOLD_SLACK = 1e-12


def is_concrete(x) -> bool:
    """True when ``x`` holds actual values (not a JAX tracer under jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def _dtype_of(x):
    """The dtype of an array or array-like (nested lists included), or None if it is not numeric."""
    if hasattr(x, "dtype"):
        return np.dtype(x.dtype) if not isinstance(x.dtype, np.dtype) else x.dtype
    try:
        return np.asarray(x).dtype
    except (TypeError, ValueError):
        return None


def unit_norm_atol(dtype) -> float:
    """Tolerance on | |row| - 1 | for unit rows stored in ``dtype``: 1e-6, or 4 eps of a coarser float.

    A float16 row normalized in float16 has a norm within a few eps (9.8e-4) of 1, e.g. 0.99977; the
    fixed 1e-6 would refuse it.
    """
    try:
        eps = float(jax.numpy.finfo(dtype).eps)
    except (TypeError, ValueError):
        return UNIT_NORM_ATOL
    return max(UNIT_NORM_ATOL, 4.0 * eps)


def row_norms(arr: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows of a float64 array, free of overflow and underflow.

    Each row is scaled by a power of two near its largest entry before squaring (exact, so rows of
    ordinary size get exactly the norms of ``np.linalg.norm``), then scaled back.
    """
    scale = _power_of_two_scale(arr)
    with np.errstate(over="ignore"):
        return np.linalg.norm(arr * scale, axis=1) / scale[:, 0]


def _power_of_two_scale(arr: np.ndarray) -> np.ndarray:
    """(N, 1) powers of two 2^-e with e the binary exponent of each row's largest |entry| (1 for zero rows)."""
    top = np.max(np.abs(arr), axis=1, keepdims=True) if arr.shape[1] else np.zeros((len(arr), 1))
    _, e = np.frexp(top)
    # |e| <= 1000 keeps 2^-e a normal float64; rows of subnormals are scaled up by 2^1000 and stay safe.
    return np.ldexp(1.0, -np.clip(e, -1000, 1000))


def check_matrix(x, name: str, *, min_rows: int = 1):
    """Check that ``x`` is a 2-D (N, d) array-like with N >= min_rows, d >= 1 and a real numeric dtype."""
    try:
        shape = np.shape(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 2-D array of shape (N, d) with one embedding per row; got a ragged "
                         f"or non-numeric {type(x).__name__}") from None
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, d) with one embedding per row; got shape {shape}")
    n, d = shape
    if d < 1:
        raise ValueError(f"{name} must have embedding dimension d >= 1; got shape {shape}")
    if n < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows (N >= {min_rows}); got shape {shape}")
    dtype = _dtype_of(x)
    if dtype is None or not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)
                             or str(dtype) == "bfloat16"):
        raise TypeError(f"{name} must be a numeric array of shape (N, d); got {type(x).__name__} of dtype {dtype}")
    if np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{name} must be real; got dtype {dtype}")
    return shape


def check_finite(x, name: str) -> None:
    if is_concrete(x):
        arr = np.asarray(x)
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")


def check_unit_rows(x, name: str, atol: float | None = None) -> None:
    """Raise if some row of ``x`` is not a unit vector within ``atol`` (concrete arrays only).

    ``atol`` defaults to :func:`unit_norm_atol` of the dtype of ``x`` (1e-6 for float32/float64).
    """
    if not is_concrete(x):
        return
    if atol is None:
        atol = unit_norm_atol(_dtype_of(x))
    arr = np.asarray(x, dtype=np.float64)
    norms = row_norms(arr)
    err = np.abs(norms - 1.0)
    worst = int(np.argmax(err))
    if err[worst] > atol:
        raise ValueError(
            f"rows of {name} must be unit vectors (|row| = 1 within {atol:g}); row {worst} has norm "
            f"{norms[worst]:.6g}. Normalize first, or pass normalize=True."
        )


def check_pair(U, V, *, min_rows: int = 2, same_n: bool = True, names: tuple[str, str] = ("U", "V")):
    """Check a pair of embedding matrices: 2-D, same width, same N (when required), N >= min_rows."""
    a, b = names
    nu, du = check_matrix(U, a, min_rows=min_rows)
    nv, dv = check_matrix(V, b, min_rows=min_rows)
    if du != dv:
        raise ValueError(f"{a} and {b} must have the same embedding dimension; got {a} {np.shape(U)} and "
                         f"{b} {np.shape(V)}")
    if same_n and nu != nv:
        raise ValueError(
            f"{a} and {b} must have the same number of rows N (row i of {a} is paired with row i of {b}); "
            f"got {a} {np.shape(U)} and {b} {np.shape(V)}"
        )
    return nu, du


def check_nonzero_rows(x, name: str) -> None:
    """Raise if a row of ``x`` is all zeros (it has no direction to normalize to; concrete arrays only)."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    zero = np.flatnonzero(~np.any(arr != 0, axis=1))
    if zero.size:
        raise ValueError(f"{name} has {zero.size} all-zero row(s) (row {int(zero[0])} first), which cannot be "
                         "normalized: drop padding rows before normalize=True")


def normalized_rows(arr: np.ndarray) -> np.ndarray:
    """arr / |arr| row-wise for a float64 array with nonzero rows, without overflow or underflow.

    Rows are scaled by an exact power of two first, so rows of norm 1e160 or 1e-200 normalize as
    well as rows of norm 1 (and those get exactly ``arr / np.linalg.norm(arr, axis=1)``).
    """
    scaled = arr * _power_of_two_scale(arr)
    return scaled / np.linalg.norm(scaled, axis=1, keepdims=True)


def as_unit_rows(x, name: str, *, normalize: bool = False, atol: float | None = None) -> np.ndarray:
    """Return ``x`` as a float64 NumPy array of unit rows, validating or normalizing it.

    ``atol`` (the unit-norm tolerance) defaults to :func:`unit_norm_atol` of the dtype of ``x``.
    """
    if atol is None:
        atol = unit_norm_atol(_dtype_of(x))
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array of shape (N, d); got {type(x).__name__}") from None
    check_finite(arr, name)
    if normalize:
        check_nonzero_rows(arr, name)
        return normalized_rows(arr)
    check_unit_rows(arr, name, atol)
    if atol > UNIT_NORM_ATOL:
        # Rows stored in a coarse dtype (float16) stand for the unit vectors they round: renormalize
        # them in float64, so that every later check and statistic sees unit rows.
        return normalized_rows(arr)
    return arr


def validated_pair(U, V, *, normalize: bool = False, atol: float | None = None, min_rows: int = 2):
    """Validate (U, V) as paired unit-row embeddings and return them as float64 NumPy arrays."""
    check_pair(U, V, min_rows=min_rows)
    return as_unit_rows(U, "U", normalize=normalize, atol=atol), as_unit_rows(V, "V", normalize=normalize, atol=atol)


def check_scalar(x, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Check a real scalar (when concrete): finite and inside [low, high] (open ends if asked)."""
    if isinstance(x, (str, bytes)) or (hasattr(x, "dtype") and np.issubdtype(x.dtype, np.complexfloating)) \
            or isinstance(x, complex):
        raise TypeError(f"{name} must be a real number; got {x!r}")
    try:
        ndim = np.ndim(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {type(x).__name__}") from None
    if ndim != 0:
        raise ValueError(f"{name} must be a scalar; got shape {np.shape(x)}")
    if not is_concrete(x):
        return
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {x!r}") from None
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
