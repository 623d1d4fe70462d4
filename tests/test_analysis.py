"""Tests of constellations.analysis and `python -m constellations analyze` (issue 7; statistics of E10)."""

import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import constellations as cs
from constellations import analysis
from constellations.__main__ import main
from constellations.analysis import analyze_embeddings


def known_embeddings(rng, n):
    """U_i = (delta_i e_i, c_i), V_i = (delta_i e_i, -c_i): s_ii = 2 delta_i^2 - 1 and s_ij = -c_i c_j exactly,
    x_i = U_i - V_i = (0, 2 c_i). Returns the vectors and the statistics computed from these formulas alone."""
    c = rng.uniform(0.05, 0.6, n)
    delta = np.sqrt(1 - c**2)
    U = np.hstack([np.diag(delta), c[:, None]])
    V = np.hstack([np.diag(delta), -c[:, None]])
    pos = 2 * delta**2 - 1
    neg = -np.outer(c, c)[~np.eye(n, dtype=bool)]
    want = {
        "margin": (pos.min() - neg.max()) / 2, "relative_bias": (pos.min() + neg.max()) / 2,
        "trimmed_margin": (np.percentile(pos, 5) - np.percentile(neg, 95)) / 2,
        "trimmed_relative_bias": (np.percentile(pos, 5) + np.percentile(neg, 95)) / 2,
        "mean_margin": (pos.mean() - neg.mean()) / 2, "mean_relative_bias": (pos.mean() + neg.mean()) / 2,
        "xi": 4 * np.var(c),
    }
    return U, V, want


@pytest.mark.parametrize("n", [12, 150])
def test_known_statistics_are_recovered(n):
    """E10 definitions: m*, b*_rel, trimmed (5th-pct positive vs 95th-pct negative), mean-based, xi, on vectors
    whose inner products are known in closed form; forced through the multi-pass exact percentile."""
    rng = np.random.default_rng(n)
    U, V, want = known_embeddings(rng, n)
    old = analysis.COLLECT_LIMIT
    analysis.COLLECT_LIMIT = 50
    try:
        r = analyze_embeddings(U, V, block_bytes=8 * V.shape[0] * 7)
    finally:
        analysis.COLLECT_LIMIT = old
    for k, v in want.items():
        assert getattr(r, k) == pytest.approx(v, abs=1e-12), k
    assert r.linearly_separable and r.separability_certified
    assert r.image_to_text_accuracy == 1.0 and r.text_to_image_accuracy == 1.0  # s_ii > 0 > s_ij here
    assert r.c9_u_positive and r.c9_v_separated == cs.modality_gap_direction(U, V).n_separated
    assert r.c9_direction_method.startswith("theorem 3.6")


@pytest.mark.parametrize("limit", [5, 10**9])
def test_crowded_bins_are_refined_exactly(limit):
    """Identical negatives (all -c^2) crowd one bin: refinement passes (forced by a tiny collect limit) still give
    the exact 95th percentile, equal to np.percentile; the ordinary path gives the same."""
    n, c = 100, 0.3
    U = np.hstack([np.sqrt(1 - c**2) * np.eye(n), np.full((n, 1), c)])
    V = np.hstack([np.sqrt(1 - c**2) * np.eye(n), np.full((n, 1), -c)])
    old = analysis.COLLECT_LIMIT
    analysis.COLLECT_LIMIT = limit
    try:
        r = analyze_embeddings(U, V)
    finally:
        analysis.COLLECT_LIMIT = old
    S = U @ V.T
    assert r.negative_p95 == np.percentile(S[~np.eye(n, dtype=bool)], 95)
    assert r.trimmed_margin == pytest.approx((1 - 2 * c**2 + c**2) / 2, abs=1e-15)


def test_labelled_layout_matches_dense():
    """Many images per caption: positives s_{i, label(i)}, negatives the other captions; dense reference."""
    rng = np.random.default_rng(0)
    T = rng.standard_normal((10, 6))
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    labels = rng.integers(0, 10, 400)
    U = T[labels] + 0.4 * rng.standard_normal((400, 6))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    r = analyze_embeddings(U, T, labels, block_bytes=8 * 10 * 33)
    S = U @ T.T
    pos = S[np.arange(400), labels]
    mask = np.ones_like(S, bool)
    mask[np.arange(400), labels] = False
    neg = S[mask]
    assert r.margin == pytest.approx((pos.min() - neg.max()) / 2, abs=1e-12)
    assert r.negative_p95 == pytest.approx(np.percentile(neg, 95), abs=1e-12)
    assert r.mean_negative == pytest.approx(neg.mean(), abs=1e-12)
    assert r.image_to_text_accuracy == pytest.approx(np.mean(S.argmax(1) == labels))
    best_img = S.argmax(0)
    used = np.unique(labels)
    assert r.text_to_image_accuracy == pytest.approx(np.mean(labels[best_img[used]] == used))
    assert r.xi == pytest.approx(np.mean(np.sum((U - T[labels] - (U - T[labels]).mean(0)) ** 2, 1)), abs=1e-12)


def test_memory_stays_blocked_for_50000_by_1000():
    """50,000 images x 1,000 captions: traced peak memory far below the 400 MB of a dense float64 matrix."""
    rng = np.random.default_rng(1)
    T = rng.standard_normal((1000, 16))
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    labels = rng.integers(0, 1000, 50_000)
    U = T[labels] + 0.3 * rng.standard_normal((50_000, 16))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    tracemalloc.start()
    r = analyze_embeddings(U, T, labels, block_bytes=16 * 2**20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert 0 < r.image_to_text_accuracy <= 1


@pytest.mark.slow
def test_100000_by_100000_fits():
    rng = np.random.default_rng(2)
    U = rng.standard_normal((100_000, 8))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    r = analyze_embeddings(U, U.copy(), block_bytes=64 * 2**20)
    assert r.image_to_text_accuracy == 1.0 and 0 < r.margin


def test_cli_writes_json_and_histogram(tmp_path):
    rng = np.random.default_rng(3)
    U, V, want = known_embeddings(rng, 30)
    np.save(tmp_path / "img.npy", U)
    np.savez(tmp_path / "txt.npz", emb=V)
    out = tmp_path / "stats.json"
    assert main(["analyze", str(tmp_path / "img.npy"), str(tmp_path / "txt.npz"), "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["margin"] == pytest.approx(want["margin"], abs=1e-12)
    assert got["full_gap"] == pytest.approx(2 * want["margin"], abs=1e-12)
    assert (tmp_path / "stats.png").stat().st_size > 1000


def test_cli_runs_as_a_module(tmp_path):
    rng = np.random.default_rng(4)
    U, V, _ = known_embeddings(rng, 8)
    np.save(tmp_path / "a.npy", U)
    np.save(tmp_path / "b.npy", V)
    p = subprocess.run([sys.executable, "-m", "constellations", "analyze", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"),
                        "--json", "-"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["n_images"] == 8


def test_cli_prints_a_summary_in_words(tmp_path, capsys):
    """Issue 17: the default output names every number in words with the paper's symbol, and says whether the
    pair is a constellation by the sign of m*; every JSON key is documented in FIELDS."""
    from constellations.analysis import FIELDS

    rng = np.random.default_rng(6)
    U, V, want = known_embeddings(rng, 12)
    np.save(tmp_path / "a.npy", U)
    np.save(tmp_path / "b.npy", V)
    assert main(["analyze", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 0
    text = capsys.readouterr().out
    for words in ("margin m*", "relative bias b*_rel", "trimmed margin", "mean-based margin", "modality gap",
                  "xi (C13)", "retrieval accuracy", f"{want['margin']:+.4f}"):
        assert words in text
    assert ("a constellation" if want["margin"] > 0 else "not a constellation") in text
    r = analyze_embeddings(U, V)
    assert set(r.to_dict()) == set(FIELDS)
    shifted = analyze_embeddings(U, U[::-1].copy())   # every caption belongs to another image: m* < 0
    assert shifted.margin < 0 and "not a constellation" in shifted.summary()


@pytest.mark.parametrize("case,msg", [
    ("width", "same embedding dimension"),
    ("nan", "non-finite"),
    ("unnormalized", "unit vectors"),
    ("labels_len", "one entry per image"),
    ("labels_range", "labels must lie in"),
    ("unreadable", "cannot read"),
    ("missing", "no such file"),
    ("count", "as many texts as images"),
])
def test_cli_bad_input_one_error_line(tmp_path, capsys, case, msg):
    rng = np.random.default_rng(5)
    U, V, _ = known_embeddings(rng, 6)
    labels = None
    if case == "width":
        V = np.hstack([V, np.zeros((6, 1))])
    elif case == "nan":
        U = U.copy()
        U[0, 0] = np.nan
    elif case == "unnormalized":
        U = 2 * U
    elif case == "labels_len":
        labels = np.arange(5)
    elif case == "labels_range":
        labels = np.arange(6) + 3
    elif case == "count":
        V = V[:4]
    np.save(tmp_path / "u.npy", U)
    np.save(tmp_path / "v.npy", V)
    args = ["analyze", str(tmp_path / "u.npy"), str(tmp_path / "v.npy")]
    if case == "unreadable":
        (tmp_path / "u.npy").write_bytes(b"not an array")
    if case == "missing":
        args[1] = str(tmp_path / "nope.npy")
    if labels is not None:
        np.save(tmp_path / "l.npy", labels)
        args += ["--labels", str(tmp_path / "l.npy")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and msg in err[0], err


def test_normalize_flag(tmp_path):
    rng = np.random.default_rng(6)
    U, V, want = known_embeddings(rng, 6)
    np.save(tmp_path / "u.npy", 3 * U)
    np.save(tmp_path / "v.npy", V)
    out = tmp_path / "s.json"
    assert main(["analyze", str(tmp_path / "u.npy"), str(tmp_path / "v.npy"), "--normalize", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["margin"] == pytest.approx(want["margin"], abs=1e-12)
