"""A Whisper model in the real faster-whisper (CTranslate2) format, tiny and with random weights.

`build(folder)` writes what a faster-whisper model folder on the hub holds: `model.bin` and
`config.json` (CTranslate2's own `WhisperSpec`, saved as its converter saves a converted
model), `vocabulary.txt` (one token a line, as the hub's models have it), `tokenizer.json` (a
byte-level BPE tokenizer with Whisper's special and timestamp tokens) and
`preprocessor_config.json` (80 mel bins). One layer each side, two heads, d_model 64: about
1 MB, loaded in milliseconds; the words it "hears" are noise, but every part of the path
(the loader, the mel features, the encoder, the decoder, the tokenizer) is the real one.

The session fixture `tiny_whisper` builds it once per session and gives its folder. `Hub` serves
it on 127.0.0.1 as Hugging Face serves a model (`/<repo>/resolve/main/<file>`, `model.bin` by a
redirect to a "CDN" carrying `X-Linked-Etag`/`X-Linked-Size`, the small files with a sha256
`ETag`), honours `Range: bytes=N-` (206), records every request, and fails on purpose when told
to: cut the connection part way through a file, advertise a wrong checksum, answer 404, ignore
Range. The fixture `model_hub` runs one for a test. A test module takes both fixtures in with an
assignment (`tiny_whisper = helpers.tiny_whisper.tiny_whisper`): an import would read as unused.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

D_MODEL = 64
FFN = 128
HEADS = 2
MELS = 80
ENCODER_POSITIONS = 1500      # 30 s of audio after the stride-2 convolution
DECODER_POSITIONS = 448       # faster-whisper's max_length
TIMESTAMPS = 1501             # <|0.00|> .. <|30.00|>
SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>")
FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json")
REPO = "Systran/faster-whisper-tiny"   # where the catalogue's "tiny" lives on the hub


def vocabulary() -> list[str]:
    """Every token by id: the 256 byte-level characters, the special tokens, the timestamps.
    Text tokens come before <|endoftext|>, as faster-whisper's decode expects."""
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)]
    return [*alphabet, *SPECIALS, *stamps]


def write_tokenizer(path: Path, tokens: list[str]) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    text = [t for t in tokens if not t.startswith("<|")]
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(text)}, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in tokens[len(text):]])
    assert [tokenizer.token_to_id(t) for t in tokens] == list(range(len(tokens)))
    tokenizer.save(str(path))


def _linear(rng: np.random.Generator, spec, rows: int, cols: int) -> None:
    spec.weight = rng.normal(0.0, 0.2, (rows, cols)).astype(np.float32)
    spec.bias = rng.normal(0.0, 0.02, rows).astype(np.float32)


def _norm(spec) -> None:
    spec.gamma = np.ones(D_MODEL, dtype=np.float32)
    spec.beta = np.zeros(D_MODEL, dtype=np.float32)


def _layer(rng: np.random.Generator, layer, cross: bool) -> None:
    """One transformer layer: self-attention (fused q/k/v), cross-attention, the FFN."""
    _norm(layer.self_attention.layer_norm)
    _linear(rng, layer.self_attention.linear[0], 3 * D_MODEL, D_MODEL)
    _linear(rng, layer.self_attention.linear[1], D_MODEL, D_MODEL)
    if cross:
        _norm(layer.attention.layer_norm)
        _linear(rng, layer.attention.linear[0], D_MODEL, D_MODEL)
        _linear(rng, layer.attention.linear[1], 2 * D_MODEL, D_MODEL)
        _linear(rng, layer.attention.linear[2], D_MODEL, D_MODEL)
    _norm(layer.ffn.layer_norm)
    _linear(rng, layer.ffn.linear_0, FFN, D_MODEL)
    _linear(rng, layer.ffn.linear_1, D_MODEL, FFN)


def model_spec(tokens: list[str], seed: int = 0):
    """A filled-in CTranslate2 WhisperSpec (1 encoder and 1 decoder layer) for `tokens`."""
    from ctranslate2.specs import whisper_spec

    rng = np.random.default_rng(seed)
    spec = whisper_spec.WhisperSpec(1, HEADS, 1, HEADS)
    enc, dec = spec.encoder, spec.decoder
    enc.conv1.weight = rng.normal(0.0, 0.2, (D_MODEL, MELS, 3)).astype(np.float32)
    enc.conv1.bias = np.zeros(D_MODEL, dtype=np.float32)
    enc.conv2.weight = rng.normal(0.0, 0.1, (D_MODEL, D_MODEL, 3)).astype(np.float32)
    enc.conv2.bias = np.zeros(D_MODEL, dtype=np.float32)
    enc.position_encodings.encodings = rng.normal(0.0, 0.1, (ENCODER_POSITIONS, D_MODEL)).astype(np.float32)
    _norm(enc.layer_norm)
    _layer(rng, enc.layer[0], cross=False)
    dec.embeddings.weight = rng.normal(0.0, 0.2, (len(tokens), D_MODEL)).astype(np.float32)
    dec.position_encodings.encodings = rng.normal(0.0, 0.1, (DECODER_POSITIONS, D_MODEL)).astype(np.float32)
    _norm(dec.layer_norm)
    _layer(rng, dec.layer[0], cross=True)
    dec.projection.weight = rng.normal(0.0, 0.2, (len(tokens), D_MODEL)).astype(np.float32)
    spec.register_vocabulary(tokens)
    config = spec.config
    config.suppress_ids = []
    config.suppress_ids_begin = [tokens.index("<|endoftext|>")]
    config.lang_ids = [tokens.index("<|en|>")]
    config.alignment_heads = [(0, h) for h in range(HEADS)]
    return spec


def build(folder: Path, seed: int = 0) -> Path:
    """Write the tiny model's files into `folder` (made if missing); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = vocabulary()
    spec = model_spec(tokens, seed)
    spec.validate()                 # as ctranslate2's Converter.convert does, then optimize, save
    spec.optimize(quantization="float32")
    spec.save(str(folder))
    (folder / "vocabulary.json").unlink()   # the hub's faster-whisper models carry vocabulary.txt
    (folder / "vocabulary.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    write_tokenizer(folder / "tokenizer.json", tokens)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "feature_size": MELS, "hop_length": 160, "chunk_length": 30, "n_fft": 400,
        "sampling_rate": 16000}), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a tiny random-weight Whisper model (see the module's docstring)."""
    return build(tmp_path_factory.mktemp("tiny-whisper") / "model")


# --- a model hub on loopback ------------------------------------------------------------


@dataclass
class Hit:
    """One request the hub answered."""

    method: str
    path: str
    range: str | None
    status: int
    sent: int          # body bytes written


@dataclass
class Hub:
    """A Hugging Face-like model hub on 127.0.0.1 serving `files` (name -> bytes) as `repo`.

    Faults, each for the named file: `drop_after[name] = n` sends the headers of the whole file,
    n bytes of it, then closes the connection (once); `wrong_sha` advertises a checksum that is
    not the file's; `missing` answers 404; `ignore_range` answers a Range request with the whole
    file (200); `delay` seconds pass between 64 KiB chunks. `cdn` is where LFS files are sent
    (default: this server).
    """

    files: dict[str, bytes]
    repo: str = REPO
    lfs: set[str] = field(default_factory=lambda: {"model.bin"})
    drop_after: dict[str, int] = field(default_factory=dict)
    wrong_sha: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    ignore_range: bool = False
    delay: float = 0.0
    cdn: str = ""
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Hub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def sha256(self, name: str) -> str:
        data = self.files[name] + (b"not this" if name in self.wrong_sha else b"")
        return hashlib.sha256(data).hexdigest()

    def gets(self, name: str) -> list[Hit]:
        """The GET requests that carried `name`'s bytes (the CDN's for an LFS file)."""
        return [h for h in self.hits if h.method == "GET" and h.path.endswith("/" + name)
                and h.status in (200, 206)]


def _handler(hub: Hub) -> type[http.server.BaseHTTPRequestHandler]:
    resolve = re.compile(rf"^/{re.escape(hub.repo)}/resolve/main/([^/]+)$")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            match = resolve.match(self.path)
            cdn = self.path.startswith("/cdn/") and self.path[5:] in hub.files
            name = match.group(1) if match else self.path[5:] if cdn else ""
            if name not in hub.files or name in hub.missing:
                return self._done(404, [], b"" if not body else b"Entry not found")
            sha = hub.sha256(name)
            if match and name in hub.lfs:   # Hugging Face: the checksum is on the redirect
                return self._done(302, [("Location", f"{hub.cdn}/cdn/{name}"), ("X-Linked-Etag", f'"{sha}"'),
                                        ("X-Linked-Size", str(len(hub.files[name]))),
                                        ("ETag", f'"{sha}"')], b"")
            etag = hashlib.md5(hub.files[name]).hexdigest() if cdn else sha  # a CDN's own ETag
            self._send(name, f'"{etag}"', body)

        def _send(self, name: str, etag: str, body: bool) -> None:
            data, start = hub.files[name], 0
            wanted = re.match(r"^bytes=(\d+)-$", self.headers.get("Range") or "")
            status = 200
            if wanted and not hub.ignore_range and int(wanted.group(1)) < len(data):
                start, status = int(wanted.group(1)), 206
            headers = [("ETag", etag), ("Content-Length", str(len(data) - start)),
                       ("Accept-Ranges", "bytes")]
            if status == 206:
                headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
            cut = hub.drop_after.pop(name, None) if body else None
            payload = data[start:] if body else b""
            self._done(status, headers, payload if cut is None else payload[:cut], cut is not None)

        def _done(self, status: int, headers: list, payload: bytes, drop: bool = False) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            if not any(k == "Content-Length" for k, _ in headers):
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            sent = 0
            for i in range(0, len(payload), 64 * 1024):
                if hub.delay:
                    time.sleep(hub.delay)
                self.wfile.write(payload[i:i + 64 * 1024])
                sent += len(payload[i:i + 64 * 1024])
            hub.hits.append(Hit(self.command, self.path, self.headers.get("Range"), status, sent))
            if drop:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

    return Handler


def model_files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


@pytest.fixture
def model_hub(tiny_whisper: Path):
    """A Hub serving the tiny model as "tiny" (Systran/faster-whisper-tiny), for one test."""
    hub = Hub(model_files(tiny_whisper)).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model cache of the test's own, and no hub unless the test names one."""
    from polyphone.speech import models

    monkeypatch.setenv("POLYPHONE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(models.HUB_ENV, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def hub(model_hub: Hub, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    """The test's own model cache, and `model_hub` as the place models are pulled from."""
    from polyphone.speech import models

    monkeypatch.setenv(models.HUB_ENV, model_hub.url)
    return model_hub
