"""Build the notebooks from their percent-format sources and execute them, keeping the outputs.

    python notebooks/build.py            # all notebooks, full mode (what is committed)
    python notebooks/build.py dimension  # one notebook
    CONSTELLATIONS_QUICK=1 python notebooks/build.py   # quick mode (what the tests run)

Sources live in ``notebooks/src/<name>.py``: cells start with ``# %%`` (code) or ``# %% [markdown]``
(markdown, each line prefixed by ``# ``). The .ipynb files are generated: edit the sources.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"


def parse_cells(text: str) -> list:
    cells = []
    for chunk in re.split(r"^# %%", text, flags=re.M)[1:]:
        head, _, body = chunk.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in head:
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines()]
            cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
        else:
            cells.append(nbformat.v4.new_code_cell(body))
    return cells


def notebook_from_source(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=parse_cells(path.read_text()))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def build(name: str) -> Path:
    from constellations import io

    nb = execute(notebook_from_source(SRC / f"{name}.py"), HERE)
    out = HERE / f"{name}.ipynb"
    io.write_text(out, nbformat.writes(nb))
    return out


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in SRC.glob("*.py"))
    for name in names:
        print(f"building {name} ...", flush=True)
        print(f"  wrote {build(name)}")
