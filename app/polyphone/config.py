"""Profiles (agent targets) stored as TOML in the user's config directory.

No secret is ever stored here: tokens and TURN credentials live in the keyring
(`secrets.py`). Writes are atomic (temp file + rename), readable by the user
only, and a file that cannot be read is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import protocol
from .paths import private_dir
from .protocol.urls import UrlError, check_url

REGIONS = ("us-1", "uk-1", "euw-1")
LOCAL = "local"       # the embedded local gateway
CUSTOM = "custom"     # a URL of the user's own
LOCAL_PROFILE = "Local demo agent"
_NAME_RE = re.compile(r"^[^\x00-\x1f/\\]{1,64}$")


def region_url(region: str) -> str:
    return f"wss://webrtc-gateway.{region}.platform.polyai.app{protocol.SIGNAL_PATH}"


def config_dir() -> Path:
    override = os.environ.get("POLYPHONE_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir("polyphone"))


def data_dir() -> Path:
    override = os.environ.get("POLYPHONE_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir("polyphone"))


def cache_dir() -> Path:
    """Rendered caller lines and speech models: safe to delete, fetched or made again."""
    override = os.environ.get("POLYPHONE_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("polyphone"))


class ConfigError(Exception):
    pass


@dataclass
class Variant:
    name: str
    variant_id: str


@dataclass
class IceServerEntry:
    urls: list[str]
    username: str | None = None  # the credential lives in the keyring


@dataclass
class Profile:
    name: str
    region: str = "us-1"          # us-1 | uk-1 | euw-1 | custom | local
    url: str = ""                 # for region == custom
    mode: str = "end-to-end"
    account_id: str = ""
    project_id: str = ""
    variant_id: str = ""
    variants: list[Variant] = field(default_factory=list)
    artifact_version: str = ""
    lambda_deployment_version: str = ""
    caller: str = ""
    callee: str = ""
    call_sid: str = ""            # empty: a fresh UUID per call
    ice_servers: list[IceServerEntry] = field(default_factory=list)
    fetch_ice_servers: bool = True
    ca_file: str = ""

    @property
    def is_local(self) -> bool:
        return self.region == LOCAL

    def signal_url(self) -> str:
        if self.region == CUSTOM:
            return self.url
        if self.region in REGIONS:
            return region_url(self.region)
        raise ConfigError(f"profile {self.name!r}: the local gateway has no fixed URL")

    def validate(self) -> list[str]:
        """Problems a person can fix, one sentence each (empty when valid)."""
        problems = []
        if not _NAME_RE.match(self.name or ""):
            problems.append("The name must be 1–64 characters, without slashes.")
        if self.region not in (*REGIONS, CUSTOM, LOCAL):
            problems.append(f"Unknown region {self.region!r}: choose us-1, uk-1, euw-1 or custom.")
        if self.region == CUSTOM:
            try:
                check_url(self.url)
            except UrlError as exc:
                problems.append(exc.message)
        if self.mode not in {m.value for m in protocol.Mode}:
            problems.append(f"Unknown mode {self.mode!r}: choose end-to-end, traditional or echo.")
        for entry in self.ice_servers:
            if not entry.urls or not all(u.startswith(("stun:", "stuns:", "turn:", "turns:"))
                                         for u in entry.urls):
                problems.append("Each ICE server needs stun: or turn: URLs.")
        return problems


def builtin_profiles() -> list[Profile]:
    return [
        Profile(name=LOCAL_PROFILE, region=LOCAL, mode="end-to-end", fetch_ice_servers=False),
        Profile(name="PolyAI US", region="us-1"),
    ]


def _profile_from(raw: dict[str, Any]) -> Profile:
    known = {f.name for f in fields(Profile)}
    data = {k: v for k, v in raw.items() if k in known}
    data["variants"] = [Variant(**v) for v in raw.get("variants", [])]
    data["ice_servers"] = [IceServerEntry(**v) for v in raw.get("ice_servers", [])]
    return Profile(**data)


def _clean(obj: Any) -> Any:
    """TOML has no null: leave out None values."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


class ProfileStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "profiles.toml"

    def load(self) -> list[Profile]:
        if not self.path.exists():
            return builtin_profiles()
        try:
            raw = tomllib.loads(self.path.read_text(encoding="utf-8"))
            profiles = [_profile_from(p) for p in raw.get("profiles", [])]
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"The profiles file {self.path} could not be read ({type(exc).__name__}: "
                f"{str(exc)[:120]}). It was left as it is; fix or move it, then restart.") from None
        return profiles or builtin_profiles()

    def get(self, name: str) -> Profile:
        for p in self.load():
            if p.name == name:
                return p
        raise ConfigError(f"No profile named {name!r}.")

    def save(self, profiles: list[Profile]) -> None:
        text = tomli_w.dumps({"profiles": [_clean(asdict(p)) for p in profiles]})
        atomic_write(self.path, text)


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the user only, all or nothing."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- application settings -----------------------------------------------------------

THEMES = ("system", "light", "dark")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_VOLUME = 1.5
TRANSCRIBERS = ("pocketsphinx", "whisper")   # speech.transcribe.ENGINES (config is below speech)
WHISPER_MODEL = "base.en"                    # speech.models.DEFAULT_MODEL


@dataclass
class Settings:
    """The app's preferences (settings.toml beside profiles.toml). No secrets."""

    echo_cancellation: bool = True
    noise_suppression: bool = True
    gain_control: bool = True
    recording: bool = False
    recording_folder: str = ""    # empty: <data dir>/recordings
    log_level: str = "info"       # debug | info | warning | error
    theme: str = "system"         # system | light | dark
    input_device: str = ""        # a `Device.id`; empty: the system default
    output_device: str = ""
    volume: float = 1.0           # 0 .. MAX_VOLUME
    last_profile: str = ""        # the agent chosen when the app last closed
    last_variant: str = ""
    captions: bool = True         # live transcripts of both sides during a call
    transcriber: str = "pocketsphinx"   # the captions' recogniser: one of TRANSCRIBERS
    whisper_model: str = WHISPER_MODEL  # its model, for whisper: a model's name or a folder

    def recordings_dir(self) -> Path:
        return Path(self.recording_folder).expanduser() if self.recording_folder \
            else data_dir() / "recordings"

    def validate(self) -> list[str]:
        problems = []
        if self.theme not in THEMES:
            problems.append(f"Unknown theme {self.theme!r}: choose system, light or dark.")
        if self.log_level not in LOG_LEVELS:
            problems.append(f"Unknown log level {self.log_level!r}: choose debug, info, "
                            "warning or error.")
        if not 0.0 <= self.volume <= MAX_VOLUME:
            problems.append(f"The volume must be between 0 and {MAX_VOLUME:g}.")
        if self.recording_folder and not Path(self.recording_folder).expanduser().is_absolute():
            problems.append("The recording folder must be a full path.")
        if self.transcriber not in TRANSCRIBERS:
            problems.append(f"Unknown speech recogniser {self.transcriber!r}: choose pocketsphinx "
                            "or whisper.")
        return problems


def _settings_from(raw: dict[str, Any]) -> Settings:
    """Known keys of the right type; anything else falls back to its default."""
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in raw:
            continue
        value, default = raw[f.name], getattr(defaults, f.name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, type(default))
        if ok:
            values[f.name] = value
    settings = Settings(**values)
    if settings.theme not in THEMES:
        settings.theme = defaults.theme
    if settings.log_level not in LOG_LEVELS:
        settings.log_level = defaults.log_level
    if settings.transcriber not in TRANSCRIBERS:
        settings.transcriber = defaults.transcriber
    if not settings.whisper_model.strip():
        settings.whisper_model = defaults.whisper_model
    settings.volume = min(max(settings.volume, 0.0), MAX_VOLUME)
    return settings


class SettingsStore:
    """`load()` never overwrites a file it could not read; it raises ConfigError instead."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "settings.toml"

    def load(self) -> Settings:
        if not self.path.exists():
            return Settings()
        try:
            raw = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"The settings file {self.path} could not be read ({type(exc).__name__}: "
                f"{str(exc)[:120]}). Defaults are used and the file was left as it is; "
                "fix or move it, then restart.") from None
        return _settings_from(raw.get("settings", raw))

    def save(self, settings: Settings) -> None:
        problems = settings.validate()
        if problems:
            raise ConfigError(" ".join(problems))
        atomic_write(self.path, tomli_w.dumps({"settings": _clean(asdict(settings))}))
