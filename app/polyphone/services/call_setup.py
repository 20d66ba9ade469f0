"""The pieces of placing a call before and after the engine runs: which profile and
variant, the secrets (read in a worker thread), where the recording goes, and the history
row at the end. `requests.RequestBuilder` and `phone.Phone` put them together; each failure
here is a `PrepError` carrying what the banner (or the command line) shows."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

from ..config import LOCAL_PROFILE, ConfigError, Profile, ProfileStore, Settings, builtin_profiles
from ..engine.call import CallResult
from ..engine.events import CallError, ErrorKind
from ..history import CallRecord
from . import errors
from .errors import AppError, PrepError
from .tokens import SESSION, TokenVault

Log = Callable[[str, str, str], None]   # (level, source, text)


def load_profile(store: ProfileStore, name: str) -> Profile:
    """The named profile, checked; the built-in demo agent even if the person deleted it."""
    try:
        profile = store.get(name)
    except ConfigError as exc:
        if name == LOCAL_PROFILE:
            return next(p for p in builtin_profiles() if p.is_local)
        raise PrepError(AppError(ErrorKind.CONFIG, str(exc), "Choose another agent or fix the "
                                 "profiles file.", hint=errors.EDIT_PROFILE)) from None
    problems = profile.validate()
    if problems:
        raise PrepError(AppError(ErrorKind.CONFIG, f"The profile “{name}” is not complete: "
                                 + " ".join(problems), "Open the profile and fix it.",
                                 hint=errors.EDIT_PROFILE))
    return profile


def variant_id(profile: Profile, variant_name: str, log: Log) -> str | None:
    """The variantId of a named variant; None (the profile's default) for "" or an unknown name."""
    if not variant_name:
        return None
    match = next((v for v in profile.variants if v.name == variant_name), None)
    if match is None:
        log("warning", "call", f"No variant named {variant_name!r}: calling the default.")
        return None
    return match.variant_id


def secrets_for(vault: TokenVault, profile: Profile, log: Log, *,
                prefer_environment: bool = False) -> tuple[str, dict[str, str | None]]:
    """The token and TURN credentials, read from the keyring now. Blocking: a worker thread."""
    found = vault.get(profile.name, prefer_environment=prefer_environment)
    if found.token is None and found.problem is not None:
        raise PrepError(AppError(ErrorKind.KEYRING, found.problem.message,
                                 (found.problem.action + " Or enter a token for this session only "
                                  "in the profile.").strip(), hint=errors.EDIT_TOKEN))
    if found.token is None:
        raise PrepError(AppError(ErrorKind.CONFIG, f"No token is stored for “{profile.name}”.",
                                 "Open the profile and paste the token from PolyAI Agent Studio.",
                                 hint=errors.EDIT_TOKEN))
    if found.where == SESSION:
        log("info", "call", "Using the session-only token (not saved).")
    creds = {e.urls[0]: vault.turn_credential(profile.name, e.urls[0])
             for e in profile.ice_servers if e.username and e.urls}
    return found.token, creds


def recording_path(settings: Settings, profile: str, started: float) -> tuple[Path | None, str]:
    """(where this call's recording goes, or None; a problem to tell the person, or "")."""
    if not settings.recording:
        return None, ""
    folder = settings.recordings_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, (f"Recording is off for this call: the folder {folder} cannot be created "
                      f"({exc.strerror}). Choose another in Settings.")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", profile).strip("-") or "call"
    return folder / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{slug}.wav", ""


def device_error(exc: Exception) -> PrepError | None:
    """A sound device failure (anything with `message`/`action`, e.g. DeviceError) in words."""
    message = getattr(exc, "message", None)
    if message is None:
        return None
    return PrepError(AppError(ErrorKind.DEVICE, message, getattr(exc, "action", ""),
                              hint=errors.CHOOSE_DEVICE))


def history_record(profile: str, variant: str, started: float, result: CallResult | None,
                   error: CallError | None, record_path: Path | None, turns: list[float],
                   redact: Callable[[str], str]) -> CallRecord:
    """One history row: ended (connected), failed (an error), or cancelled (neither)."""
    outcome = "failed" if error else ("ended" if result is not None and result.connected else "cancelled")
    return CallRecord(
        started_at=started, profile=profile, variant=variant, result=outcome,
        session_id=result.session_id if result else "", call_sid=result.call_sid if result else "",
        duration_s=result.duration_s if result else 0.0,
        error_code=(error.code or error.kind.value) if error else "",
        error_message=redact(error.message) if error else "",
        turn_latencies_ms=list(turns),
        recording_path=str(record_path) if record_path and record_path.exists() else "")
