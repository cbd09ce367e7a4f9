"""Importing the client never loads the evaluation package, nor it matplotlib.

(rich is not checked: ``import httpx`` itself loads it when it is installed, for httpx's
own command line.)
"""

from __future__ import annotations

import subprocess
import sys


def _loaded(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join({{m.split('.')[0] for m in sys.modules}}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_aisearch_loads_no_evaluation_code() -> None:
    loaded = _loaded("import aisearch")
    assert "aisearch" in loaded
    assert not loaded & {"aisearch_eval", "matplotlib"}


def test_import_aisearch_eval_loads_no_plotting_code() -> None:
    loaded = _loaded("import aisearch_eval, aisearch_eval.cli")
    assert "aisearch_eval" in loaded
    assert "matplotlib" not in loaded
