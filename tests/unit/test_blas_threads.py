"""numpy's BLAS runs on the calling thread in Polyphone (app/polyphone/__init__.py): on a busy
machine a thread-pooled dot product of a few thousand samples stalled the call's event loop."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COUNT = "import os, numpy; print(len(os.listdir('/proc/self/task')))"


def threads_after(prelude: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", prelude + COUNT], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_importing_polyphone_first_keeps_blas_on_one_thread() -> None:
    assert (os.cpu_count() or 1) >= 2, "this check needs a machine with two cores or more"
    assert threads_after("") > 1                       # numpy alone starts a BLAS pool
    assert threads_after("import polyphone; ") == 1     # with Polyphone first: none


def test_a_value_the_person_set_wins() -> None:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="3")
    code = "import polyphone, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == "3"
