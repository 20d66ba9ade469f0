"""A scripted run started from the window: the bridge's half of it (no widgets here).

The run goes to the selected profile and variant, the same way a call does (token from
the keyring, or the embedded demo gateway), with files instead of sound devices. Its
progress (runs.events) reaches the window as the bridge's `run_event` signal; a
problem before the call starts arrives as a `RunProblem`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .. import config
from ..runs.ab import slug
from ..runs.report import write_run
from ..runs.runner import ScriptRunner
from ..runs.script import ScriptError, load_script
from . import call_setup

if TYPE_CHECKING:
    from .bridge import EngineBridge


@dataclass(frozen=True)
class RunProblem:
    message: str
    action: str = ""


@dataclass(frozen=True)
class RunSaved:
    folder: str


async def run(bridge: EngineBridge, path: str, profile_name: str, variant_name: str) -> None:
    bridge.script_running = True
    bridge._set_busy(True)
    try:
        script = load_script(path)
        profile = call_setup.load_profile(bridge.profiles, profile_name)
        request = await bridge._request(profile, variant_name)
        if script.target.mode:  # the script says how it must be called (e.g. a demo agent, not echo)
            request = dataclasses.replace(request, mode=script.target.mode)
        out = config.data_dir() / "runs" / f"{datetime.now():%Y%m%d-%H%M%S}-{slug(script.path.stem)}"
        label = f"{profile_name}, {variant_name or 'default variant'}"
        bridge.script_runner = ScriptRunner(script, request, out_dir=out, listener=bridge.run_event.emit,
                                            label=label)
        result = await bridge.script_runner.run()
        write_run(result, token=request.token)
        bridge.run_event.emit(RunSaved(str(out)))
    except ScriptError as exc:
        bridge.run_event.emit(RunProblem(exc.message, exc.action))
    except call_setup.PrepError as exc:
        bridge.run_event.emit(RunProblem(exc.error.message, exc.error.action))
    except OSError as exc:
        bridge.run_event.emit(RunProblem(f"The run's report could not be written ({exc.strerror}).",
                                         "Check the free space in your data folder."))
    finally:
        bridge.script_runner = None
        bridge.script_running = False
        bridge._set_busy(False)
