"""The bad-input battery (issue 16.1): no silent wrong answer, no raw traceback, in the core.

Every case calls one public function of the core (loss, geometry, polynomials, bounds, codes,
constructions, regions, search, dimension, modality_gap, batch, analysis, io) or the analyze
command with one bad (or merely unusual) input, and its outcome is classified:

* good: a ValueError or TypeError whose message names the argument (the case says which words);
* good: a finite answer equal to the truth (a float64 NumPy reference on the unscaled, unit rows);
* bad: NaN or inf, a wrong value, an answer where an error was due, or any other exception (an
  IndexError, ZeroDivisionError, numpy's own message from deep inside).

Scale safety is checked against float64 references: rows scaled by 10^k (k from -300 to 300 in
float64, -30 to 30 in float32), float16 rows and rows given as Python lists must give the values of
the unit rows they stand for. Functions left out on purpose: the jittable cores of ``loss``
(``softplus``, ``sigmoid_terms_from_logits``, ``epsilon_sigmoid_terms``, ``normalize_rows``: no value
checks inside ``jit`` by design) and ``reference`` (the tests' float64 oracle, not user-facing).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import constellations as cs
from constellations import (analysis, batch, bounds, codes, constructions, dimension, geometry, io, loss,
                            modality_gap, polynomials, reference, regions, search)
from constellations.__main__ import main as cli_main

# ------------------------------------------------------------------------------------------ data

RNG = np.random.default_rng(16)


def unit(X):
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


U4 = unit(np.eye(4, 3) + 0.3 * RNG.standard_normal((4, 3)))  # a 4 x 3 pair, float64 unit rows
V4 = unit(U4 + 0.2 * RNG.standard_normal((4, 3)))
ZERO_ROW = U4.copy()
ZERO_ROW[2] = 0.0
NAN_ROW = U4.copy()
NAN_ROW[1, 1] = np.nan
INF_ROW = U4.copy()
INF_ROW[0, 0] = np.inf
LONG = 2.0 * U4
U16 = U4.astype(np.float16)  # float16 unit rows: norms within a few float16 eps of 1
V16 = V4.astype(np.float16)
ONE_D = U4[0]

ERROR = "error"


@dataclass(frozen=True)
class Case:
    """One call and what a good outcome is: an error naming ``names`` or the value ``expect``."""

    id: str
    call: Callable[[], Any]
    names: str | None = None           # regex the error message must contain (the argument named)
    expect: Any = None                 # reference value (float or array) when an answer is due
    rtol: float = 1e-9
    atol: float = 1e-12


def err(id_, call, names):
    return Case(id_, call, names=names)


def val(id_, call, expect, rtol=1e-9, atol=1e-12):
    return Case(id_, call, expect=expect, rtol=rtol, atol=atol)


def _as_numbers(x):
    if isinstance(x, (tuple, list)):
        return np.concatenate([np.ravel(_as_numbers(v)) for v in x]) if x else np.zeros(0)
    if hasattr(x, "__dataclass_fields__"):
        return np.concatenate([np.ravel(_as_numbers(getattr(x, k))) for k in x.__dataclass_fields__
                               if isinstance(getattr(x, k), (int, float, np.ndarray, np.generic))
                               and not isinstance(getattr(x, k), bool)])
    return np.asarray(x, dtype=np.float64)


def classify(case: Case) -> tuple[bool, str]:
    """(good, what happened) for one case, by the rules of the module docstring."""
    try:
        out = case.call()
    except (ValueError, TypeError) as e:
        if case.names is None:
            return False, f"raised {type(e).__name__} where an answer was due: {e}"
        if not re.search(case.names, str(e), flags=re.IGNORECASE):
            return False, f"{type(e).__name__} does not name the argument /{case.names}/: {e}"
        if "Traceback" in str(e):
            return False, f"error message carries a traceback: {e}"
        return True, f"clear {type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - every other exception is what the battery hunts for
        return False, f"raw {type(e).__name__} from inside: {e}"
    if case.names is not None:
        return False, f"answered {out!r} where an error naming /{case.names}/ was due"
    got = _as_numbers(out)
    if not np.all(np.isfinite(got)):
        return False, f"silent non-finite answer {out!r}"
    want = _as_numbers(case.expect)
    if got.shape != want.shape or not np.allclose(got, want, rtol=case.rtol, atol=case.atol):
        return False, f"silent wrong answer {got} (truth {want})"
    return True, "correct finite answer"


# ----------------------------------------------------------------------------- the JAX losses

T, B, B_REL = 10.0, -5.0, 0.5
LOSSES = {
    "sigmoid_loss": (lambda U, V, **k: cs.sigmoid_loss(U, V, T, B, **k),
                     lambda U, V: reference.sigmoid_loss(U, V, T, B)),
    "relative_bias_loss": (lambda U, V, **k: cs.relative_bias_loss(U, V, T, B_REL, **k),
                           lambda U, V: reference.relative_bias_loss(U, V, T, B_REL)),
    "log_sigmoid_loss": (lambda U, V, **k: cs.log_sigmoid_loss(U, V, T, B, **k),
                         lambda U, V: reference.log_sigmoid_loss(U, V, T, B)),
    "softmax_loss": (lambda U, V, **k: cs.softmax_loss(U, V, T, **k),
                     lambda U, V: reference.softmax_loss(U, V, T, "per_example")),
    "multimodal_sigmoid_loss": (lambda U, V, **k: cs.multimodal_sigmoid_loss([U, V], T, B, **k),
                                lambda U, V: reference.sigmoid_loss(U, V, T, B)),
}
PARAM_CALLS = {  # (name of the parameter, a call with that parameter set to x)
    "sigmoid_loss": [("t", lambda x: cs.sigmoid_loss(U4, V4, x, B)), ("b", lambda x: cs.sigmoid_loss(U4, V4, T, x))],
    "relative_bias_loss": [("t", lambda x: cs.relative_bias_loss(U4, V4, x, B_REL)),
                           ("b_rel", lambda x: cs.relative_bias_loss(U4, V4, T, x))],
    "log_sigmoid_loss": [("t", lambda x: cs.log_sigmoid_loss(U4, V4, x, B)), ("b", lambda x: cs.log_sigmoid_loss(U4, V4, T, x))],
    "softmax_loss": [("t", lambda x: cs.softmax_loss(U4, V4, x))],
    "multimodal_sigmoid_loss": [("t", lambda x: cs.multimodal_sigmoid_loss([U4, V4], x, B)),
                                ("bias", lambda x: cs.multimodal_sigmoid_loss([U4, V4], T, x))],
}


def loss_cases():
    out = []
    for name, (fn, ref) in LOSSES.items():
        arg = r"embeddings\[0\]" if name == "multimodal_sigmoid_loss" else r"\bU\b"
        truth = ref(U4, V4)
        out += [
            err(f"{name}: zero row, normalize=True", lambda fn=fn: fn(ZERO_ROW, V4, normalize=True), arg + ".*zero"),
            err(f"{name}: NaN row", lambda fn=fn: fn(NAN_ROW, V4), arg + ".*non-finite"),
            err(f"{name}: inf row, normalize=True", lambda fn=fn: fn(INF_ROW, V4, normalize=True), arg + ".*non-finite"),
            err(f"{name}: rows of norm 2", lambda fn=fn: fn(LONG, V4), arg + ".*unit"),
            err(f"{name}: 1-D rows", lambda fn=fn: fn(ONE_D, V4[0]), r"2-D|shape"),
            err(f"{name}: string rows", lambda fn=fn: fn("abc", V4), arg),
            val(f"{name}: Python lists", lambda fn=fn: fn(U4.tolist(), V4.tolist()), truth),
            val(f"{name}: float16 unit rows", lambda fn=fn: fn(U16, V16), ref(U16.astype(np.float64), V16.astype(np.float64)),
                rtol=2e-3, atol=1e-6),
            val(f"{name}: rows x 1e20 (float32), normalize=True",
                lambda fn=fn: fn((U4 * 1e20).astype(np.float32), (V4 * 1e20).astype(np.float32), normalize=True),
                truth, rtol=1e-4),
            val(f"{name}: rows x 1e-25 (float32), normalize=True",
                lambda fn=fn: fn((U4 * 1e-25).astype(np.float32), (V4 * 1e-25).astype(np.float32), normalize=True),
                truth, rtol=1e-4),
            val(f"{name}: float16 rows x 10, normalize=True",
                lambda fn=fn: fn((U4 * 10).astype(np.float16), (V4 * 10).astype(np.float16), normalize=True),
                truth, rtol=1e-2),
            val(f"{name}: rows x 1e300 (float64), normalize=True", lambda fn=fn: fn(U4 * 1e300, V4 * 1e300, normalize=True),
                truth, rtol=1e-12),
        ]
        if name != "log_sigmoid_loss":
            out.append(err(f"{name}: reduction='bogus'", lambda fn=fn: fn(U4, V4, reduction="bogus"), "reduction"))
        for pname, call in PARAM_CALLS[name]:
            out += [
                err(f"{name}: {pname} = NaN", lambda call=call: call(math.nan), pname),
                err(f"{name}: {pname} = inf", lambda call=call: call(math.inf), pname),
                err(f"{name}: {pname} = 'x'", lambda call=call: call("x"), pname),
                err(f"{name}: {pname} = 1e39 with float32 rows (inf x 0)",
                    lambda name=name, pname=pname: _with_float32(name, pname, 1e39), pname + r"|\bb\b"),
            ]
        out.append(err(f"{name}: t < 0", lambda call=PARAM_CALLS[name][0][1]: call(-1.0), r"\bt\b"))
    return out


def _with_float32(name, pname, x):
    """Call the loss ``name`` on float32 rows with parameter ``pname`` = x (the others as usual)."""
    U, V = U4.astype(np.float32), V4.astype(np.float32)
    args = {"t": T, "b": B, "b_rel": B_REL, "bias": B}
    args[pname] = x
    if name == "sigmoid_loss":
        return cs.sigmoid_loss(U, V, args["t"], args["b"])
    if name == "relative_bias_loss":
        return cs.relative_bias_loss(U, V, args["t"], args["b_rel"])
    if name == "log_sigmoid_loss":
        return cs.log_sigmoid_loss(U, V, args["t"], args["b"])
    if name == "softmax_loss":
        return cs.softmax_loss(U, V, args["t"])
    return cs.multimodal_sigmoid_loss([U, V], args["t"], args["bias"])


def logits_cases():
    good = np.array([[2.0, -1.0], [0.5, 3.0]])
    nan = good.copy()
    nan[0, 1] = np.nan
    sig = float(np.sum(np.logaddexp(0.0, -(2 * np.eye(2) - 1) * good)))
    return [
        err("sigmoid_loss_from_logits: 1-D logits", lambda: cs.sigmoid_loss_from_logits(jnp.ones(3)), "logits.*shape"),
        err("sigmoid_loss_from_logits: NaN logits", lambda: cs.sigmoid_loss_from_logits(jnp.asarray(nan)), "logits.*non-finite"),
        err("sigmoid_loss_from_logits: inf logits", lambda: cs.sigmoid_loss_from_logits(jnp.asarray(good) * jnp.inf),
            "logits.*non-finite"),
        err("sigmoid_loss_from_logits: reduction='x'", lambda: cs.sigmoid_loss_from_logits(jnp.asarray(good), reduction="x"),
            "reduction"),
        val("sigmoid_loss_from_logits: a list", lambda: cs.sigmoid_loss_from_logits(good.tolist()), sig),
        val("sigmoid_loss_from_logits: integer logits", lambda: cs.sigmoid_loss_from_logits(np.array([[2, -1], [0, 3]])),
            float(np.sum(np.logaddexp(0.0, -(2 * np.eye(2) - 1) * np.array([[2, -1], [0, 3]]))))),
        err("softmax_loss_from_logits: non-square", lambda: loss.softmax_loss_from_logits(jnp.ones((2, 3))), "square"),
        err("softmax_loss_from_logits: NaN logits", lambda: loss.softmax_loss_from_logits(jnp.asarray(nan)), "logits.*non-finite"),
        err("softmax_loss_from_logits: 1-D logits", lambda: loss.softmax_loss_from_logits(jnp.ones(3)), "logits.*shape"),
        val("softmax_loss_from_logits: a list", lambda: loss.softmax_loss_from_logits(good.tolist()),
            _softmax_of(good)),
        err("synchronization_graph: k = 1", lambda: cs.synchronization_graph(1), r"\bk\b"),
        err("synchronization_graph: k = 2.5", lambda: cs.synchronization_graph(2.5), r"\bk\b"),
        err("synchronization_graph: graph = 'ring'", lambda: cs.synchronization_graph(3, "ring"), "graph"),
        err("synchronization_graph: edge out of range", lambda: cs.synchronization_graph(3, [(0, 3)]), "edge"),
        err("synchronization_graph: self-loop", lambda: cs.synchronization_graph(3, [(1, 1)]), "edge"),
        err("synchronization_graph: no edges", lambda: cs.synchronization_graph(3, []), "edges"),
        err("multimodal_sigmoid_loss: one modality", lambda: cs.multimodal_sigmoid_loss([U4], T, B), "modalit"),
        err("multimodal_sigmoid_loss: shapes differ", lambda: cs.multimodal_sigmoid_loss([U4, V4[:3]], T, B), "shape"),
        err("multimodal_sigmoid_loss: parameterization='x'",
            lambda: cs.multimodal_sigmoid_loss([U4, V4], T, B, parameterization="x"), "parameterization"),
        err("triplet_loss: alpha = NaN", lambda: cs.triplet_loss(U4, V4, math.nan), "alpha"),
        err("triplet_loss: alpha < 0", lambda: cs.triplet_loss(U4, V4, -1.0), "alpha"),
        err("triplet_loss: NaN row", lambda: cs.triplet_loss(NAN_ROW, V4, 0.1), r"\bU\b.*non-finite"),
        val("triplet_loss: Python lists", lambda: cs.triplet_loss(U4.tolist(), V4.tolist(), 0.1),
            reference.triplet_loss(U4, V4, 0.1)),
        val("triplet_loss: zero row is a valid point", lambda: cs.triplet_loss(ZERO_ROW, V4, 0.1),
            reference.triplet_loss(ZERO_ROW, V4, 0.1)),
    ]


def _softmax_of(x):
    row = np.logaddexp.reduce(x, axis=1) - np.diag(x)
    col = np.logaddexp.reduce(x, axis=0) - np.diag(x)
    return float(np.mean((row + col) / 2))


# ------------------------------------------------------------------------------- NumPy geometry

M_TRUTH = cs.margin_and_relative_bias(U4, V4)
PAIR_FNS = {
    "margin_and_relative_bias": (cs.margin_and_relative_bias, M_TRUTH),
    "constellation_statistics": (lambda U, V, **k: cs.constellation_statistics(U, V, **k).margin, M_TRUTH[0]),
    "retrieval": (lambda U, V, **k: cs.retrieval(U, V, **k).u_to_v_gap, cs.retrieval(U4, V4).u_to_v_gap),
    "xi_statistic": (cs.xi_statistic, cs.xi_statistic(U4, V4)),
    "inner_products": (cs.inner_products, U4 @ V4.T),
    "is_constellation": (lambda U, V, **k: float(cs.is_constellation(U, V, 0.0, -0.9, **k)),
                         float(cs.is_constellation(U4, V4, 0.0, -0.9))),
    "modality_gap_statistics": (lambda U, V, **k: cs.modality_gap_statistics(U, V, **k).mean_positive,
                                float(np.mean(np.sum(U4 * V4, axis=1)))),
    "satisfies_sign_condition": (lambda U, V, **k: float(cs.satisfies_sign_condition(U, V, **k)),
                                 float(cs.satisfies_sign_condition(U4, V4))),
    "analyze_embeddings": (lambda U, V, **k: analysis.analyze_embeddings(U, V, **k).margin, M_TRUTH[0]),
}


def geometry_cases():
    out = []
    for name, (fn, truth) in PAIR_FNS.items():
        arg = "image embeddings" if name == "analyze_embeddings" else r"\bU\b"
        out += [
            val(f"{name}: Python lists", lambda fn=fn: fn(U4.tolist(), V4.tolist()), truth),
            val(f"{name}: float16 unit rows", lambda fn=fn: fn(U16, V16),
                PAIR_FNS[name][0](unit(U16.astype(np.float64)), unit(V16.astype(np.float64))), rtol=1e-2, atol=2e-3),
            val(f"{name}: rows x 1e160, normalize=True", lambda fn=fn: fn(U4 * 1e160, V4 * 1e160, normalize=True), truth,
                rtol=1e-12, atol=1e-14),
            val(f"{name}: rows x 1e-200, normalize=True", lambda fn=fn: fn(U4 * 1e-200, V4 * 1e-200, normalize=True), truth,
                rtol=1e-12, atol=1e-14),
            err(f"{name}: zero row, normalize=True", lambda fn=fn: fn(ZERO_ROW, V4, normalize=True), arg + ".*zero"),
            err(f"{name}: NaN row", lambda fn=fn: fn(NAN_ROW, V4), arg + ".*non-finite"),
            err(f"{name}: 1-D rows", lambda fn=fn: fn(ONE_D, V4), arg + ".*2-D"),
            err(f"{name}: ragged list", lambda fn=fn: fn([[1.0, 0.0], [1.0]], V4), arg),
        ]
    for name, fn in {"constellation_statistics": cs.constellation_statistics, "retrieval": cs.retrieval,
                     "analyze_embeddings": analysis.analyze_embeddings}.items():
        out.append(err(f"{name}: block_bytes = -5", lambda fn=fn: fn(U4, V4, block_bytes=-5), "block_bytes"))
    out += [
        err("rows_per_block: block_bytes = -5", lambda: geometry.rows_per_block(10, -5), "block_bytes"),
        err("iter_inner_product_blocks: block_bytes = -5 (upper)",
            lambda: list(geometry.iter_inner_product_blocks(U4, U4, block_bytes=-5, upper=True)), "block_bytes"),
        err("iter_inner_product_blocks: rows = 0", lambda: list(geometry.iter_inner_product_blocks(U4, V4, rows=0)), "rows"),
        err("is_constellation: m = NaN", lambda: cs.is_constellation(U4, V4, math.nan, 0.0), r"\bm\b"),
        err("is_constellation: b_rel = 2", lambda: cs.is_constellation(U4, V4, 0.1, 2.0), "b_rel"),
        err("is_constellation: atol = -1", lambda: cs.is_constellation(U4, V4, 0.1, 0.0, atol=-1.0), "atol"),
        err("linear_separability: max_epochs = -1",
            lambda: cs.linear_separability(U4, V4, method="perceptron", max_epochs=-1), "max_epochs"),
        err("linear_separability: method = 'svm'", lambda: cs.linear_separability(U4, V4, method="svm"), "method"),
        err("linear_separability: lp_max_entries = -1", lambda: cs.linear_separability(U4, V4, lp_max_entries=-1),
            "lp_max_entries"),
        val("linear_separability: Python lists", lambda: float(cs.linear_separability(U4.tolist(), V4.tolist()).separable),
            float(cs.linear_separability(U4, V4).separable)),
        err("modality_gap_statistics: separability_method = 'x'",
            lambda: cs.modality_gap_statistics(U4, V4, separability_method="x"), "separability_method"),
    ]
    return out


# ------------------------------------------------------------------------- bounds and polynomials


def bounds_cases():
    return [
        err("cap_measure: n = 0", lambda: bounds.cap_measure(0, 1.0), r"\bn\b"),
        err("cap_measure: theta = NaN", lambda: bounds.cap_measure(3, math.nan), "theta"),
        err("log_cap_measure: theta = -1", lambda: bounds.log_cap_measure(3, -1.0), "theta"),
        err("log_cap_measure: theta = 'a'", lambda: bounds.log_cap_measure(3, "a"), "theta"),
        err("levenshtein_bound: n = 1.5", lambda: bounds.levenshtein_bound(1.5, 0.5), r"\bn\b"),
        err("levenshtein_bound: s = 1", lambda: bounds.levenshtein_bound(8, 1.0), r"\bs\b"),
        err("levenshtein_bound: s = NaN", lambda: bounds.levenshtein_bound(8, math.nan), r"\bs\b"),
        err("levenshtein_polynomial: s = NaN", lambda: bounds.levenshtein_polynomial(8, math.nan), r"\bs\b"),
        err("delsarte_lp_bound: degree = 0", lambda: bounds.delsarte_lp_bound(8, 0.5, degree=0), "degree"),
        err("delsarte_lp_bound: grid_size = 1", lambda: bounds.delsarte_lp_bound(8, 0.5, grid_size=1), "grid_size"),
        err("best_upper_bound: s = 'a'", lambda: bounds.best_upper_bound(8, "a"), r"\bs\b"),
        err("volume_bound: s = True", lambda: bounds.volume_bound(8, True), r"\bs\b"),
        err("rankin_cap_bound: n = 1", lambda: bounds.rankin_cap_bound(1, 0.5), r"\bn\b"),
        err("csw_lower_bound: s = -2", lambda: bounds.csw_lower_bound(8, -2.0), r"\bs\b"),
        err("exact_bound: n = -1", lambda: bounds.exact_bound(-1, 0.5), r"\bn\b"),
        err("kl_rate: theta = 0", lambda: bounds.kl_rate(0.0), "theta"),
        err("kl_rate: theta = NaN", lambda: bounds.kl_rate(math.nan), "theta"),
        err("kl_rate_refined: theta = -1", lambda: bounds.kl_rate_refined(-1.0), "theta"),
        err("csw_rate: theta = 4", lambda: bounds.csw_rate(4.0), "theta"),
        err("code_dimension_bounds: N = 0", lambda: bounds.code_dimension_bounds(0, 0.5), r"\bN\b"),
        err("code_dimension_bounds: N = 5 at s = -0.9 (simplex bound)", lambda: bounds.code_dimension_bounds(5, -0.9),
            r"\bs\b"),
        val("exact_bound: n = 2, s = 0.5 (hexagon)", lambda: bounds.exact_bound(2, 0.5).value, 6.0),
        val("levenshtein_bound: numpy float s", lambda: bounds.levenshtein_bound(8, np.float64(0.5)), 240.0, rtol=1e-10),
    ]


def polynomial_cases():
    return [
        err("gegenbauer: t = NaN", lambda: polynomials.gegenbauer(3, 4, math.nan), r"\bt\b"),
        err("gegenbauer: t = inf in an array", lambda: polynomials.gegenbauer(3, 4, [0.1, math.inf]), r"\bt\b"),
        err("gegenbauer: n = 1", lambda: polynomials.gegenbauer(1, 4, 0.5), r"\bn\b"),
        err("gegenbauer: k_max = -1", lambda: polynomials.gegenbauer(3, -1, 0.5), "k_max"),
        err("gegenbauer: t = 'a'", lambda: polynomials.gegenbauer(3, 2, "a"), r"\bt\b"),
        err("gegenbauer: overflow at t = 1e10, degree 200", lambda: polynomials.gegenbauer(3, 200, 1e10), "overflow"),
        val("gegenbauer: t as a list", lambda: polynomials.gegenbauer(3, 2, [0.5])[2], [-0.125]),
        err("gegenbauer_series: no coefficients", lambda: polynomials.gegenbauer_series(3, [], 0.5), "coefficients"),
        err("gegenbauer_series: NaN coefficient", lambda: polynomials.gegenbauer_series(3, [1.0, math.nan], 0.5),
            "coefficients"),
        err("gegenbauer_series: t = NaN", lambda: polynomials.gegenbauer_series(3, [1.0, 1.0], math.nan), r"\bt\b"),
        err("gegenbauer_series_derivative: t = inf",
            lambda: polynomials.gegenbauer_series_derivative(3, [1.0, 1.0, 1.0], math.inf), r"\bt\b"),
        err("gegenbauer_series_derivative: 2-D coefficients",
            lambda: polynomials.gegenbauer_series_derivative(3, [[1.0]], 0.5), "coefficients"),
        err("jacobi_normalized: a = -2", lambda: polynomials.jacobi_normalized(3, -2.0, 0.0, 0.5), r"\ba\b"),
        err("jacobi_normalized: t = NaN", lambda: polynomials.jacobi_normalized(3, 0.0, 0.0, math.nan), r"\bt\b"),
        err("adjacent_jacobi: a = 2", lambda: polynomials.adjacent_jacobi(5, 3, 2, 0, 0.5), r"\ba\b"),
        err("jacobi_log_value: t = NaN", lambda: polynomials.jacobi_log_value(3, 1.0, 1.0, math.nan), r"\bt\b"),
        err("jacobi_largest_zero: k = 0", lambda: polynomials.jacobi_largest_zero(0, 1.0, 1.0), r"\bk\b"),
        err("adjacent_jacobi_largest_zero: k = 0, a = 0", lambda: polynomials.adjacent_jacobi_largest_zero(5, 0, 0, 0),
            r"t_0|\ba\b"),
        err("harmonic_dimension: k = -1", lambda: polynomials.harmonic_dimension(5, -1), r"\bk\b"),
        err("gegenbauer_coefficients: f gives NaN",
            lambda: polynomials.gegenbauer_coefficients(3, lambda t: t * math.nan, 2), r"\bf\b"),
        err("gegenbauer_coefficients: degree = -1", lambda: polynomials.gegenbauer_coefficients(3, np.cos, -1), "degree"),
        val("gegenbauer_coefficients: constant f", lambda: polynomials.gegenbauer_coefficients(3, lambda t: 2.0, 2),
            [2.0, 0.0, 0.0], atol=1e-12),
        err("gegenbauer_power_coefficients: k_max = -1", lambda: polynomials.gegenbauer_power_coefficients(3, -1), "k_max"),
        err("jacobi_power_coefficients: a = -1", lambda: polynomials.jacobi_power_coefficients(2, -1, 0), r"\ba\b"),
    ]


# ---------------------------------------------------------------- codes, constructions, regions


def construction_cases():
    X = codes.simplex(3)
    return [
        err("simplex: n = 0", lambda: codes.simplex(0), r"\bn\b"),
        err("simplex: n = 2.5", lambda: codes.simplex(2.5), r"\bn\b"),
        err("cross_polytope: n = -1", lambda: codes.cross_polytope(-1), r"\bn\b"),
        err("regular_polygon: N = 1", lambda: codes.regular_polygon(1), r"\bN\b"),
        err("hypercube: n = 30", lambda: codes.hypercube(30), "MAX_POINTS"),
        err("binary_code_points: entries 2", lambda: codes.binary_code_points([[0, 2]]), "codewords"),
        err("binary_code_points: 1-D", lambda: codes.binary_code_points([0, 1]), "codewords"),
        err("hamming_codewords: r = 5", lambda: codes.hamming_codewords(5), r"\br\b"),
        err("d_n_roots: n = 2", lambda: codes.d_n_roots(2), r"\bn\b"),
        err("random_greedy_code: s = 1", lambda: codes.random_greedy_code(3, 1.0), r"\bs\b"),
        err("random_greedy_code: s = NaN", lambda: codes.random_greedy_code(3, math.nan), r"\bs\b"),
        err("random_greedy_code: seed = -1", lambda: codes.random_greedy_code(3, 0.5, seed=-1), "seed"),
        err("random_greedy_code: max_points = 0", lambda: codes.random_greedy_code(3, 0.5, max_points=0), "max_points"),
        err("max_inner_product: one row", lambda: codes.max_inner_product(X[:1]), r"\bC\b"),
        err("max_inner_product: NaN", lambda: codes.max_inner_product(np.where(X > 0, np.nan, X)), r"\bC\b"),
        err("max_inner_product: tile_rows = 0", lambda: codes.max_inner_product(X, tile_rows=0), "tile_rows"),
        val("max_inner_product: Python lists", lambda: codes.max_inner_product(X.tolist()), -1 / 3, rtol=1e-12),
        val("max_inner_product: float16 rows", lambda: codes.max_inner_product(X.astype(np.float16)), -1 / 3, rtol=1e-2),
        err("constructions_in_dimension: n = 0", lambda: codes.constructions_in_dimension(0), r"\bn\b"),
        err("best_construction: N = 0", lambda: codes.best_construction(0, 0.5), r"\bN\b"),
        err("best_construction: s = 2", lambda: codes.best_construction(5, 2.0), r"\bs\b"),
        err("from_code: one row", lambda: constructions.from_code(X[:1]), "code"),
        err("from_code: NaN", lambda: constructions.from_code(np.where(X > 0, np.nan, X)), "code"),
        val("from_code: rows x 1e200, normalize=True", lambda: constructions.from_code(X * 1e200, normalize=True).margin,
            (1 + 1 / 3) / 2, rtol=1e-12),
        err("lift: delta = 1.5", lambda: constructions.lift(U4, V4, 1.5), "delta"),
        err("lift: delta^2 + phi^2 > 1", lambda: constructions.lift(U4, V4, 0.9, 0.9), "delta"),
        err("lift: m = NaN", lambda: constructions.lift(U4, V4, 0.5, m=math.nan, b_rel=0.0), r"\bm\b"),
        err("theorem_3_3: impossible (m, b_rel)", lambda: constructions.theorem_3_3(X, 0.6, 0.6), "C7|Thm 3.4"),
        err("theorem_3_3: code too wide for alpha", lambda: constructions.theorem_3_3(codes.d_n_roots(3), 0.3, 0.0),
            "alpha"),
        err("regular_simplex: n_points = 1", lambda: constructions.regular_simplex(1), "n_points"),
        err("k_modality_simplex: k = 1", lambda: constructions.k_modality_simplex(X, 1, 0.5), r"\bk\b"),
        err("k_modality_simplex: delta = 0", lambda: constructions.k_modality_simplex(X, 3, 0.0), "delta"),
        err("double_constant: n_points = 1", lambda: constructions.double_constant(1, 0.5), "n_points"),
        err("double_constant: delta = 2", lambda: constructions.double_constant(4, 2.0), "delta"),
        err("double_constant_loss: t = NaN", lambda: constructions.double_constant_loss(4, 0.5, math.nan, 0.0), r"\bt\b"),
        err("double_constant_loss: delta = NaN", lambda: constructions.double_constant_loss(4, math.nan, 1.0, 0.0), "delta"),
        err("double_constant_loss: n_points = 1.5", lambda: constructions.double_constant_loss(1.5, 0.5, 1.0, 0.0),
            "n_points"),
        err("double_constant_loss: overflow at t = 1e308", lambda: constructions.double_constant_loss(4, 0.5, 1e308, -1e308),
            "overflow"),
        err("double_constant_log_loss: b = NaN", lambda: constructions.double_constant_log_loss(4, 0.5, 1.0, math.nan),
            r"\bb\b"),
        val("double_constant_loss: matches the vectors",
            lambda: constructions.double_constant_loss(4, 0.6, 7.0, -2.0),
            reference.sigmoid_loss(constructions.double_constant(4, 0.6).U, constructions.double_constant(4, 0.6).V, 7.0, -2.0),
            rtol=1e-12),
        err("lee_chang_sohn_optimum: t = -1", lambda: constructions.lee_chang_sohn_optimum(4, -1.0, 0.0), r"\bt\b"),
        err("locked_adapter: NaN rows", lambda: constructions.locked_adapter(NAN_ROW, 0.5), r"\bX\b"),
        err("locked_adapter: delta = 0", lambda: constructions.locked_adapter(U4, 0.0), "delta"),
        err("trainable_adapter: 1-D", lambda: constructions.trainable_adapter(ONE_D, 0.5), r"\bX\b"),
        err("trainable_adapter: rows of norm 2", lambda: constructions.trainable_adapter(LONG, 0.5), r"\bX\b.*unit"),
        err("adapter_equivalent_parameters: t = NaN", lambda: constructions.adapter_equivalent_parameters(math.nan, 0.5, 0.5),
            r"\bt\b"),
        err("adapter_equivalent_parameters: b_rel = inf",
            lambda: constructions.adapter_equivalent_parameters(1.0, math.inf, 0.5), "b_rel"),
        err("impossible_region: m = -0.1", lambda: regions.impossible_region(-0.1, 0.0), r"\bm\b"),
        err("impossible_region: b_rel = 2", lambda: regions.impossible_region(0.1, 2.0), "b_rel"),
        err("impossible_region: N = 1", lambda: regions.impossible_region(0.1, 0.0, 1), r"\bN\b"),
        err("impossible_region: m = NaN", lambda: regions.impossible_region(math.nan, 0.0), r"\bm\b"),
        err("require_feasible: (0.6, 0.6)", lambda: regions.require_feasible(0.6, 0.6), r"m \+ b_rel"),
        err("c6_code_inner_product: m = 0", lambda: regions.c6_code_inner_product(0.0, 0.0), r"\bm\b"),
        err("asymptotic_lower_size_exponent: b_rel = NaN", lambda: regions.asymptotic_lower_size_exponent(0.1, math.nan),
            "b_rel"),
        err("asymptotic_upper_size_exponent: m + b_rel > 1", lambda: regions.asymptotic_upper_size_exponent(0.3, 0.9),
            r"m \+ b_rel"),
        err("asymptotic_dimension_estimates: N = 1", lambda: regions.asymptotic_dimension_estimates(1, 0.1, 0.0), r"\bN\b"),
    ]


# ------------------------------------------------------------- search, dimension, gap, batch, io


def other_cases(tmp_dir):
    far = np.vstack([U4, -U4])  # 0 in conv(U): no open hemisphere holds the U's
    blocker = tmp_dir / "a-file"
    blocker.write_text("x")
    return [
        err("max_margin_search: N = 1", lambda: search.max_margin_search(1, 3), r"\bN\b"),
        err("max_margin_search: d = 0", lambda: search.max_margin_search(4, 0), r"\bd\b"),
        err("max_margin_search: restarts = 0", lambda: search.max_margin_search(4, 3, restarts=0), "restarts"),
        err("max_margin_search: steps = 0", lambda: search.max_margin_search(4, 3, steps=0), "steps"),
        err("max_margin_search: t_start = 0", lambda: search.max_margin_search(4, 3, t_start=0.0), "t_start"),
        err("max_margin_search: lr = NaN", lambda: search.max_margin_search(4, 3, lr=math.nan), r"\blr\b"),
        err("max_margin_search: seed = -1", lambda: search.max_margin_search(4, 3, seed=-1), "seed"),
        err("max_margin_search: b_rel = 2", lambda: search.max_margin_search(4, 3, b_rel=2.0), "b_rel"),
        err("find_constellation: N = 'a'", lambda: cs.find_constellation("a", 3), r"\bN\b"),
        err("necessary_dimension: N = 1", lambda: dimension.necessary_dimension(1, 0.1, 0.0), r"\bN\b"),
        err("necessary_dimension: impossible (m, b_rel)", lambda: dimension.necessary_dimension(10, 0.7, 0.7), r"m \+ b_rel"),
        err("necessary_dimension: m = 0", lambda: dimension.necessary_dimension(10, 0.0, 0.0), "margin"),
        err("necessary_dimension: search_dims = [2.5]",
            lambda: dimension.necessary_dimension(10, 0.1, 0.0, search_dims=[2.5], use_lp=False), "search_dims"),
        err("necessary_dimension: search_kwargs = 'x'",
            lambda: dimension.necessary_dimension(10, 0.1, 0.0, search_dims=[3], search_kwargs="x", use_lp=False),
            "search_kwargs"),
        err("modality_gap_direction: 0 in conv(U)", lambda: cs.modality_gap_direction(far, np.vstack([V4, -V4])),
            "convex hull"),
        err("modality_gap_direction: NaN", lambda: cs.modality_gap_direction(NAN_ROW, V4), r"\bU\b.*non-finite"),
        err("modality_gap_direction: zero row, normalize=True",
            lambda: cs.modality_gap_direction(U4, ZERO_ROW, normalize=True), r"\bV\b.*zero"),
        val("modality_gap_direction: Python lists", lambda: cs.modality_gap_direction(U4.tolist(), V4.tolist()).n_separated,
            cs.modality_gap_direction(U4, V4).n_separated),
        err("caratheodory_reduce: negative weights",
            lambda: modality_gap.caratheodory_reduce(U4, np.array([1.0, -1.0, 1.0, 1.0])), "weights"),
        err("caratheodory_reduce: weights of the wrong length", lambda: modality_gap.caratheodory_reduce(U4, np.ones(3)),
            "weights"),
        err("caratheodory_reduce: NaN points", lambda: modality_gap.caratheodory_reduce(NAN_ROW, np.ones(4)), "points"),
        err("expected_batch_loss: batch_size = 0", lambda: batch.expected_batch_loss(U4, V4, T, B, 0), "batch_size"),
        err("expected_batch_loss: batch_size > N", lambda: batch.expected_batch_loss(U4, V4, T, B, 5), "batch_size"),
        err("expected_batch_loss: t = NaN", lambda: batch.expected_batch_loss(U4, V4, math.nan, B, 3), r"\bt\b"),
        err("expected_batch_loss: batch_size = 2.0", lambda: batch.expected_batch_loss(U4, V4, T, B, 2.0), "batch_size"),
        err("batch_robustness: B = sqrt(N)", lambda: batch.batch_robustness(U4, V4, T, B, 2), "batch_size"),
        err("batch_robustness: b = inf", lambda: batch.batch_robustness(U4, V4, T, math.inf, 3), r"\bb\b"),
        val("expected_batch_loss: B = N is the full loss", lambda: batch.expected_batch_loss(U4, V4, T, B, 4),
            reference.sigmoid_loss(U4, V4, T, B), rtol=1e-12),
        err("analyze_embeddings: histogram_bins = 0",
            lambda: analysis.analyze_embeddings(U4, V4, histogram_bins=0, return_histograms=True), "histogram_bins"),
        err("analyze_embeddings: labels of the wrong length", lambda: analysis.analyze_embeddings(U4, V4, labels=[0, 1]),
            "labels"),
        err("analyze_embeddings: fractional labels", lambda: analysis.analyze_embeddings(U4, V4, labels=[0, 1, 2, 2.5]),
            "labels"),
        err("analyze_embeddings: labels out of range", lambda: analysis.analyze_embeddings(U4, V4, labels=[0, 1, 2, 4]),
            "labels"),
        err("analyze_embeddings: 2-D labels", lambda: analysis.analyze_embeddings(U4, V4, labels=np.zeros((4, 1), int)),
            "labels"),
        err("analyze_embeddings: one text", lambda: analysis.analyze_embeddings(U4, V4[:1], labels=[0, 0, 0, 0]),
            "text embeddings"),
        err("analyze_embeddings: widths differ", lambda: analysis.analyze_embeddings(U4, np.eye(4)), "image embeddings"),
        err("check_writable_dir: parent is a file", lambda: io.check_writable_dir(blocker / "sub"), "a-file"),
    ]


def all_cases(tmp_dir):
    return (loss_cases() + logits_cases() + geometry_cases() + bounds_cases() + polynomial_cases()
            + construction_cases() + other_cases(tmp_dir))


def test_battery_is_large_enough(tmp_path):
    cases = all_cases(tmp_path) + [None] * len(CLI_CASES)
    assert len(cases) >= 150, len(cases)
    ids = [c.id for c in all_cases(tmp_path)]
    assert len(ids) == len(set(ids)), "case ids must be unique"


def test_every_bad_input_gets_a_clear_error_or_the_right_answer(tmp_path):
    """Runs the whole table and lists every bad outcome at once (the issue's classification)."""
    cases = all_cases(tmp_path)
    bad = []
    for case in cases:
        good, what = classify(case)
        if not good:
            bad.append(f"{case.id}: {what}")
    assert not bad, f"{len(bad)} of {len(cases)} cases are bad:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------- scale safety


@settings(max_examples=15, deadline=None)
@given(k=st.integers(-30, 30), dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 2**16),
       which=st.sampled_from(sorted(LOSSES)))
def test_losses_with_normalize_match_the_unscaled_float64_truth(k, dtype, seed, which):
    """normalize=True must give the loss of the unit rows whatever the rows' scale (10^k) and dtype."""
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    fn, ref = LOSSES[which]
    truth = ref(unit(X), unit(Y))
    got = float(fn((X * 10.0**k).astype(dtype), (Y * 10.0**k).astype(dtype), normalize=True))
    assert np.isfinite(got)
    assert got == pytest.approx(truth, rel=1e-4 if dtype == "float32" else 1e-10, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(-300, 300), seed=st.integers(0, 2**16))
def test_geometry_with_normalize_matches_the_unscaled_truth(k, seed):
    """m*, b*_rel and xi of rows scaled by 10^k (float64, k in [-300, 300]) are those of the unit rows."""
    rng = np.random.default_rng(seed)
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    m, b = cs.margin_and_relative_bias(unit(X), unit(Y))
    m2, b2 = cs.margin_and_relative_bias(X * 10.0**k, Y * 10.0**k, normalize=True)
    assert (m2, b2) == pytest.approx((m, b), abs=1e-13)
    assert cs.xi_statistic(X * 10.0**k, Y * 10.0**k, normalize=True) == pytest.approx(cs.xi_statistic(unit(X), unit(Y)),
                                                                                      abs=1e-13)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), d=st.sampled_from([3, 64]))
def test_float16_unit_rows_are_accepted_everywhere(seed, d):
    """Rows normalized in float16 (norms 1 +- a few float16 eps) are unit rows for every check."""
    rng = np.random.default_rng(seed)
    X = unit(rng.standard_normal((4, d))).astype(np.float16)
    Y = unit(rng.standard_normal((4, d))).astype(np.float16)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    assert float(cs.sigmoid_loss(X, Y, T, B)) == pytest.approx(reference.sigmoid_loss(X64, Y64, T, B), rel=1e-3)
    m, _ = cs.margin_and_relative_bias(X, Y)
    assert m == pytest.approx(cs.margin_and_relative_bias(X64, Y64, normalize=True)[0], abs=5e-3)


# ---------------------------------------------------------------------------------- the CLI


def _write(tmp, name, content):
    p = tmp / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, str):
        p.write_text(content)
    else:
        np.save(p, content, allow_pickle=True)
    return str(p)


def _npz(tmp, name, allow_pickle=False, **arrays):
    p = tmp / name
    np.savez(p, **arrays)
    return str(p)


CLI_CASES = {
    # name: (argv builder, words the one error line must contain)
    "text renamed .npy": (lambda t, u: [_write(t, "x.npy", "1 2 3\n"), u], "not a numeric .npy"),
    "pickled object .npy": (lambda t, u: [_write(t, "o.npy", np.array([{"a": 1}], dtype=object)), u], "Python objects"),
    "object array in .npz": (lambda t, u: [_npz(t, "o.npz", a=np.array([{"a": 1}], dtype=object)), u], "Python objects"),
    "empty file": (lambda t, u: [_write(t, "e.npy", b""), u], "not a numeric"),
    "truncated .npy": (lambda t, u: [_write(t, "tr.npy", open(u, "rb").read()[:20]), u], "cannot read"),
    "missing file": (lambda t, u: [str(t / "nope.npy"), u], "no such file"),
    "1-D array": (lambda t, u: [_write(t, "one.npy", np.ones(3)), u], "2-D"),
    "NaN entries": (lambda t, u: [_write(t, "nan.npy", np.full((4, 3), np.nan)), u], "non-finite"),
    "complex array": (lambda t, u: [_write(t, "c.npy", np.eye(4, 3) * 1j), u], "real"),
    "bool array": (lambda t, u: [_write(t, "b.npy", np.eye(4, 3, dtype=bool)), u], "real numbers"),
    "widths differ": (lambda t, u: [u, _write(t, "w.npy", np.eye(4))], "same embedding dimension"),
    ".npz with two arrays, no key": (lambda t, u: [_npz(t, "two.npz", a=np.eye(4, 3), b=np.eye(4, 3)), u], "--image-key"),
    ".npz wrong key": (lambda t, u: [_npz(t, "one.npz", a=np.eye(4, 3)), u, "--image-key", "zz"], "no array 'zz'"),
    "labels of the wrong length": (lambda t, u: [u, u, "--labels", _write(t, "l.npy", np.zeros(2, int))], "labels"),
    "unwritable --json (parent is a file)": (lambda t, u: [u, u, "--json", str(t / "blocker" / "out.json")], "--json"),
    "--json is a directory": (lambda t, u: [u, u, "--json", str(t)], "--json.*directory"),
    "unwritable --plot": (lambda t, u: [u, u, "--plot", str(t / "blocker" / "h.png")], "--plot"),
    "rows not unit": (lambda t, u: [_write(t, "long.npy", 2 * np.eye(4, 3)), u], "unit"),
    "zero row with --normalize": (lambda t, u: [_write(t, "z.npy", np.zeros((4, 3))), u, "--normalize"], "zero"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input_is_one_error_line_before_any_work(tmp_path, capsys, case):
    """The analyze command: exit 2, one ``error:`` line naming the problem, nothing computed or printed."""
    (tmp_path / "blocker").write_text("a file where a folder is expected")
    u = _write(tmp_path, "u.npy", U4)
    build, words = CLI_CASES[case]
    rc = cli_main(["analyze", *build(tmp_path, u)])
    out, errors = capsys.readouterr()
    assert rc == 2
    lines = [line for line in errors.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), errors
    assert re.search(words, lines[0]), lines[0]
    assert out == "", "the statistics were computed (printed) before the bad input was refused"


def test_cli_loads_float16_as_it_is_and_analysis_accepts_it(tmp_path):
    """A float16 .npy of unit rows is loaded as float16 and analysed as the unit rows it stands for."""
    from constellations.__main__ import load_array

    U = load_array(_write(tmp_path, "a.npy", U16), "image embeddings")
    assert U.dtype == np.float16
    stats = analysis.analyze_embeddings(U, V16)
    assert stats.margin == pytest.approx(cs.margin_and_relative_bias(unit(U16), unit(V16))[0], abs=1e-12)
