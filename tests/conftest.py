"""Top-level test setup. Keep it tiny: fixtures live beside the tests using them."""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# `import helpers...` (shared test code under tests/) works whatever the
# import mode, and the package imports from app/ even without an install.
for path in (str(TESTS), str(ROOT / "app")):
    if path not in sys.path:
        sys.path.insert(0, path)

# Test services (sound server, keyring, Xvfb) will be session fixtures in
# tests/ modules, registered here through `pytest_plugins = [...]`.
