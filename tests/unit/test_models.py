"""The model store (speech/models.py): pulling a Whisper model from a hub, resuming, checking,
resolving names and folders. The hub is helpers.tiny_whisper.Hub on 127.0.0.1, serving a real
(tiny, random) faster-whisper model; nothing here reaches the internet."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from pathlib import Path

import pytest

import helpers.tiny_whisper as tw
from polyphone.speech import models

tiny_whisper = tw.tiny_whisper   # the fixtures (see helpers/tiny_whisper.py)
model_hub = tw.model_hub
model_cache = tw.model_cache

cache = pytest.fixture(autouse=True, name="cache")(lambda model_cache: model_cache)   # each test: its own

hub = tw.hub


def test_a_pull_fetches_every_file_reports_progress_and_writes_the_manifest_last(
        hub: tw.Hub, tiny_whisper: Path) -> None:
    calls: list[tuple[int, int]] = []
    folder = models.pull("tiny", progress=lambda done, total: calls.append((done, total)))
    assert folder == models.models_dir() / "tiny"
    total = sum(len(d) for d in hub.files.values())
    assert calls and calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)        # monotone
    for name in tw.FILES:
        assert (folder / name).read_bytes() == (tiny_whisper / name).read_bytes()
    assert not list(folder.glob("*.part"))
    manifest = json.loads((folder / models.MANIFEST).read_text())
    assert manifest["files"]["model.bin"]["sha256"] == hub.sha256("model.bin")
    assert manifest["files"]["model.bin"]["size"] == len(hub.files["model.bin"])
    # The LFS file came through the redirect, its checksum on the hop.
    assert any(h.path == f"/{tw.REPO}/resolve/main/model.bin" and h.status == 302 for h in hub.hits)
    assert [m.name for m in models.installed()] == ["tiny"] and models.installed()[0].complete
    assert models.resolve("tiny") == folder
    assert models.verify("tiny") == []
    before = len(hub.hits)
    assert models.pull("tiny") == folder and len(hub.hits) == before   # already here: no request


def test_an_interrupted_pull_resumes_from_the_part_with_a_range_request(hub: tw.Hub) -> None:
    size = len(hub.files["model.bin"])
    half = size // 2
    hub.drop_after["model.bin"] = half
    with pytest.raises(models.ModelError, match="interrupted") as caught:
        models.pull("tiny")
    assert "polyphone models pull tiny" in caught.value.action
    folder = models.models_dir() / "tiny"
    assert (folder / "model.bin.part").stat().st_size == half
    assert not (folder / models.MANIFEST).exists()
    assert not models.installed()[0].complete
    calls: list[tuple[int, int]] = []
    models.pull("tiny", progress=lambda done, total: calls.append((done, total)))
    resumed = hub.gets("model.bin")[-1]
    assert resumed.range == f"bytes={half}-" and resumed.status == 206
    assert resumed.sent == size - half
    assert (len(hub.files["config.json"]) + half, calls[-1][1]) in calls   # the part counts as done
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and calls[-1][0] == calls[-1][1]
    assert models.verify("tiny") == []


def test_a_hub_that_ignores_the_range_starts_the_file_again(hub: tw.Hub) -> None:
    size = len(hub.files["model.bin"])
    hub.drop_after["model.bin"] = size // 3
    with pytest.raises(models.ModelError):
        models.pull("tiny")
    hub.ignore_range = True
    calls: list[int] = []
    models.pull("tiny", progress=lambda done, total: calls.append(done))
    again = hub.gets("model.bin")[-1]
    assert again.range == f"bytes={size // 3}-" and again.status == 200 and again.sent == size
    assert calls == sorted(calls)
    assert models.verify("tiny") == []


def test_a_checksum_mismatch_deletes_the_file_and_names_it(hub: tw.Hub) -> None:
    hub.wrong_sha.add("model.bin")
    with pytest.raises(models.ModelError, match="model.bin") as caught:
        models.pull("tiny")
    assert "deleted" in caught.value.message and "damaged" in caught.value.message
    folder = models.models_dir() / "tiny"
    assert not (folder / "model.bin").exists() and not (folder / "model.bin.part").exists()
    assert not (folder / models.MANIFEST).exists()


def test_a_small_file_with_a_wrong_etag_is_caught_too(hub: tw.Hub) -> None:
    hub.wrong_sha.add("tokenizer.json")
    with pytest.raises(models.ModelError, match="tokenizer.json"):
        models.pull("tiny")


def test_no_hub_is_explained_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(models.HUB_ENV, f"http://127.0.0.1:{port}")
    with pytest.raises(models.ModelError, match="could not reach the model hub") as caught:
        models.pull("tiny")
    assert "polyphone models pull tiny" in caught.value.action
    assert "into a folder" in caught.value.action and "model.bin" in caught.value.action
    assert not (models.models_dir() / "tiny").exists()


def test_a_model_the_hub_does_not_have_is_unknown(hub: tw.Hub) -> None:
    hub.missing.add("config.json")
    with pytest.raises(models.ModelError, match="404") as caught:
        models.pull("tiny")
    assert "does not know the model tiny" in caught.value.message


def test_an_optional_file_the_hub_lacks_is_fine(hub: tw.Hub) -> None:
    hub.missing.add("preprocessor_config.json")
    folder = models.pull("tiny")
    assert set(json.loads((folder / models.MANIFEST).read_text())["files"]) == set(models.REQUIRED_FILES)


def test_a_redirect_to_plain_http_elsewhere_is_refused(hub: tw.Hub) -> None:
    hub.cdn = "http://cdn.example.invalid"
    with pytest.raises(models.ModelError, match="not encrypted; it was refused"):
        models.pull("tiny")


def test_a_name_outside_the_catalogue_is_refused_before_any_request(hub: tw.Hub) -> None:
    with pytest.raises(models.ModelError, match="no speech model called 'huge'"):
        models.pull("huge")
    assert hub.hits == []


def test_cancelling_keeps_what_arrived(hub: tw.Hub) -> None:
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done > total // 2:
            cancel.set()
    with pytest.raises(models.PullCancelled):
        models.pull("tiny", progress=progress, cancel=cancel)
    assert (models.models_dir() / "tiny" / "model.bin.part").stat().st_size > 0
    models.pull("tiny")
    assert hub.gets("model.bin")[-1].status == 206


@pytest.mark.parametrize("url", ["http://example.com", "ftp://127.0.0.1", "https://user:pw@hub.example",
                                 "not a url"])
def test_the_hub_must_be_https_or_on_this_computer(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(models.HUB_ENV, url)
    with pytest.raises(models.ModelError, match="cannot be used"):
        models.hub_url()


def test_the_default_hub_and_a_loopback_override(monkeypatch: pytest.MonkeyPatch) -> None:
    assert models.hub_url() == "https://huggingface.co"
    monkeypatch.setenv(models.HUB_ENV, "http://localhost:8123/")
    assert models.hub_url() == "http://localhost:8123"


def test_resolving_a_model_that_is_not_here_says_how_to_pull_it() -> None:
    with pytest.raises(models.ModelError, match="not on this computer") as caught:
        models.resolve("base.en")
    assert "polyphone models pull base.en" in caught.value.action
    with pytest.raises(models.ModelError, match="no speech model called 'nonesuch'") as caught:
        models.resolve("nonesuch")
    assert "polyphone models pull" in caught.value.action and "folder" in caught.value.action


def test_a_folder_the_person_names_resolves(tiny_whisper: Path, tmp_path: Path) -> None:
    assert models.resolve(str(tiny_whisper)) == tiny_whisper.resolve()
    assert models.resolve(tiny_whisper) == tiny_whisper.resolve()
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(tiny_whisper / "config.json", partial)
    with pytest.raises(models.ModelError, match="model.bin, tokenizer.json, vocabulary.txt"):
        models.resolve(str(partial))
    with pytest.raises(models.ModelError, match="is not a folder"):
        models.resolve(str(tmp_path / "nowhere"))


def test_a_folder_without_manifest_is_incomplete(tiny_whisper: Path) -> None:
    folder = models.models_dir() / "tiny"
    shutil.copytree(tiny_whisper, folder)
    [info] = models.installed()
    assert info.name == "tiny" and not info.complete and info.size_bytes > 1_000_000
    with pytest.raises(models.ModelError, match="has not finished"):
        models.resolve("tiny")
    assert "polyphone models pull tiny" in models.verify("tiny")[0]


def test_remove(hub: tw.Hub) -> None:
    models.pull("tiny")
    freed = models.remove("tiny")
    assert freed >= sum(len(d) for d in hub.files.values())
    assert models.installed() == []
    with pytest.raises(models.ModelError, match="no model called 'tiny'"):
        models.remove("tiny")
    with pytest.raises(models.ModelError):
        models.remove("../cache")


def test_verify_catches_a_damaged_or_missing_file(hub: tw.Hub) -> None:
    folder = models.pull("tiny")
    blob = bytearray((folder / "model.bin").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (folder / "model.bin").write_bytes(bytes(blob))
    assert models.verify("tiny") == ["model.bin is damaged (its sha256 differs from the download's)."]
    (folder / "vocabulary.txt").unlink()
    assert "vocabulary.txt is missing." in models.verify("tiny")
    assert not models.installed()[0].complete   # a missing file: the cheap check sees it too
