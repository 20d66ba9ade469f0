"""Top-level test setup. Keep it tiny: fixtures live beside the tests using them."""

import os
import sys
import tempfile
from pathlib import Path

# As app/polyphone/__init__.py does, before anything here loads numpy (a plugin may).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# `import helpers...` (shared test code under tests/) works whatever the
# import mode, and the package imports from app/ even without an install.
for path in (str(TESTS), str(ROOT / "app")):
    if path not in sys.path:
        sys.path.insert(0, path)

# Rendered caller lines and speech models go to a cache of this session, never the user's; child
# processes (the CLI under test) inherit it.
os.environ["POLYPHONE_CACHE_DIR"] = tempfile.mkdtemp(prefix="polyphone-test-cache-")

# Test services are session fixtures in tests/helpers, registered here; leak_scan fails the
# session if a test token turns up in anything the tests wrote; no_skips turns a skip into a
# failure under build/test.sh (POLYPHONE_NO_SKIPS=1).
pytest_plugins = ["helpers.sound_server", "helpers.keyring_daemon", "helpers.leak_scan", "helpers.no_skips"]
