"""environment.yml and pyproject.toml list the same dependencies; the public names of api.md exist."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


#: conda-forge names that differ from the PyPI name.
CONDA_NAMES = {"pytorch": "torch"}


def _name(req: str) -> str:
    name = re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return CONDA_NAMES.get(name, name)


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


def test_package_stands_alone_without_the_checkout(tmp_path):
    """Issue 13: a copy of constellations/ alone (no repository around it) imports every module, runs
    `python -m constellations.synthetic`, and cannot see the lab (experiments/): the package never imports it."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "site"
    shutil.copytree(ROOT / "constellations", site / "constellations", ignore=shutil.ignore_patterns("__pycache__"))
    code = (
        "import importlib, pkgutil, sys\n"
        "import constellations\n"
        f"assert constellations.__file__.startswith({str(site)!r}), constellations.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(constellations.__path__, 'constellations.')"
        " if not m.name.endswith('__main__')]\n"
        "for n in names:\n"
        "    importlib.import_module(n)\n"
        "from constellations.synthetic import train_synthetic\n"
        "assert train_synthetic(6, 3, steps=5, progress=False).U.shape == (1, 6, 3)\n"
        "try:\n"
        "    import experiments\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('the lab is importable: ' + str(experiments.__path__))\n"
        "assert not [m for m in sys.modules if m == 'experiments' or m.startswith('experiments.')]\n"
        "print(' '.join(sorted(names)))\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "JAX_PLATFORMS": "cpu", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "constellations").rglob("*.py") if p.name != "__main__.py"} - {"constellations"}
    assert set(done.stdout.split()) == modules   # every module of the package was imported
    done = subprocess.run([sys.executable, "-m", "constellations.synthetic", "train", "6", "3", "--steps", "5",
                           "--out", str(tmp_path / "run"), "--no-progress"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "result.npz").is_file() and (tmp_path / "run" / "config.json").is_file()


def _python_files():
    for folder in ("constellations", "experiments", "tests", "notebooks"):
        yield from (ROOT / folder).rglob("*.py")


def test_no_sys_path_edits_in_the_repository():
    """Scripts run as modules from the repository root (python -m experiments....); nothing edits the path."""
    pattern = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend|remove)|\[|\+?=)")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in _python_files()
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found


def test_no_optimizer_update_under_experiments():
    """Training loops live in the package: the lab may take gradients of its losses, never apply updates."""
    pattern = re.compile(r"apply_updates|apply_gradients|optax\.(adam|adamw|sgd|lion|adafactor|chain)\(")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "experiments").rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found
