"""Running the repository's tools as a user does: a subprocess from the repository root."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_tool(relative: str) -> ModuleType:
    """The script ``tools/RELATIVE`` (e.g. ``'train.py'``, ``'deploy/export_onnx.py'``)
    loaded as a module, to call its functions in-process (tools/ holds scripts, not a
    package)."""
    path = ROOT / 'tools' / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(*args: str, timeout: int = 300) -> str:
    """``python ARGS...`` from the repository root; asserts exit status 0 (the assertion
    shows the end of the output) and returns stdout + stderr."""
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output
