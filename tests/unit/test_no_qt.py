"""Nothing outside polyphone.gui needs Qt (DESIGN: dependencies point one way).

A fresh interpreter, with every Qt binding blocked, imports polyphone.protocol
and every module under polyphone.engine, polyphone.audio and polyphone.localgw,
found by walking the packages, so new modules are covered as they appear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in the child: block Qt, import the trees named in argv, report as JSON.
CHECK = textwrap.dedent('''
    import importlib, importlib.abc, json, pkgutil, sys, traceback

    BLOCKED = {"PySide6", "shiboken6", "PySide2", "shiboken2", "PyQt5", "PyQt6", "qasync"}

    class BlockQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: this module must not need Qt", name=name)
            return None

    sys.meta_path.insert(0, BlockQt())
    try:
        import PySide6  # noqa: F401
        raise SystemExit("the Qt blocker does not work")
    except ImportError:
        pass

    roots, skip = sys.argv[1].split(","), set(filter(None, sys.argv[2].split(",")))
    imported, failed = [], {}

    def load(name):
        try:
            module = importlib.import_module(name)
        except BaseException:
            failed[name] = traceback.format_exc(limit=-8)
            return None
        imported.append(name)
        return module

    def walk(name):
        if name in skip:
            return
        module = load(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", None) or [], name + "."):
            walk(info.name)

    for root in roots:
        walk(root)
    qt = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    print(json.dumps({"imported": imported, "failed": failed, "qt": qt}))
''')


def import_without_qt(roots: list[str], skip: list[str] = (), extra_path: Path | None = None) -> dict:
    paths = [str(ROOT / "app")] + ([str(extra_path)] if extra_path else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, ",".join(roots), ",".join(skip)],
        capture_output=True, text=True, timeout=180, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, f"checker failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def describe(failed: dict[str, str]) -> str:
    return "\n".join(f"--- {name}\n{tb}" for name, tb in failed.items())


def test_engine_audio_and_localgw_import_without_qt():
    roots = ["polyphone.protocol", "polyphone.engine", "polyphone.audio", "polyphone.localgw"]
    result = import_without_qt(roots)
    assert not result["failed"], "these modules need Qt or fail to import:\n" + describe(result["failed"])
    assert set(roots) <= set(result["imported"])
    assert result["qt"] == []


def test_nothing_outside_gui_imports_qt():
    # Everything but the GUI; __main__ is left out because importing it may run the CLI.
    result = import_without_qt(["polyphone"], skip=["polyphone.gui", "polyphone.__main__"])
    assert not result["failed"], "these modules need Qt or fail to import:\n" + describe(result["failed"])
    assert result["qt"] == []


def test_the_check_catches_a_module_that_imports_qt(tmp_path):
    pkg = tmp_path / "qtleak"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "fine.py").write_text("import json\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "widget.py").write_text("from PySide6 import QtCore\n")
    (pkg / "sub" / "loop.py").write_text("import qasync\n")
    result = import_without_qt(["qtleak"], extra_path=tmp_path)
    assert set(result["failed"]) == {"qtleak.sub.widget", "qtleak.sub.loop"}
    assert "blocked" in result["failed"]["qtleak.sub.widget"]
    assert {"qtleak", "qtleak.fine", "qtleak.sub"} <= set(result["imported"])
