"""Build notebooks/pain.ipynb from notebooks/pain_cells.py (cells split at '# %%').

Usage: .venv/bin/python notebooks/make_pain.py
Check: .venv/bin/python -m pytest --nbmake notebooks/pain.ipynb
"""

import re
from pathlib import Path

import nbformat

HERE = Path(__file__).parent


def build() -> nbformat.NotebookNode:
    cells = []
    src = (HERE / "pain_cells.py").read_text()
    for chunk in re.split(r"^# %%", src, flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        body = body.strip("\n")
        if header.strip() == "[markdown]":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#")
                     for line in body.splitlines()]
            cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
        else:
            cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    return nb


if __name__ == "__main__":
    nbformat.write(build(), HERE / "pain.ipynb")
