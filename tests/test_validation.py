"""Bad input gets a ValueError that says what is wrong, for every public function of the core."""

import numpy as np
import pytest

import constellations as cs

GOOD = np.eye(3)
NAN = np.eye(3).copy()
NAN[0, 0] = np.nan
LONG = 2 * np.eye(3)


def pair_fns():
    return {
        "sigmoid_loss": lambda U, V: cs.sigmoid_loss(U, V, 10.0, -10.0),
        "relative_bias_loss": lambda U, V: cs.relative_bias_loss(U, V, 10.0, 0.5),
        "sigmoid_loss (terms)": lambda U, V: cs.sigmoid_loss(U, V, 10.0, -10.0, reduction="none"),
        "log_sigmoid_loss": lambda U, V: cs.log_sigmoid_loss(U, V, 10.0, -10.0),
        "softmax_loss": lambda U, V: cs.softmax_loss(U, V, 10.0),
        "multimodal_sigmoid_loss": lambda U, V: cs.multimodal_sigmoid_loss([U, V], 10.0, -10.0),
        "margin_and_relative_bias": cs.margin_and_relative_bias,
        "constellation_statistics": cs.constellation_statistics,
        "is_constellation": lambda U, V: cs.is_constellation(U, V, 0.1, 0.0),
        "retrieval": cs.retrieval,
        "xi_statistic": cs.xi_statistic,
        "modality_gap_statistics": cs.modality_gap_statistics,
    }


BAD_PAIRS = {
    "1-D": (np.ones(3) / np.sqrt(3), np.ones(3) / np.sqrt(3), "2-D"),
    "3-D": (np.ones((2, 2, 2)), np.ones((2, 2, 2)), "2-D"),
    "width mismatch": (np.eye(3), np.eye(4)[:3], "same embedding dimension"),
    "N mismatch": (np.eye(3), np.eye(3)[:2], "same number of rows"),
    "N < 2": (np.eye(3)[:1], np.eye(3)[:1], "at least 2 rows"),
    "d = 0": (np.zeros((3, 0)), np.zeros((3, 0)), "d >= 1"),
    "NaN": (NAN, GOOD, "non-finite"),
    "inf": (GOOD, np.where(GOOD == 1, np.inf, 0.0), "non-finite"),
    "not unit": (LONG, GOOD, "unit vectors"),
}


@pytest.mark.parametrize("fn_name", list(pair_fns()))
@pytest.mark.parametrize("case", list(BAD_PAIRS))
def test_bad_embeddings_raise_clear_errors(fn_name, case):
    U, V, msg = BAD_PAIRS[case]
    if fn_name == "multimodal_sigmoid_loss" and case in ("N mismatch", "width mismatch"):
        msg = "same shape"
    with pytest.raises(ValueError, match=msg):
        pair_fns()[fn_name](U, V)


@pytest.mark.parametrize("fn_name", ["sigmoid_loss", "margin_and_relative_bias", "retrieval", "xi_statistic"])
def test_normalize_flag_accepts_non_unit_rows(fn_name):
    fn = pair_fns()[fn_name]
    with pytest.raises(ValueError, match="unit"):
        fn(LONG, GOOD)
    if fn_name == "sigmoid_loss":
        assert float(cs.sigmoid_loss(LONG, GOOD, 10.0, -10.0, normalize=True)) == pytest.approx(float(cs.sigmoid_loss(GOOD, GOOD, 10.0, -10.0)))
    else:
        kw = {"normalize": True}
        a, b = (cs.margin_and_relative_bias(LONG, GOOD, **kw), cs.margin_and_relative_bias(GOOD, GOOD)) if fn_name == "margin_and_relative_bias" else (None, None)
        fn_kw = {"margin_and_relative_bias": cs.margin_and_relative_bias, "retrieval": cs.retrieval, "xi_statistic": cs.xi_statistic}[fn_name]
        fn_kw(LONG, GOOD, **kw)
        assert a == b


def test_zero_row_cannot_be_normalized():
    Z = np.eye(3).copy()
    Z[1] = 0
    with pytest.raises(ValueError, match="all-zero row"):
        cs.margin_and_relative_bias(Z, GOOD, normalize=True)


@pytest.mark.parametrize("t", [-1.0, np.nan, np.inf])
def test_bad_inverse_temperature(t):
    for f in (lambda: cs.sigmoid_loss(GOOD, GOOD, t, 0.0), lambda: cs.relative_bias_loss(GOOD, GOOD, t, 0.0),
              lambda: cs.softmax_loss(GOOD, GOOD, t), lambda: cs.log_sigmoid_loss(GOOD, GOOD, t, 0.0)):
        with pytest.raises(ValueError, match="inverse temperature"):
            f()


@pytest.mark.parametrize("b", [np.nan, -np.inf])
def test_bad_bias(b):
    with pytest.raises(ValueError, match="bias"):
        cs.sigmoid_loss(GOOD, GOOD, 1.0, b)
    with pytest.raises(ValueError, match="relative bias"):
        cs.relative_bias_loss(GOOD, GOOD, 1.0, b)


def test_bad_reduction_and_parameterization():
    with pytest.raises(ValueError, match="reduction"):
        cs.sigmoid_loss(GOOD, GOOD, 1.0, 0.0, reduction="avg")
    with pytest.raises(ValueError, match="parameterization"):
        cs.multimodal_sigmoid_loss([GOOD, GOOD], 1.0, 0.0, parameterization="rb")
    with pytest.raises(ValueError, match="k = 2"):
        cs.multimodal_sigmoid_loss([GOOD], 1.0, 0.0)
    with pytest.raises(ValueError, match="graph"):
        cs.multimodal_sigmoid_loss([GOOD, GOOD], 1.0, 0.0, graph="ring")
    with pytest.raises(ValueError, match="edge"):
        cs.multimodal_sigmoid_loss([GOOD, GOOD], 1.0, 0.0, graph=[(0, 0)])
    with pytest.raises(ValueError, match="scalar"):
        cs.sigmoid_loss(GOOD, GOOD, np.ones(2), 0.0)


@pytest.mark.parametrize("m,b_rel,msg", [(-0.1, 0.0, "margin"), (1.5, 0.0, "margin"), (0.1, 1.5, "relative bias"),
                                         (0.1, -1.01, "relative bias"), (np.nan, 0.0, "margin")])
def test_is_constellation_thresholds_outside_their_domain(m, b_rel, msg):
    with pytest.raises(ValueError, match=msg):
        cs.is_constellation(GOOD, GOOD, m, b_rel)


def test_triplet_and_separability_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        cs.triplet_loss(GOOD, GOOD, -1.0)
    with pytest.raises(ValueError, match="same embedding dimension"):
        cs.linear_separability(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="method"):
        cs.linear_separability(GOOD, GOOD, method="svm")
    with pytest.raises(ValueError, match="non-finite"):
        cs.linear_separability(NAN, GOOD)
