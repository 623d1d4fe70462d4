"""Mutation testing of the core: plant one bug at a time and check that the tests see it (issue 16.2).

``python -m experiments.mutation [--only NAME ...] [--list] [--timeout S]`` (or ``make mutation``).

Each mutant is (name, file, original snippet, mutated snippet, tests): the original snippet occurs
exactly once in the file (``tests/test_mutation.py`` checks that, fast, in ``make test``). A run
copies ``constellations/`` and ``tests/`` into a temporary folder, and for each mutant rewrites the
one file there, runs the named tests with ``pytest -x -q`` (the first failure kills the mutant),
and restores the file. The working tree is never modified. A mutant survives when its tests pass.

Mutants are meaningful, not random: sign flips, off-by-one, wrong axis, wrong reduction, dropped
clamp or check, < vs <=. Each targets the tests that claim to check that line, so a survivor is a
test gap (or an equivalent mutant; those are listed in ``EQUIVALENT`` with the reason and not
counted). Modules: loss, geometry, bounds, polynomials, codes, constructions, regions, search,
dimension, modality_gap, batch and the synthetic engine (its hand-written step and Adam update).

Not part of ``make test`` (it takes about 20-40 minutes on 2 busy cores; ``--part I/K`` splits it
between K workers, ``--report`` merges their ``--results`` files).

Last run (2 cores under a load of 10-18, three workers, about 35 minutes): 62 of 68 killed on the
first pass. The six survivors were test gaps, each closed by a test: log_sigmoid_loss's tail was
checked only to 1e-9 (now 1e-12 where the tail is used); is_negative_on was never given a zero at
an end of the interval; the search tests did not check that the best restart is returned or that a
frozen b_rel stays frozen; the dimension report's "+1" of Thm 3.3 was not compared with a built
construction; C4's guarantee was only bounded, not stated (B^2 for B(B - 1) slipped through). After
the fixes all six are killed: 68 of 68 (100%). The engine's 7 mutants, added after the engine's
rewrite: 5 killed, 2 equivalent (listed in EQUIVALENT): 73 of 73 non-equivalent mutants killed.
With ``loss_every`` (issue 14) one more engine mutant, the loss recorded at the wrong step of its
group: killed, as are the two engine mutants re-pointed at the renamed lines (74 of 74).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str          # path relative to the repository root
    original: str      # occurs exactly once in the file
    mutated: str
    tests: tuple[str, ...]  # pytest node ids (or files) that should kill it


def m(name, file, original, mutated, *tests):
    return Mutant(name, f"constellations/{file}", original, mutated, tuple(tests))


T = "tests/"
MUTANTS = [
    # ------------------------------------------------------------------------------------- loss
    m("loss: labels' sign flipped", "loss.py",
      "return 2.0 * jnp.eye(n_rows, n_cols, dtype=dtype) - 1.0", "return 1.0 - 2.0 * jnp.eye(n_rows, n_cols, dtype=dtype)",
      T + "test_loss.py::test_sigmoid_loss_matches_numpy_reference"),
    m("loss: per_example divides by N^2", "loss.py",
      "    if reduction == \"per_example\":\n        return total / n\n",
      "    if reduction == \"per_example\":\n        return total / (n * n)\n",
      T + "test_loss.py::test_reductions_mean_the_same_in_every_loss"),
    m("loss: mean divides by N", "loss.py",
      "        return total / (n * n)\n    raise", "        return total / n\n    raise",
      T + "test_loss.py::test_reductions_mean_the_same_in_every_loss"),
    m("loss: relative bias b = +t b_rel", "loss.py",
      "_sigmoid_loss_core(_as_float(U), _as_float(V), t, -t * b_rel,", "_sigmoid_loss_core(_as_float(U), _as_float(V), t, t * b_rel,",
      T + "test_loss.py::test_relative_bias_loss_equals_standard_at_b_equal_minus_t_b_rel"),
    m("loss: softmax uses rows twice (axis)", "loss.py",
      "col = jax.nn.logsumexp(logits, axis=0) - jnp.diagonal(logits)", "col = jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits)",
      T + "test_loss.py::test_softmax_loss_matches_reference"),
    m("loss: softplus custom JVP drops the e^{-|x|} branch", "loss.py",
      "sigmoid = jnp.where(x >= 0, inv, e * inv)", "sigmoid = jnp.where(x >= 0, inv, inv)",
      T + "test_loss.py::test_softplus_matches_jax_and_its_derivative_is_the_sigmoid"),
    m("loss: triplet keeps the diagonal", "loss.py",
      "terms = jnp.where(jnp.eye(U.shape[0], dtype=bool), 0.0, terms)", "terms = terms",
      T + "test_loss.py::test_triplet_loss_matches_reference"),
    m("loss: triplet relu dropped", "loss.py",
      "terms = jax.nn.relu(pos[:, None] - dist + alpha)", "terms = pos[:, None] - dist + alpha",
      T + "test_loss.py::test_triplet_loss_matches_reference"),
    m("loss: star graph includes (1, 2)", "loss.py",
      "return tuple((0, j) for j in range(1, k))", "return tuple((0, j) for j in range(1, k)) + ((1, 2),) * (k > 2)",
      T + "test_loss.py::test_multimodal_loss_is_the_edge_sum"),
    m("loss: edge mean divides by k", "loss.py",
      "total / len(edges) if edge_reduction == \"mean\" else total", "total / k if edge_reduction == \"mean\" else total",
      T + "test_loss.py::test_multimodal_loss_is_the_edge_sum"),
    m("loss: normalize=True skips the scale", "loss.py",
      "y = x * jnp.ldexp(jnp.ones_like(top), -jnp.clip(e, -limit, limit))", "y = x",
      T + "test_bad_inputs.py::test_losses_with_normalize_match_the_unscaled_float64_truth"),
    m("loss: log-softplus tail sign", "loss.py",
      "tail = xs + jnp.log1p(-ex / 2 + ex * ex / 3)", "tail = xs + jnp.log1p(ex / 2 + ex * ex / 3)",
      T + "test_loss.py::test_log_loss_is_exact_in_the_softplus_tail", T + "test_loss.py::test_log_loss_is_log_of_loss"),
    # --------------------------------------------------------------------------------- geometry
    m("geometry: m* sign (max_neg - min_pos)", "geometry.py",
      "margin=(min_pos - max_neg) / 2,", "margin=(max_neg - min_pos) / 2,",
      T + "test_geometry.py::test_margin_is_the_definition"),
    m("geometry: b*_rel without the / 2", "geometry.py",
      "relative_bias=(min_pos + max_neg) / 2,", "relative_bias=(min_pos + max_neg),",
      T + "test_geometry.py::test_margin_is_the_definition"),
    m("geometry: positives not masked out of the negatives", "geometry.py",
      "        S[rows, start + rows] = -np.inf  # the positives are not negatives\n", "",
      T + "test_geometry.py::test_margin_is_the_definition"),
    m("geometry: block offset forgotten", "geometry.py",
      "best, where = float(S[i, j]), (start + i, j)", "best, where = float(S[i, j]), (i, j)",
      T + "test_geometry.py::test_blocked_equals_dense_for_any_block_size"),
    m("geometry: is_constellation uses < on the positives", "geometry.py",
      "stats.min_positive >= b_rel + m - atol", "stats.min_positive > b_rel + m + atol",
      T + "test_geometry.py::test_is_constellation_accepts_any_smaller_margin"),
    m("geometry: retrieval directions swapped", "geometry.py",
      "return RetrievalResult(u_to_v_gap=pos - row_best, v_to_u_gap=pos - col_best)",
      "return RetrievalResult(u_to_v_gap=pos - col_best, v_to_u_gap=pos - row_best)",
      T + "test_geometry.py::test_retrieval_directions_are_not_interchangeable"),
    m("geometry: ties count as correct", "geometry.py",
      "return bool(self.min_gap > 0)", "return bool(self.min_gap >= 0)",
      T + "test_geometry.py::test_all_correct_tie_rule_beyond_constellations"),
    m("geometry: column best over the wrong axis", "geometry.py",
      "np.maximum(col_best, S.max(axis=0), out=col_best)", "np.maximum(col_best, S.max(axis=1).max(), out=col_best)",
      T + "test_geometry.py::test_retrieval_gaps_match_the_dense_row_and_column_formulas"),
    m("geometry: xi without the mean", "geometry.py",
      "return float(max(np.mean(np.sum((X - mean) ** 2, axis=1)), 0.0))", "return float(max(np.mean(np.sum(X ** 2, axis=1)), 0.0))",
      T + "test_geometry.py::test_xi_statistic"),
    m("geometry: mean negative over N^2", "geometry.py",
      "mean_negative=neg_sum / (n * (n - 1)),", "mean_negative=neg_sum / (n * n),",
      T + "test_geometry.py::test_modality_gap_statistics_on_a_shifted_pair"),
    m("geometry: power-of-two scale dropped (NumPy)", "_validation.py",
      "    scaled = arr * _power_of_two_scale(arr)\n", "    scaled = arr\n",
      T + "test_bad_inputs.py::test_geometry_with_normalize_matches_the_unscaled_truth"),
    # ----------------------------------------------------------------------------------- bounds
    m("bounds: exact s < 0 count off by one", "bounds.py",
      "count = n + 1 if s >= -1 / n else min(n + 1, math.floor(1 - 1 / s + _FLOOR_SLACK))",
      "count = n + 1 if s >= -1 / n else min(n + 1, math.floor(1 - 1 / s + _FLOOR_SLACK) + 1)",
      T + "test_bounds.py::test_exact_small_cases", T + "test_bounds.py::test_exact_rankin_value_is_attained_and_levenshtein_agrees"),
    m("bounds: s = 0 gives n instead of 2n", "bounds.py",
      "return _exact(\"exact (s = 0: Rankin, cross-polytope)\", 2 * n, n, s)",
      "return _exact(\"exact (s = 0: Rankin, cross-polytope)\", n, n, s)",
      T + "test_bounds.py::test_exact_small_cases"),
    m("bounds: Rankin clamp dropped", "bounds.py",
      "log_value = _rankin_log(n, max(s, turning))", "log_value = _rankin_log(n, s)",
      T + "test_bounds.py::test_rankin_is_nondecreasing_in_s_where_the_clamp_acts"),
    m("bounds: volume bound at theta instead of theta/2", "bounds.py",
      "return _upper(\"volume (cap packing)\", -log_cap_measure(n, theta / 2), n, s)",
      "return _upper(\"volume (cap packing)\", -log_cap_measure(n, theta), n, s)",
      T + "test_bounds.py::test_volume_rankin_csw_kissing_values"),
    m("bounds: Levenshtein S_{k,1} without the factor 2", "bounds.py",
      "size = 2 * math.comb(n + k - 2, k - 1)", "size = math.comb(n + k - 2, k - 1)",
      T + "test_bounds.py::test_levenshtein_kissing_table"),
    m("bounds: Levenshtein degree picks epsilon with <", "bounds.py",
      "return k, (0 if s <= _t(n, k, 1, 0) else 1)", "return k, (1 if s <= _t(n, k, 1, 0) else 0)",
      T + "test_bounds.py::test_levenshtein_kissing_table"),
    m("bounds: cap measure complement sign", "bounds.py",
      "return 1.0 - float(special.betainc(a, a, math.sin((math.pi - theta) / 2) ** 2))",
      "return float(special.betainc(a, a, math.sin((math.pi - theta) / 2) ** 2))",
      T + "test_bounds.py::test_cap_measure_symmetry"),
    m("bounds: certificate accepts a non-negative excursion", "polynomials.py",
      "    if _sign_at(p, a) >= 0:\n        return False\n", "    if _sign_at(p, a) > 0:\n        return False\n",
      T + "test_polynomials.py::test_sturm_test_is_exact", T + "test_polynomials.py::test_sturm_test_refuses_a_zero_at_either_end"),
    # ------------------------------------------------------------------------------ polynomials
    m("polynomials: Gegenbauer recursion off by one", "polynomials.py",
      "out[k] = ((2 * k + n - 4) * t * out[k - 1] - (k - 1) * out[k - 2]) / (k + n - 3)",
      "out[k] = ((2 * k + n - 4) * t * out[k - 1] - k * out[k - 2]) / (k + n - 3)",
      T + "test_polynomials.py::test_gegenbauer_n2_is_chebyshev_and_n3_is_legendre"),
    m("polynomials: series forgets c_1", "polynomials.py",
      "    if c.size > 1:\n        total = total + c[1] * cur\n", "",
      T + "test_polynomials.py::test_series_and_derivative"),
    m("polynomials: harmonic dimension without the subtraction", "polynomials.py",
      "return math.comb(n + k - 1, k) - (math.comb(n + k - 3, k - 2) if k >= 2 else 0)", "return math.comb(n + k - 1, k)",
      T + "test_polynomials.py::test_harmonic_dimension"),
    m("polynomials: Jacobi p_1 slope sign", "polynomials.py",
      "out[1] = 1.0 + (a + b + 2.0) * (t - 1.0) / (2.0 * (a + 1.0))", "out[1] = 1.0 - (a + b + 2.0) * (t - 1.0) / (2.0 * (a + 1.0))",
      T + "test_polynomials.py::test_jacobi_normalized_against_scipy"),
    m("polynomials: largest zero picks the smallest eigenvalue", "polynomials.py",
      "select_range=(k - 1, k - 1)", "select_range=(0, 0)",
      T + "test_polynomials.py::test_largest_zero_against_golub_welsch"),
    m("polynomials: log value rescale forgets the log", "polynomials.py",
      "            log_scale += math.log(size)\n", "",
      T + "test_polynomials.py::test_log_value_rescales_without_underflow"),
    # ------------------------------------------------------------------------------------ codes
    m("codes: simplex Helmert sign", "codes.py",
      "H[j - 1, j] = -j", "H[j - 1, j] = j",
      T + "test_codes.py::test_simplex_and_cross_polytope"),
    m("codes: max inner product keeps the diagonal", "codes.py",
      "S[:, :r][lower[:r, :r]] = -np.inf", "S[:, :r][np.tril(lower[:r, :r], -1)] = -np.inf",
      T + "test_codes.py::test_max_inner_product_matches_dense"),
    m("codes: binary code map without the scale", "codes.py",
      "return (1.0 - 2.0 * C.astype(np.float64)) / math.sqrt(C.shape[1])", "return (1.0 - 2.0 * C.astype(np.float64))",
      T + "test_codes.py::test_binary_codes"),
    m("codes: greedy code accepts s + margin", "codes.py",
      "if ok[i] and (count == start or np.max(code[start:count] @ X[i]) <= s):",
      "if ok[i] and (count == start or np.max(code[start:count] @ X[i]) <= s + 0.1):",
      T + "test_codes.py::test_random_greedy_code"),
    m("codes: best construction simplex needs n = N", "codes.py",
      "options.append((N - 1, f\"simplex({N - 1})\"))", "options.append((N, f\"simplex({N})\"))",
      T + "test_codes.py::test_best_construction"),
    # ---------------------------------------------------------------------------- constructions
    m("constructions: lift's last coordinate not negated for V", "constructions.py",
      "Vp = np.hstack([delta * V, tail, np.full((n, 1), -c)])", "Vp = np.hstack([delta * V, tail, np.full((n, 1), c)])",
      T + "test_constructions.py::test_C5_lift"),
    m("constructions: C5 formula b_rel sign of c^2", "constructions.py",
      "delta**2 * b_rel + phi**2 - c**2, \"lift (C5)\"", "delta**2 * b_rel + phi**2 + c**2, \"lift (C5)\"",
      T + "test_constructions.py::test_C5_lift"),
    m("constructions: Thm 3.3 delta^2 without the / 2", "constructions.py",
      "delta = np.sqrt((1 + b_rel + m) / 2)", "delta = np.sqrt(min((1 + b_rel + m) / 1.9, 1.0))",
      T + "test_constructions.py::test_C6_theorem_3_3_construction"),
    m("constructions: C11 formula uses k instead of k - 1", "constructions.py",
      "b = delta**2 * (1 + alpha) / 2 - (1 - delta**2) / (k - 1)", "b = delta**2 * (1 + alpha) / 2 - (1 - delta**2) / k",
      T + "test_constructions.py::test_C11_k_modality_simplex"),
    m("constructions: C10 b_rel' sign", "constructions.py",
      "return delta**2 * t, (b_rel + 1 - delta**2) / delta**2", "return delta**2 * t, (b_rel - 1 + delta**2) / delta**2",
      T + "test_constructions.py::test_C10_locked_modality_adapters_are_a_reparameterization"),
    m("constructions: double-constant negatives' 1/(N - 1)", "constructions.py",
      "    neg = -(delta**2) / (n - 1) - (1 - delta**2)\n    with np.errstate(over=\"ignore\"):",
      "    neg = -(delta**2) / n - (1 - delta**2)\n    with np.errstate(over=\"ignore\"):",
      T + "test_constructions.py::test_C14_double_constant_family_values"),
    m("constructions: Lee-Chang-Sohn ignores the end points", "constructions.py",
      "best_q = min([0.0, 1.0, float(res.x)], key=f)", "best_q = float(res.x)",
      T + "test_constructions.py::test_C14_antipodal_for_small_t_and_max_margin_member_for_large_t"),
    # ---------------------------------------------------------------------------------- regions
    m("regions: C7 coefficient 3 + 4/N", "regions.py",
      "coef = 3.0 - 4.0 / N", "coef = 3.0 + 4.0 / N",
      T + "test_regions.py::test_C7_is_tight_at_the_simplex"),
    m("regions: C7 strict inequality", "regions.py",
      "if m + b_rel > 1 + atol:", "if m + b_rel >= 1 + atol:",
      T + "test_regions.py::test_C7_boundary_is_allowed_and_just_beyond_is_not"),
    m("regions: max_margin 1/(2 - 1/N)", "regions.py",
      "max_margin = 0.5 if N is None else 1.0 / (2.0 - 2.0 / N)", "max_margin = 0.5 if N is None else 1.0 / (2.0 - 1.0 / N)",
      T + "test_regions.py::test_C7_max_margin_is_where_the_two_inequalities_meet"),
    m("regions: C6 alpha numerator 3m -> 2m", "regions.py",
      "return (1 + b_rel - 3 * m) / (1 + b_rel + m)", "return (1 + b_rel - 2 * m) / (1 + b_rel + m)",
      T + "test_constructions.py::test_C6_theorem_3_3_construction", T + "test_regions.py"),
    m("regions: C8 exponent 4m -> 2m", "regions.py",
      "return float(0.5 * np.log((1 + b_rel + m) / (4 * m)))", "return float(0.5 * np.log((1 + b_rel + m) / (2 * m)))",
      T + "test_regions.py"),
    # ----------------------------------------------------------------------------------- search
    m("search: restarts ranked by the worst margin", "search.py",
      "best = int(np.argmax(score))", "best = int(np.argmin(score))",
      T + "test_search.py::test_max_margin_search_beats_the_paper_and_is_verified"),
    m("search: frozen b_rel still trained", "search.py",
      "                g = (g[0], g[1], jnp.zeros_like(g[2]))\n", "                g = g\n",
      T + "test_search.py::test_max_margin_search_with_frozen_relative_bias"),
    # -------------------------------------------------------------------------------- dimension
    m("dimension: code line uses s = 1 - m", "dimension.py",
      "nd = bounds.code_dimension_bounds(N, 1 - 2 * m, use_lp=use_lp)", "nd = bounds.code_dimension_bounds(N, 1 - m, use_lp=use_lp)",
      T + "test_dimension.py::test_necessary_dimension_on_the_code_line_is_the_kissing_problem"),
    m("dimension: Thm 3.3 adds no dimension", "dimension.py",
      "cons_dim, cons = best.construction_dimension + 1,", "cons_dim, cons = best.construction_dimension,",
      T + "test_dimension.py::test_necessary_dimension_off_the_line_builds_and_searches"),
    # ----------------------------------------------------------------------------- modality gap
    m("modality_gap: Caratheodory step skipped", "modality_gap.py",
      "    weights = caratheodory_reduce(U, weights)\n", "",
      T + "test_modality_gap.py::test_C9_caratheodory_step_acts_inside_the_construction"),
    m("modality_gap: separated counted with <=", "modality_gap.py",
      "n_separated=int(np.sum(proj_v < 0)),", "n_separated=int(np.sum(proj_v <= 0.01)),",
      T + "test_modality_gap.py::test_C9_guarantee_close_to_tight"),
    m("modality_gap: guarantee N - d + 1", "modality_gap.py",
      "guaranteed=n - d,", "guaranteed=n - d + 1,",
      T + "test_modality_gap.py::test_C9_direction_meets_its_guarantee"),
    m("modality_gap: sign condition with >= on the negatives", "modality_gap.py",
      "return bool(st.min_positive > 0 and st.max_negative < 0)", "return bool(st.min_positive > 0 and st.max_negative <= 0)",
      T + "test_modality_gap.py::test_sign_condition_needs_both_halves_strictly"),
    m("modality_gap: sign condition ignores the positives", "modality_gap.py",
      "return bool(st.min_positive > 0 and st.max_negative < 0)", "return bool(st.max_negative < 0)",
      T + "test_modality_gap.py::test_sign_condition_needs_both_halves_strictly"),
    m("modality_gap: Caratheodory step size uses max", "modality_gap.py",
      "theta = np.min(w[S][pos] / mu[pos])", "theta = np.max(w[S][pos] / mu[pos])",
      T + "test_modality_gap.py::test_caratheodory_reduction_keeps_the_point"),
    # ------------------------------------------------------------------------------------ batch
    m("batch: positives weighted B(B-1)/(N(N-1))", "batch.py",
      "return (B / n) * pos + (B * (B - 1) / (n * (n - 1))) * neg if n > 1 else pos",
      "return (B * (B - 1) / (n * (n - 1))) * pos + (B * (B - 1) / (n * (n - 1))) * neg if n > 1 else pos",
      T + "test_batch.py::test_expected_batch_loss_equals_enumeration"),
    m("batch: guarantee without the factor N", "batch.py",
      "return BatchRobustness(xi, 1.0 - n * xi / (B * (B - 1)),", "return BatchRobustness(xi, 1.0 - xi / (B * (B - 1)),",
      T + "test_batch.py::test_C4_guarantee_is_positive_and_close_on_near_constellations"),
    m("batch: guarantee over B^2", "batch.py",
      "return BatchRobustness(xi, 1.0 - n * xi / (B * (B - 1)),", "return BatchRobustness(xi, 1.0 - n * xi / (B * B),",
      T + "test_batch.py::test_C4_guarantee_is_positive_and_close_on_near_constellations"),
    # ------------------------------------------------------------------------------------- the synthetic engine
    m("engine: relative bias b = +t b_rel", "synthetic/engine.py",
      "b = jnp.where(relative_bias, -t * scalars[1], scalars[1])", "b = jnp.where(relative_bias, t * scalars[1], scalars[1])",
      T + "test_engine.py::test_engine_loss_is_the_package_multimodal_loss"),
    m("engine: positives' slope sign flipped", "synthetic/engine.py",
      "return total, jnp.where(eye, -slope, slope) * (1 / n)", "return total, jnp.where(eye, slope, slope) * (1 / n)",
      T + "test_engine.py::test_hand_written_block_gradient_equals_autodiff_and_reference"),
    m("engine: slope without the e^{-|x|} branch", "synthetic/engine.py",
      "    slope = jnp.where(x >= 0, inv, e * inv)\n    total = jnp.sum(", "    slope = jnp.where(x >= 0, inv, inv)\n    total = jnp.sum(",
      T + "test_engine.py::test_hand_written_block_gradient_equals_autodiff_and_reference"),
    m("engine: frozen embeddings still get gradients", "synthetic/engine.py",
      "grads = (jnp.where(train_X, gX, 0), jnp.where(train_s, gs, 0))", "grads = (gX, jnp.where(train_s, gs, 0))",
      T + "test_engine.py::test_steps_equal_hand_written_adam_reference"),
    m("engine: step goes uphill", "synthetic/engine.py",
      "X = jnp.where(train_X, normalize_rows(X - lr * dX), X)", "X = jnp.where(train_X, normalize_rows(X + lr * dX), X)",
      T + "test_engine.py::test_steps_equal_hand_written_adam_reference"),
    m("engine: no re-projection after the step", "synthetic/engine.py",
      "X = jnp.where(train_X, normalize_rows(X - lr * dX), X)", "X = jnp.where(train_X, X - lr * dX, X)",
      T + "test_engine.py::test_reprojection_keeps_rows_unit_norm"),
    m("engine: loss_every records the loss of the wrong step", "synthetic/engine.py",
      "length=cfg.loss_every - 1)\n            return train_step(cfg, state, run)",
      "length=cfg.loss_every - 1)\n            return train_step(cfg, state, run, value=cfg.loss_every == 1)",
      T + "test_engine.py::test_loss_every_records_the_same_losses_and_trains_the_same_runs"),
    m("engine: frozen scalars move", "synthetic/engine.py",
      "scalars = jnp.where(train_s, scalars - lr * ds, scalars)", "scalars = scalars - lr * ds",
      T + "test_engine.py::test_frozen_parameters_never_move_bit_for_bit"),
    m("batch: range check sqrt(N) <= B", "batch.py",
      "if not (np.sqrt(n) < B < n):", "if not (np.sqrt(n) <= B < n):",
      T + "test_batch.py::test_C4_bad_batch_size"),
]

#: Mutants that no test can see because the program does not change behaviour (name -> why).
EQUIVALENT: dict[str, str] = {
    "engine: frozen embeddings still get gradients":
        "the frozen rows are also kept by the update's jnp.where, and Adam is elementwise: the moments of "
        "a frozen parameter never reach a trained one, so no output can change",
    "engine: frozen scalars move":
        "a frozen scalar's gradient is masked to 0 before Adam, whose moments then stay 0 and whose update "
        "0 / (sqrt(0) + eps) is exactly 0: the scalar cannot move (the two masks guard each other)",
}


def check_mutants(root: Path = ROOT) -> list[str]:
    """Problems with the list: originals that do not occur exactly once, no-op mutants, unknown test files."""
    problems = []
    names = [mu.name for mu in MUTANTS]
    for mu in MUTANTS:
        text = (root / mu.file).read_text()
        count = text.count(mu.original)
        if count != 1:
            problems.append(f"{mu.name}: original occurs {count} times in {mu.file}")
        if mu.original == mu.mutated:
            problems.append(f"{mu.name}: mutated equals original")
        for t in mu.tests:
            if not (root / t.split("::")[0]).exists():
                problems.append(f"{mu.name}: no test file {t}")
        if names.count(mu.name) != 1:
            problems.append(f"{mu.name}: name not unique")
    for name in EQUIVALENT:
        if name not in names:
            problems.append(f"EQUIVALENT names an unknown mutant {name!r}")
    return problems


def run(mutants, timeout: float) -> list[tuple[Mutant, str, float]]:
    """Run each mutant on a temporary copy; return (mutant, 'killed' | 'survived' | 'timeout', seconds)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(ROOT / "constellations", tmp / "constellations",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
        env = dict(os.environ, PYTHONPATH=str(tmp), PYTHONDONTWRITEBYTECODE="1")
        for i, mu in enumerate(mutants, 1):
            path = tmp / mu.file
            original = path.read_text()
            path.write_text(original.replace(mu.original, mu.mutated, 1))
            start = time.monotonic()
            try:
                proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                       "-o", "addopts=", *mu.tests], cwd=tmp, env=env, capture_output=True,
                                      text=True, timeout=timeout)
                status = "survived" if proc.returncode == 0 else "killed"
                if proc.returncode not in (0, 1):  # 2-5: collection or usage errors also kill, but say so
                    status = f"killed (pytest exit {proc.returncode})"
            except subprocess.TimeoutExpired:
                status = "timeout"
            finally:
                path.write_text(original)
            seconds = time.monotonic() - start
            results.append((mu, status, seconds))
            print(f"[{i}/{len(mutants)}] {status:>9}  {seconds:5.0f} s  {mu.name}", flush=True)
    return results


def report(results) -> int:
    killed = [r for r in results if r[1].startswith("killed")]
    survived = [r for r in results if r[1] == "survived" and r[0].name not in EQUIVALENT]
    equivalent = [r for r in results if r[0].name in EQUIVALENT]
    timeouts = [r for r in results if r[1] == "timeout"]
    counted = len(results) - len(equivalent)
    score = len(killed) / counted if counted else 1.0
    print(f"\nmutation score: {len(killed)} of {counted} non-equivalent mutants killed ({100 * score:.0f}%)"
          f"; {len(equivalent)} equivalent, {len(timeouts)} timed out")
    for mu, status, _ in survived + timeouts:
        print(f"  {status}: {mu.name} ({mu.file}; tests {', '.join(mu.tests)})")
    for mu, _, _ in equivalent:
        print(f"  equivalent: {mu.name}: {EQUIVALENT[mu.name]}")
    return 0 if score >= 0.95 else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="run only mutants whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the mutants and check that they apply")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant (default 900)")
    parser.add_argument("--part", help="I/K: run only the mutants whose index is I mod K (to run K workers in parallel)")
    parser.add_argument("--results", help="also append one JSON line per mutant to this file")
    parser.add_argument("--report", nargs="+", metavar="FILE", help="only summarize the JSON lines of earlier parts")
    args = parser.parse_args(argv)
    if args.report:
        by_name = {mu.name: mu for mu in MUTANTS}
        rows = [json.loads(line) for f in args.report for line in Path(f).read_text().splitlines() if line.strip()]
        latest = {r["name"]: r for r in rows if r["name"] in by_name}  # a later file (a rerun) wins
        return report([(by_name[r["name"]], r["status"], r["seconds"]) for r in latest.values()])
    problems = check_mutants()
    if problems:
        print("the mutant list does not apply cleanly:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    mutants = [mu for mu in MUTANTS if not args.only or any(o in mu.name for o in args.only)]
    if args.part:
        i, k = (int(x) for x in args.part.split("/"))
        mutants = mutants[i::k]
    if args.list:
        for mu in mutants:
            print(f"{mu.name}  [{mu.file}]  -> {', '.join(mu.tests)}")
        print(f"{len(mutants)} mutants; every original occurs exactly once")
        return 0
    results = run(mutants, args.timeout)
    if args.results:
        with open(args.results, "a") as f:
            for mu, status, seconds in results:
                f.write(json.dumps({"name": mu.name, "status": status, "seconds": round(seconds, 1)}) + "\n")
    return report(results)


if __name__ == "__main__":
    raise SystemExit(main())
