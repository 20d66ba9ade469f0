"""Load tests on Locust (`pip install 'polyphone[load]'`): `polyphone.load.CallerUser` places real
calls through the engine, one asyncio loop per Locust worker process (bridge.py, calls.py,
users.py); `polyphone load` (cli/load.py) starts Locust with it.

Importing `polyphone.load` does not import Locust (which monkey-patches the process it is
imported into); `CallerUser` does, on first use.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "CallerUser":
        from .users import CallerUser

        return CallerUser
    raise AttributeError(name)
