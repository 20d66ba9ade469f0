"""Scripted runs started from the window (no widgets here).

A run goes to the selected profile and variant the same way a call does (`Phone.requests`:
token from the keyring, or the embedded demo gateway), with files instead of sound devices,
and holds the phone's `busy` flag so that a run and a call never overlap. Its progress
(runs.events) and a problem before the call starts (`RunProblem`) or the folder it was saved
to (`RunSaved`) reach the phone's listener as `app_events.RunProgress`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import config
from ..runs.ab import slug
from ..runs.report import write_run
from ..runs.runner import ScriptRunner
from ..runs.script import ScriptError, load_script
from .app_events import RunProgress
from .errors import PrepError
from .phone import Phone
from .requests import Target


@dataclass(frozen=True)
class RunProblem:
    message: str
    action: str = ""


@dataclass(frozen=True)
class RunSaved:
    folder: str


class ScriptRuns:
    def __init__(self, phone: Phone, emit: Any) -> None:
        self.phone = phone
        self._emit = emit        # the phone's listener
        self.runner: ScriptRunner | None = None
        self.running = False     # a run holds the phone (from its start to its report)

    def _say(self, event: Any) -> None:
        self._emit(RunProgress(event))

    async def run(self, path: str, profile_name: str, variant_name: str = "") -> None:
        if not self.phone.claim(asyncio.current_task()):
            self._say(RunProblem("A call is running.", "Hang up, then run the script."))
            return
        self.running = True
        self.phone.set_busy(True)
        try:
            await self._run(path, profile_name, variant_name)
        except ScriptError as exc:
            self._say(RunProblem(exc.message, exc.action))
        except PrepError as exc:
            self._say(RunProblem(exc.error.message, exc.error.action))
        except OSError as exc:
            self._say(RunProblem(f"The run's report could not be written ({exc.strerror}).",
                                 "Check the free space in your data folder."))
        finally:
            self.runner, self.running = None, False
            self.phone.set_busy(False)

    async def _run(self, path: str, profile_name: str, variant_name: str) -> None:
        script = load_script(path)
        request = await self.phone.requests.build(
            Target(profile_name, variant_name=variant_name, mode=script.target.mode or None,
                   timeouts=self.phone.timeouts))
        out = config.data_dir() / "runs" / f"{datetime.now():%Y%m%d-%H%M%S}-{slug(script.path.stem)}"
        label = f"{profile_name}, {variant_name or 'default variant'}"
        captions = self.phone.captions          # the recogniser chosen in Settings
        self.runner = ScriptRunner(script, request, out_dir=out, listener=self._say, label=label,
                                   recognizer=(captions.engine, captions.model))
        result = await self.runner.run()
        write_run(result, token=request.token)
        self._say(RunSaved(str(out)))

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()

