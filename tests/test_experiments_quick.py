"""The synthetic experiments E1-E9 (theory.md s.5) at the --quick scale, through the CLI's code path.

One module-scoped run of ``run_experiments(all, quick=True)`` (what ``python -m constellations.synthetic
run all --quick`` and the report section call) feeds every check: each experiment writes its config
(with the seed), raw numbers and figures, its consistency checks pass, and the report section assembles
their markdown. Claims of the paper are not judged at this scale (runs are too short).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import experiments.runner_tmp as cli

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    outcomes = cli.run_experiments(NAMES, out, quick=True, seed=3, progress=False)
    return out, {o.name: o for o in outcomes}


@pytest.mark.parametrize("name", NAMES)
def test_quick_experiment_writes_config_results_figures(quick_run, name):
    """Every experiment writes <out>/<name>/config.json (with its seed), raw numbers, figures, summary.md,
    and its consistency checks (logged metrics vs geometry, finite losses, region checks) pass."""
    out, outcomes = quick_run
    o = outcomes[name]
    folder = out / name
    config = json.loads((folder / "config.json").read_text())
    assert config["seed"] == 3 and config["quick"] is True
    assert list(folder.glob("*.png")), "no figure written"
    assert (folder / "summary.md").read_text() == o.markdown
    assert o.markdown.startswith("### E") and "](" + name + "/" in o.markdown
    assert o.checks and o.ok, o.failed()
    if name != "e9":
        files = list(folder.glob("*.npz"))
        assert files
        with np.load(files[0]) as z:
            assert np.all(np.isfinite(z["final_loss"])) and z["margin"].dtype == np.float64


def test_e9_draws_trained_points_and_checks_them(quick_run):
    """E9 reads E6's and E7's trained constellations from the same output folder and checks C7 on them."""
    _, outcomes = quick_run
    assert any("trained constellation of E6" in c for c in outcomes["e9"].checks)


def test_report_section_assembles_the_outcomes(quick_run, monkeypatch):
    """experiments/synthetic_section.run returns (markdown, ok) with every experiment's fragment."""
    out, outcomes = quick_run
    import experiments.synthetic_section as section

    monkeypatch.setattr(section, "run_experiments", lambda names, *a, **k: [outcomes[n] for n in names])
    text, ok = section.run(out, quick=True, seed=3)
    assert ok is True
    for o in outcomes.values():
        assert o.markdown in text


def test_cli_runs_one_experiment_and_refuses_bad_input(tmp_path, capsys):
    """`python -m constellations.synthetic run e9 --quick` works; unknown names or a negative seed end with
    one error line and exit status 2."""
    assert cli.main(["run", "e9", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "e9" / "config.json").is_file()
    assert cli.main(["run", "e42", "--quick"]) == 2
    assert "unknown experiment 'e42'" in capsys.readouterr().err
    assert cli.main(["run", "e1", "--seed", "-1"]) == 2
    assert cli.main(["list"]) == 0
