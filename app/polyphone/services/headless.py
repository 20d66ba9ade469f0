"""A call without the window: what it sends and records, and when it hangs up.

`polyphone call` (one call, or many at once through `load_run`) describes it as a `Plan`:
a WAV to send (or silence), a WAV to record the agent to, or real sound devices through the
audio pipeline; and when to hang up (after a duration, when the file has been sent and the
agent has had time to answer, or never: Ctrl+C or the agent). `run` places it; the front end
only prints. A file or device that cannot be used is a `MediaError` saying which and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio.files import SAMPLE_RATE, NullSink, PacedSource, SilenceSource, WavSink, WavSource, read_wav
from ..engine.call import Call, CallResult
from ..engine.events import AudioStats, CallState, Event, StateChanged, TurnLatency
from ..engine.request import CallRequest
from ..errors import UserFacingError

PLAY_TAIL_S = 2.0   # after the file has been sent (and no duration), wait this long for the reply


class MediaError(UserFacingError):
    """A file or sound device the plan names cannot be used (`device`: a sound device)."""

    def __init__(self, message: str, *, device: bool = False) -> None:
        super().__init__(message)
        self.device = device


@dataclass(frozen=True)
class Plan:
    play: str | None = None          # a WAV sent as the microphone; None: silence
    record: str | None = None        # the agent's audio to this WAV (with devices: the stereo call)
    duration: float | None = None    # hang up this long after connecting
    lead_s: float = 0.0              # silence before the file (let an agent finish its greeting)
    reply_s: float = 0.0             # after the file and PLAY_TAIL_S, wait this much more
    input: str | None = None         # sound devices (ids or names; "default") instead of files
    output: str | None = None
    processing: bool = True          # with devices: echo cancellation, noise suppression, gain
    captions: bool = False           # with devices: transcribe both sides live (services/captions.py)

    @property
    def devices(self) -> bool:
        return bool(self.input or self.output)


def file_media(plan: Plan, record: str | None = None) -> tuple[PacedSource, Any]:
    """The plan's file source and sink (`record` overrides the plan's, e.g. numbered per call)."""
    record = plan.record if record is None else record
    try:
        if not plan.play:
            source: PacedSource = SilenceSource()
        elif plan.lead_s:
            lead = np.zeros(int(plan.lead_s * SAMPLE_RATE), np.int16)
            source = PacedSource(np.concatenate([lead, read_wav(plan.play)]))
        else:
            source = WavSource(plan.play)
    except (OSError, ValueError, EOFError) as exc:
        raise MediaError(f"--play: cannot read {plan.play!r} as a 16-bit WAV ({exc})") from None
    try:
        sink = WavSink(record) if record else NullSink()
    except OSError as exc:
        raise MediaError(f"--record: cannot write {record!r} ({exc.strerror})") from None
    return source, sink


def _device_id(text: str | None, kind: str) -> str | None:
    from ..audio.devices import find_device

    if text is None or text == "default":
        return None
    device = find_device(text, kind)
    if device is None:
        raise MediaError(f"no {kind} device matches {text!r}; see `polyphone devices`")
    return device.id


async def device_media(plan: Plan, listener: Callable[[Any], None], stack: contextlib.AsyncExitStack):
    """Real microphone and speaker through the audio pipeline (processing, meters, recording)."""
    from ..audio.devices import DeviceError
    from ..audio.pipeline import AudioPipeline, AudioSettings

    if plan.play:
        raise MediaError("--play sends a file instead of the microphone; drop --input/--output")
    on = plan.processing
    try:
        settings = AudioSettings(
            input_device=_device_id(plan.input, "input"), output_device=_device_id(plan.output, "output"),
            echo_cancellation=on, noise_suppression=on, gain_control=on,
            record_path=Path(plan.record) if plan.record else None)
        pipeline = AudioPipeline(settings, listener)
        await pipeline.start()
    except DeviceError as exc:
        raise MediaError(str(exc), device=True) from None
    stack.push_async_callback(pipeline.stop)
    return pipeline.source, pipeline.sink


async def hang_up_when_due(call: Call, connected: asyncio.Event, source: Any, plan: Plan) -> None:
    await connected.wait()
    if plan.duration is not None:
        await asyncio.sleep(plan.duration)
    elif plan.play:
        while not source.finished:
            await asyncio.sleep(0.05)
        await asyncio.sleep(PLAY_TAIL_S + plan.reply_s)
    else:
        return  # until Ctrl+C or the agent hangs up
    await call.hangup()


async def run(request: CallRequest, plan: Plan, show: Callable[[Event], None],
              stack: contextlib.AsyncExitStack) -> tuple[CallResult, dict]:
    """One call to its end; SIGINT/SIGTERM hang up cleanly. Returns the result and the audio
    figures (`turn_latencies_ms`, the last `stats`)."""
    audio: dict = {"turn_latencies_ms": [], "stats": None}
    connected = asyncio.Event()
    connected_at: list[float] = []

    def listener(event: Event) -> None:
        if isinstance(event, StateChanged) and event.state is CallState.CONNECTED:
            connected_at.append(event.t)
            connected.set()
        elif isinstance(event, TurnLatency):
            audio["turn_latencies_ms"].append(round(event.latency_ms, 1))
        elif isinstance(event, AudioStats):
            audio["stats"] = {k: v for k, v in asdict(event).items() if k != "t"}
        show(event)

    source, sink = await device_media(plan, listener, stack) if plan.devices else file_media(plan)
    captions = await _captions(plan, source, sink, show, stack)
    call = Call(request, source, sink, listener)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(call.hangup()))
    ender = asyncio.ensure_future(hang_up_when_due(call, connected, source, plan))
    lags: list[float] = []
    sampler = asyncio.ensure_future(sample_loop_lag(lags))
    try:
        result = await call.run()
    finally:
        ender.cancel()
        sampler.cancel()
    ordered = sorted(lags)
    audio["loop_lag_ms"] = {"p99": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1),
                            "max": round(1000 * ordered[-1], 1)} if ordered else None
    if captions is not None:
        from ..speech.transcribe import transcript_rows

        t0 = connected_at[0] if connected_at else 0.0
        audio["transcript"] = transcript_rows(await captions.close(), t0)
    return result, audio


async def sample_loop_lag(lags: list[float], every: float = 0.02) -> None:
    """How late the loop wakes, every `every` s (default one audio frame), until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(every)
        lags.append(max(0.0, loop.time() - t - every))


async def _captions(plan: Plan, source: Any, sink: Any, show: Callable[[Any], None],
                    stack: contextlib.AsyncExitStack) -> Any:
    """Live captions of a call on sound devices (their frame hooks); None when not asked for."""
    if not plan.captions:
        return None
    if not plan.devices:
        raise MediaError("--captions transcribes a call on sound devices (--input/--output); "
                         "`polyphone run` transcribes scripted calls itself")
    from types import SimpleNamespace

    from .captions import LiveCaptions

    loop = asyncio.get_running_loop()
    captions = LiveCaptions(lambda e: loop.call_soon_threadsafe(show, e))
    await captions.start(SimpleNamespace(source=source, sink=sink))
    stack.push_async_callback(captions.close)
    return captions
