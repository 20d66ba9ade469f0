"""Speech models on this computer: Whisper models for faster-whisper, fetched on first use.

A model lives in `models_dir()/<name>/` (the user's cache) with the files faster-whisper loads
and, written last, `polyphone-model.json`: each file's size and sha256 (a folder without it has
not finished downloading). `pull` fetches `{hub}/{repo}/resolve/main/{file}` over HTTPS into
`<file>.part` first, so an interrupted pull resumes (HTTP Range), checks each file against the
sha256 the hub gives (Hugging Face: `X-Linked-Etag`, on the redirect to its CDN) and records
its own. `resolve` also takes a folder the person names, for a computer without the hub.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import truststore

from .. import __version__, config
from ..errors import UserFacingError
from ..protocol.urls import is_loopback_host

DEFAULT_HUB = "https://huggingface.co"
HUB_ENV = "POLYPHONE_MODEL_HUB"
MANIFEST = "polyphone-model.json"
REQUIRED_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
OPTIONAL_FILES = ("preprocessor_config.json",)   # faster-whisper's defaults stand in for it
TIMEOUT_S, CHUNK = 30.0, 256 * 1024              # seconds to connect and for each read; bytes
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class KnownModel:
    name: str
    repo: str
    size_mb: int          # about how much it downloads, for the person choosing


CATALOGUE = {m.name: m for m in (
    KnownModel("tiny.en", "Systran/faster-whisper-tiny.en", 75),
    KnownModel("tiny", "Systran/faster-whisper-tiny", 75),
    KnownModel("base.en", "Systran/faster-whisper-base.en", 145),
    KnownModel("base", "Systran/faster-whisper-base", 145),
    KnownModel("small.en", "Systran/faster-whisper-small.en", 484),
    KnownModel("small", "Systran/faster-whisper-small", 484),
)}
DEFAULT_MODEL = "base.en"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    size_bytes: int
    complete: bool


class ModelError(UserFacingError):
    """A model that cannot be fetched, found or used (what happened, what to do)."""


class PullCancelled(ModelError):
    """The pull was cancelled; the part that arrived is kept and the next pull resumes it."""


def models_dir() -> Path:
    return config.cache_dir() / "models"


def _safe_url(url: str) -> bool:
    """https://, or http:// to this computer; no credentials in it."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname or "", parts.port
    except ValueError:
        return False
    return bool(host) and not (parts.username or parts.password) and (
        parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host)))


def hub_url() -> str:
    """Where models come from: POLYPHONE_MODEL_HUB, or Hugging Face. HTTPS, or plain HTTP only to
    this computer (a mirror or a test server on loopback)."""
    url = (os.environ.get(HUB_ENV) or DEFAULT_HUB).strip().rstrip("/")
    if not _safe_url(url):
        raise ModelError(f"The model hub address {url[:80]!r} cannot be used: it must be https://, "
                         "or http:// to this computer.", f"Fix or unset {HUB_ENV}.")
    return url


def offline_advice(name: str, hub: str | None = None) -> str:
    where = f"{hub or DEFAULT_HUB}/{CATALOGUE[name].repo}" if name in CATALOGUE else "the model's page"
    return (f"Pull it again when this computer is online (`polyphone models pull {name}`), or "
            f"download {', '.join(REQUIRED_FILES)} from {where} into a folder and name that "
            "folder instead of the model.")


def _installed_folder(name: str) -> Path:
    folder = models_dir() / name
    if not _NAME.match(name or "") or not folder.is_dir():
        raise ModelError(f"There is no model called {name[:80]!r} on this computer.",
                         "See what is installed with `polyphone models list`.")
    return folder


def _manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def _complete(folder: Path) -> bool:
    """The manifest is there and every file it lists has its size (cheap; verify() hashes)."""
    data = _manifest(folder)
    try:
        return data is not None and all((folder / f).stat().st_size == e["size"]
                                         for f, e in data["files"].items())
    except (OSError, KeyError, TypeError):
        return False


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def installed() -> list[ModelInfo]:
    """Every model folder in models_dir(), finished or not, by name."""
    root = models_dir()
    return [ModelInfo(p.name, p, _folder_size(p), _complete(p)) for p in sorted(root.iterdir())
            if p.is_dir() and _NAME.match(p.name)] if root.is_dir() else []


def remove(name: str) -> int:
    """Delete an installed model (finished or not); the bytes freed."""
    folder = _installed_folder(name)
    size = _folder_size(folder)
    shutil.rmtree(folder)
    return size


def _user_folder(text: str) -> Path:
    """A folder the person named, if it holds what faster-whisper loads."""
    folder = Path(text).expanduser()
    have = set(os.listdir(folder)) if folder.is_dir() else set()
    missing = [f for f in REQUIRED_FILES if f not in have and not (
        f == "vocabulary.txt" and "vocabulary.json" in have)]
    if missing:
        what = f"has no {', '.join(missing)}" if folder.is_dir() else "is not a folder"
        raise ModelError(f"The folder {folder} {what}: it does not hold a faster-whisper model.",
                         f"Put a CTranslate2 Whisper model's files there ({', '.join(REQUIRED_FILES)}, "
                         "as on huggingface.co/Systran), or pull one: `polyphone models pull NAME`.")
    return folder.resolve()


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The folder of a model: an installed model's name, or a folder holding a model."""
    text = str(name_or_path).strip()
    if _NAME.match(text) and not isinstance(name_or_path, os.PathLike):
        folder = models_dir() / text
        if _complete(folder):
            return folder
        if folder.is_dir():
            raise ModelError(f"The download of the speech model {text} has not finished.",
                             f"Run `polyphone models pull {text}` to finish it.")
        if text in CATALOGUE:
            raise ModelError(f"The speech model {text} is not on this computer yet.",
                             f"Run `polyphone models pull {text}` (about {CATALOGUE[text].size_mb} "
                             "MB), or name a folder that holds it.")
    if not text or (_NAME.match(text) and not Path(text).is_dir()):
        raise ModelError(f"There is no speech model called {text!r}.",
                         f"Use one of {', '.join(CATALOGUE)} (`polyphone models pull NAME`), or "
                         f"name a folder holding a faster-whisper model ({', '.join(REQUIRED_FILES)}).")
    return _user_folder(text)


def _sha256(path: Path):
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256")


def verify(name: str) -> list[str]:
    """What is wrong with an installed model, one sentence each (empty: every file is intact)."""
    folder = _installed_folder(name)
    data = _manifest(folder)
    if data is None:
        return [f"The download has not finished: run `polyphone models pull {name}` to finish it."]
    problems = []
    for file, entry in sorted(data["files"].items()):
        path = folder / file
        if not path.is_file():
            problems.append(f"{file} is missing.")
        elif path.stat().st_size != entry.get("size"):
            problems.append(f"{file} has {path.stat().st_size} bytes, not {entry.get('size')}.")
        elif _sha256(path).hexdigest() != entry.get("sha256"):
            problems.append(f"{file} is damaged (its sha256 differs from the download's).")
    return problems


class _Hops(urllib.request.HTTPRedirectHandler):
    """Follows redirects (the hub's to its CDN) only to https://, keeping each hop's headers."""

    headers: list = []   # set afresh for each request (_Fetch.open)

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not _safe_url(newurl):
            raise ModelError(f"The model hub sent the download to {newurl[:80]}, which is not "
                             "encrypted; it was refused.", f"Check {HUB_ENV}.")
        self.headers.append(headers)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and req.get_method() == "HEAD":   # urllib would make it a GET
            new.method = "HEAD"
        return new


class _Fetch:
    """One pull: where from (TLS against the OS's trust store, as engine/signaling.py; the
    system's proxy, none for loopback), where to, how far."""

    def __init__(self, name: str, folder: Path, progress: Callable[[int, int], None] | None,
                 cancel: threading.Event | None) -> None:
        self.name, self.folder, self.progress, self.cancel = name, folder, progress, cancel
        self.hub, self.hops = hub_url(), _Hops()
        self.done, self.total, self.shown = 0, 0, -1
        tls = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname, tls.verify_mode = True, ssl.CERT_REQUIRED
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        local = is_loopback_host(urlsplit(self.hub).hostname or "")
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({} if local else None),
                                                  self.hops, urllib.request.HTTPSHandler(context=tls))

    def url(self, file: str) -> str:
        return f"{self.hub}/{CATALOGUE[self.name].repo}/resolve/main/{file}"

    def open(self, file: str, method: str = "GET", start: int = 0):
        self.hops.headers = []
        request = urllib.request.Request(self.url(file), method=method,
                                         headers={"User-Agent": f"Polyphone/{__version__}"})
        if start:
            request.add_header("Range", f"bytes={start}-")
        return self.opener.open(request, timeout=TIMEOUT_S)

    def server_sha256(self, response) -> str | None:
        """The hub's sha256 of the file: X-Linked-Etag on any hop, else a 64-hex ETag."""
        for key, sources in (("X-Linked-Etag", [*self.hops.headers, response.headers]),
                             ("ETag", [response.headers])):
            for headers in sources:
                value = (headers.get(key) or "").strip().removeprefix("W/").strip('"').lower()
                if _SHA256.match(value):
                    return value
        return None

    def moved(self, count: int) -> None:
        self.done += count
        if self.progress is not None and self.done > self.shown:
            self.shown = self.done
            self.progress(min(self.done, self.total), self.total)
        if self.cancel is not None and self.cancel.is_set():
            raise PullCancelled(f"The download of {self.name} was stopped; what arrived is kept.",
                                f"Run `polyphone models pull {self.name}` to resume it.")


@contextlib.contextmanager
def _explained(job: _Fetch, file: str) -> Iterator[None]:
    """Network and disk failures as ModelError: what happened, what to do."""
    resume = f"Run `polyphone models pull {job.name}` again: it resumes where it stopped."
    try:
        yield
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise ModelError(f"The model hub does not know the model {job.name}: it has no {file} "
                             f"(HTTP 404 from {job.url(file)}).", "See `polyphone models list`.") from None
        raise ModelError(f"The model hub answered HTTP {exc.code} for {file} of {job.name}.",
                         f"Try again later. {offline_advice(job.name, job.hub)}") from None
    except urllib.error.URLError as exc:
        why = getattr(exc.reason, "strerror", None) or str(exc.reason)
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            why = "its certificate could not be verified"
        raise ModelError(f"Polyphone could not reach the model hub at {job.hub} ({why}).",
                         offline_advice(job.name, job.hub)) from None
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise ModelError(f"The download of {file} was interrupted ({str(exc) or type(exc).__name__}).",
                         resume) from None
    except OSError as exc:
        full = exc.errno == errno.ENOSPC
        raise ModelError(f"The disk is full: {file} could not be written to {job.folder}." if full
                         else f"{file} could not be written to {job.folder} ({exc.strerror or exc}).",
                         f"Free some space, then: {resume}" if full else
                         "Check that folder's permissions.") from None


def _head(job: _Fetch, file: str) -> int | None:
    """A file's size: X-Linked-Size on a hop (Hugging Face's redirect), else Content-Length."""
    headers: Any = {}
    try:
        with job.open(file, "HEAD") as response:
            headers = response.headers
    except urllib.error.HTTPError as exc:
        if exc.code == 404 or not job.hops.headers:   # else the hub answered; its CDN would not HEAD
            raise
    size = next((h["X-Linked-Size"] for h in job.hops.headers if h.get("X-Linked-Size")), None) \
        or headers.get("Content-Length")
    return int(size) if size and size.isdigit() else None


def _plan(job: _Fetch) -> list[tuple[str, int | None]]:
    """The files to fetch and their sizes (a HEAD each); an optional file the hub lacks is left out."""
    plan = []
    for file in (*REQUIRED_FILES, *OPTIONAL_FILES):
        try:
            with _explained(job, file):
                plan.append((file, _head(job, file)))
        except ModelError:
            if file not in OPTIONAL_FILES:
                raise
    return plan


def _receive(job: _Fetch, file: str, part: Path, start: int):
    """`file` into `part`, from byte `start` if the hub honours the range; the sha256 hasher of the
    whole file and the hub's sha256."""
    with job.open(file, start=start) as response:
        if start and not (response.status == 206 and (response.headers.get("Content-Range") or "")
                          .startswith(f"bytes {start}-")):
            job.moved(-start)           # the hub sent the whole file: it starts again
            start = 0
        hasher = _sha256(part) if start else hashlib.sha256()
        expected, received = response.headers.get("Content-Length"), 0
        with open(part, "ab" if start else "wb") as fh:
            for block in iter(lambda: response.read(CHUNK), b""):
                fh.write(block)
                hasher.update(block)
                received += len(block)
                job.moved(len(block))
        if expected and expected.isdigit() and received < int(expected):
            raise ConnectionError(f"{received + start} of {int(expected) + start} bytes arrived")
        return hasher, job.server_sha256(response)


def _fetch_file(job: _Fetch, file: str, size: int | None) -> dict:
    """One file in place (kept if already there whole); its manifest entry."""
    final, part = job.folder / file, job.folder / (file + ".part")
    if final.is_file() and size is not None and final.stat().st_size == size:
        job.moved(size)
        return {"size": size, "sha256": _sha256(final).hexdigest()}
    start = part.stat().st_size if part.is_file() else 0
    if size is not None and start >= size:   # more than the file, or all of it unchecked
        part.unlink()
        start = 0
    job.moved(start)
    with _explained(job, file):
        hasher, expected = _receive(job, file, part, start)
    digest = hasher.hexdigest()
    if expected and digest != expected:
        part.unlink(missing_ok=True)
        raise ModelError(f"{file} of {job.name} arrived damaged (its sha256 is not the hub's); it was "
                         "deleted.", f"Run `polyphone models pull {job.name}` again.")
    os.replace(part, final)
    return {"size": final.stat().st_size, "sha256": digest}


def pull(name: str, progress: Callable[[int, int], None] | None = None,
         cancel: threading.Event | None = None) -> Path:
    """Fetch a model of CATALOGUE into models_dir()/name (resuming a pull that stopped); its folder.

    `progress(done_bytes, total_bytes)` is called as bytes arrive (from this thread); setting
    `cancel` stops the pull with PullCancelled. Every failure is a ModelError.
    """
    if name not in CATALOGUE:
        raise ModelError(f"There is no speech model called {name!r} to download.",
                         f"Use one of {', '.join(CATALOGUE)}.")
    folder = models_dir() / name
    if _complete(folder):
        return folder
    job = _Fetch(name, folder, progress, cancel)
    plan = _plan(job)                     # before making the folder: the hub may be out of reach
    with _explained(job, MANIFEST):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
    job.total = sum(size or 0 for _, size in plan)
    files = {file: _fetch_file(job, file, size) for file, size in plan}
    manifest = {"format": 1, "name": name, "source": f"{job.hub}/{CATALOGUE[name].repo}", "files": files}
    config.atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return folder
