"""environment.yml and pyproject.toml list the same dependencies; the public names of api.md exist."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_agrees_with_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in meta["dependencies"]} | {_name(r) for r in meta["optional-dependencies"]["dev"]}
    conda, section = set(), None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\w", line):
            section = line.split(":")[0]
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if m and section == "dependencies":
            conda.add(_name(m.group(1)))
    conda -= {"python", "pip"}
    assert conda == wanted, f"only in environment.yml: {conda - wanted}; only in pyproject.toml: {wanted - conda}"


def test_core_public_names_exist():
    import constellations as cs

    for name in ("sigmoid_loss", "relative_bias_loss", "margin_and_relative_bias", "is_constellation"):
        assert callable(getattr(cs, name))
