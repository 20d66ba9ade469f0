"""The house rules the test command enforces: the layers (import-linter contracts in
pyproject.toml) and the sizes (no module under app/ over 400 lines, no function over 50).
The checkers are part of the `test` extra: a missing one is a failure, not a skip."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app" / "polyphone"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed: it comes with the `test` extra (build/setup.sh --test)"
    return found


def test_the_layers_hold() -> None:
    out = subprocess.run([tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_a_broken_layer_is_caught(tmp_path) -> None:
    """The contracts bite: a copy of the package where the engine imports the window fails."""
    shutil.copytree(APP, tmp_path / "polyphone", ignore=shutil.ignore_patterns("__pycache__"))
    bad = tmp_path / "polyphone" / "engine" / "bad_layer.py"
    bad.write_text("from ..services import phone  # noqa\n")
    config = tmp_path / "contracts.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    out = subprocess.run([tool("lint-imports"), "--no-cache", "--config", str(config)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0, out.stdout[-3000:]
    assert "polyphone.engine.bad_layer -> polyphone.services.phone" in out.stdout


def sizes(root: Path) -> tuple[list[str], list[str]]:
    modules, functions = [], []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root.parent).as_posix()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            modules.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    functions.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    return modules, functions


def test_no_module_over_400_lines_and_no_function_over_50() -> None:
    modules, functions = sizes(APP)
    assert not modules, "split these modules (≤ 400 lines):\n" + "\n".join(modules)
    assert not functions, "split these functions (≤ 50 lines):\n" + "\n".join(functions)


def test_the_size_check_sees_a_long_function(tmp_path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "long.py").write_text("def f():\n" + "    x = 1\n" * 60 + "\n" * 350)
    modules, functions = sizes(pkg)
    assert modules == ["pkg/long.py: 411 lines"] and functions == ["pkg/long.py:1 f: 61 lines"]
