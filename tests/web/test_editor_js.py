"""The editor's JavaScript unit tests (``editor/test/*.test.mjs``: the condition builder's
expression mapping and our bpmnlint rules), run with Node's test runner from the suite."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EDITOR = Path(__file__).resolve().parents[2] / "editor"


def test_editor_javascript_unit_tests():
    node = shutil.which("node")
    if node is None or not (EDITOR / "node_modules").is_dir():
        pytest.fail("Node and editor/node_modules are needed: run `make editor`")
    run = subprocess.run([node, "--test", "test/"], cwd=EDITOR, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout
