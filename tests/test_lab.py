"""The lab's runner (``python -m experiments``) at the --quick scale: the report of ``make reproduce``.

One module-scoped ``run report --quick`` (foundation, spherical codes, theory, E1-E9 of theory.md s.5:
what ``make reproduce-quick`` runs) feeds every check: each entry writes its config (with the seed), raw
numbers and figures, its consistency checks pass, and REPORT.md assembles their markdown. Claims of
the paper are not judged at this scale (runs are too short), and the report says so.
"""

import json

import numpy as np
import pytest

from experiments import lab, runner

SYNTHETIC = [f"e{i}" for i in range(1, 10)]
REPORT = ["foundation", "spherical_codes", "theory", *SYNTHETIC]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    outcomes = runner.run_entries(runner.resolve(["report"]), out, quick=True, seed=3, progress=False)
    text = runner.report_markdown(runner.GROUPS["report"], outcomes, quick=True, seed=3, seconds=1.0, note="test")
    return out, {o.name: o for o in outcomes}, text


@pytest.mark.parametrize("name", REPORT)
def test_quick_entry_writes_config_results_figures(quick_report, name):
    """Every entry writes <out>/<name>/config.json (with its seed), figures, summary.md, and returns an
    Outcome whose consistency checks (logged metrics vs geometry, closed forms, bounds) all pass."""
    out, outcomes, _ = quick_report
    o = outcomes[name]
    folder = out / name
    config = json.loads((folder / "config.json").read_text())
    assert config["seed"] == 3 and config["quick"] is True
    assert list(folder.glob("*.png")), "no figure written"
    assert (folder / "summary.md").read_text() == o.markdown
    assert isinstance(o, lab.Outcome) and o.quick and o.name == name
    assert "](" + name + "/" in o.markdown
    assert o.checks and o.ok, o.failed()
    if name in SYNTHETIC and name != "e9":
        files = list(folder.glob("*.npz"))
        assert files
        with np.load(files[0]) as z:
            assert np.all(np.isfinite(z["final_loss"])) and z["margin"].dtype == np.float64


def test_e9_draws_trained_points_and_checks_them(quick_report):
    """E9 reads E6's and E7's trained constellations from the same output folder and checks C7 on them."""
    _, outcomes, _ = quick_report
    assert any("trained constellation of E6" in c for c in outcomes["e9"].checks)


def test_quick_report_judges_no_claim(quick_report):
    """At quick scale the report assembles every section and says 'not judged', never 'did not hold'."""
    _, outcomes, text = quick_report
    for o in outcomes.values():
        assert o.markdown in text
    assert text.count("## Synthetic experiments E1-E9") == 1
    assert "Claim did not hold" not in text and "| did not hold |" not in text
    assert "not judged" in text
    n = sum(1 for o in outcomes.values() for _, kind in o.checks.values() if kind == "consistency")
    assert f"{n} of {n} passed" in text


def test_claim_wording_follows_the_status():
    """One rule words a claim everywhere: held / did not hold / not shown at full scale, not judged at quick."""
    assert lab.verdict(True, False) == "held" and lab.verdict(False, False) == "did not hold"
    assert lab.verdict(None, False).startswith("not shown") and lab.verdict(False, True).startswith("not judged")
    assert lab.claim_text(True, False, "A", "B").startswith("**Claim held.** A")
    assert lab.claim_text(False, False, "A", "B").startswith("**Claim did not hold.** B")
    assert lab.claim_text(False, True, "A", "B") == "**Claim not judged at quick scale.** B"
    assert lab.claim_text(None, False, "A", "B", "C").endswith("C")


def test_compare_judges_against_seed_noise():
    """A mean 3 SE above the threshold holds, 3 SE below does not, within 2 SE is not shown."""
    x = np.array([1.0, 1.2, 0.8, 1.1, 0.9])
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert lab.compare(x, 1.0 - 3 * se).status is True
    assert lab.compare(x, 1.0 + 3 * se).status is False
    assert lab.compare(x, 1.0 + se).status is None
    assert lab.compare([0.5]).status is None
    with pytest.raises(ValueError, match="finite"):
        lab.compare([np.nan, 1.0])


def test_fmt_is_the_one_number_format():
    assert lab.fmt(0) == "0" and lab.fmt(0.28137) == "0.281" and lab.fmt(64.3) == "64.3"
    assert lab.fmt(1.5e-4) == "1.50e-04" and lab.fmt(0.7201, decimals=3) == "0.720"


def test_get_config_takes_the_scale_and_the_seed():
    """Configs are data: get_config(arg) with arg "quick" and/or "seed=N" (big_vision style); anything else is
    a clear error."""
    assert lab.parse_arg(None) == (False, 0) and lab.parse_arg("quick,seed=3") == (True, 3)
    assert lab.parse_arg("seed=12") == (False, 12)
    for bad in ("fast", "seed=-1", "seed=x", "quick=1", "quick,large", "large,large"):
        with pytest.raises(ValueError, match="'quick' / 'large' and 'seed=N'"):
            lab.parse_arg(bad)
    assert lab.parse_options("large,seed=2") == ("large", 2) and lab.parse_options("quick") == ("quick", 0)
    assert lab.parse_options(None) == ("full", 0)
    for name in REPORT:
        module = runner.load(name)
        full, quick = module.get_config(), module.get_config("quick,seed=5")
        assert full["quick"] is False and full["seed"] == 0 and quick["quick"] is True and quick["seed"] == 5
        with pytest.raises(ValueError, match="'quick'"):
            module.get_config("fast")
        with pytest.raises(ValueError, match="no 'large' scale"):    # only the SigLIP studies have one
            module.get_config("large")


def test_cli_runs_one_entry_and_refuses_bad_input(tmp_path, capsys):
    """`python -m experiments run e9 --quick` works; unknown names, a negative seed or an unwritable --out end
    with one error line and exit status 2, before any work."""
    assert runner.main(["run", "e9", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "e9" / "config.json").is_file()
    assert runner.main(["run", "e42", "--quick"]) == 2
    assert "unknown experiment 'e42'" in capsys.readouterr().err
    assert runner.main(["run", "e1", "--seed", "-1"]) == 2
    assert runner.main(["run", "e1", "--jobs", "0"]) == 2 and "--jobs" in capsys.readouterr().err
    assert runner.main(["run", "e1", "--quick", "--scale", "full"]) == 2 and "disagree" in capsys.readouterr().err
    assert runner.main(["run", "report", "--scale", "large"]) == 2 and "no 'large' scale" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert runner.main(["run", "e9", "--quick", "--out", str(blocker / "sub")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert runner.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{n}:" in listed for n in runner.ENTRIES) and "report (group, writes REPORT.md)" in listed


FAKE_ENTRY = '''
import json, os, time
from pathlib import Path
from experiments.lab import Outcome, parse_options

NAME, TITLE, DELAY = {name!r}, "fake entry {name}", {delay}


def get_config(arg=None):
    scale, seed = parse_options(arg)
    return {{"scale": scale, "seed": seed}}


def run(config, out_root, *, progress=False):
    t0 = time.time()
    time.sleep(DELAY)
    folder = Path(out_root) / NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ran.json").write_text(json.dumps({{"pid": os.getpid(), "start": t0, "end": time.time(),
                                                 "config": config}}))
    print("printed by", NAME)
    return Outcome(NAME, TITLE, f"markdown of {{NAME}}", {{"ok": (True, "consistency")}}, False, time.time() - t0)
'''


def test_parallel_entries_run_in_separate_processes_in_dependency_order(tmp_path, monkeypatch, capsys):
    """--jobs 2: entries run in separate processes, longest first, an entry of AFTER only once the entries it
    reads have finished, each one's printout whole, outcomes in the order asked; the same outcomes as one
    process (jobs=1)."""
    import os

    pkg = tmp_path / "fake_lab"
    pkg.mkdir()
    for name, delay in (("slow", 1.5), ("quick_one", 0.1), ("reader", 0.1)):
        (pkg / f"{name}.py").write_text(FAKE_ENTRY.format(name=name, delay=delay))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runner, "ENTRIES", {n: f"fake_lab.{n}" for n in ("slow", "quick_one", "reader")})
    monkeypatch.setattr(runner, "AFTER", {"reader": ("slow",)})
    monkeypatch.setattr(runner, "COST", {"slow": 100, "quick_one": 1, "reader": 50})
    out = tmp_path / "out"
    names = ["quick_one", "reader", "slow"]
    outcomes = runner.run_entries(names, out, seed=7, jobs=2, progress=False)
    assert [o.name for o in outcomes] == names and all(o.ok for o in outcomes)
    ran = {n: json.loads((out / n / "ran.json").read_text()) for n in names}
    assert all(r["config"] == {"scale": "full", "seed": 7} for r in ran.values())
    assert ran["reader"]["start"] >= ran["slow"]["end"]               # waited for what it reads
    assert ran["quick_one"]["start"] < ran["slow"]["end"]             # ran beside the slow one
    assert ran["slow"]["pid"] != ran["quick_one"]["pid"] != os.getpid()
    printed = capsys.readouterr().out
    assert printed.count("printed by") == 3 and "[runner] slow done" in printed
    assert (out / "slow" / "summary.md").read_text() == "markdown of slow"
    serial = runner.run_entries(names, tmp_path / "serial", seed=7, jobs=1, progress=False)
    assert [(o.name, o.markdown, o.checks) for o in serial] == [(o.name, o.markdown, o.checks) for o in outcomes]


def test_compare_states_its_power():
    """MDE = (Z + z_0.8) se and seeds for an effect = ceil(((Z + z_0.8) sd / effect)^2), on differences 1..5
    (mean 3, sd sqrt(2.5), se sqrt(0.5)); "not shown" carries the MDE wherever the verdict is printed."""
    c = lab.compare([1.0, 2.0, 3.0, 4.0, 5.0], threshold=2.5)
    z = 2.0 + 0.8416212335729143                       # the test's Z and the 80th percentile of N(0, 1)
    assert c.sd == pytest.approx(np.sqrt(2.5)) and c.mde == pytest.approx(z * np.sqrt(0.5), rel=1e-9)
    assert c.n_needed(1.0) == 21                      # (2.8416 * 1.5811)^2 = 20.19
    assert c.n_needed(2.0) == 6 and c.n_needed(100.0) == 2
    assert c.status is None and lab.verdict(c, False).startswith(
        f"not shown: the study could detect a difference of >= {z * np.sqrt(0.5):.3f} from its threshold +2.500")
    points = lab.compare([0.01, 0.012, 0.011], unit=" points", unit_scale=100)
    assert points.status is True and lab.verdict(points, False).startswith("held: +1.100 points ± 0.115 points (2 SE)")
    assert lab.verdict(points, True) == "not judged (quick scale)" and lab.status_of(points) is True
    assert "could detect" in lab.claim_text(c, False, "A", "B", "C") and lab.claim_text(c, False, "A", "B", "C").endswith("C")
    with pytest.raises(ValueError, match="effect"):
        c.n_needed(0.0)
    with pytest.raises(ValueError, match="single difference"):
        lab.compare([0.5]).n_needed(0.1)
