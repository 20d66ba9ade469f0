"""Application settings on disk: defaults, round trip, tolerance of hand edits."""

from __future__ import annotations

import stat

import pytest

from polyphone.config import ConfigError, ProfileStore, Settings, SettingsStore


def test_defaults_when_there_is_no_file(tmp_path) -> None:
    s = SettingsStore(tmp_path / "settings.toml").load()
    assert s == Settings()
    assert s.echo_cancellation and s.noise_suppression and s.gain_control
    assert not s.recording and s.theme == "system" and s.log_level == "info" and s.volume == 1.0


def test_round_trip_is_private(tmp_path) -> None:
    store = SettingsStore(tmp_path / "cfg" / "settings.toml")
    s = Settings(echo_cancellation=False, recording=True, recording_folder=str(tmp_path / "rec"),
                 log_level="debug", theme="dark", input_device="pulse:input:vmic",
                 output_device="pulse:output:spk", volume=0.5, last_profile="A", last_variant="B",
                 transcriber="whisper", whisper_model="tiny.en")
    store.save(s)
    assert store.load() == s
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert s.recordings_dir() == tmp_path / "rec"


def test_it_sits_beside_profiles(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("POLYPHONE_CONFIG_DIR", str(tmp_path))
    assert SettingsStore().path.parent == ProfileStore().path.parent == tmp_path
    monkeypatch.setenv("POLYPHONE_DATA_DIR", str(tmp_path / "data"))
    assert Settings().recordings_dir() == tmp_path / "data" / "recordings"


def test_hand_edits_of_the_wrong_type_fall_back_to_defaults(tmp_path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[settings]\necho_cancellation = "yes"\ntheme = "purple"\nvolume = 9\n'
                    'log_level = "debug"\nunknown = 1\nnoise_suppression = false\n')
    s = SettingsStore(path).load()
    assert s.echo_cancellation is True and s.theme == "system" and s.volume == 1.5
    assert s.log_level == "debug" and s.noise_suppression is False


def test_a_bad_speech_choice_falls_back_and_keeps_the_rest(tmp_path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[settings]\ntranscriber = "vosk"\nwhisper_model = " "\ntheme = "dark"\n'
                    'captions = false\n')
    s = SettingsStore(path).load()
    assert s.transcriber == "pocketsphinx" and s.whisper_model == Settings().whisper_model == "base.en"
    assert s.theme == "dark" and s.captions is False
    path.write_text('[settings]\ntranscriber = "whisper"\nwhisper_model = 3\nvolume = 0.25\n')
    s = SettingsStore(path).load()
    assert s.transcriber == "whisper" and s.whisper_model == "base.en" and s.volume == 0.25
    path.write_text('[settings]\nwhisper_model = "/models/my-whisper"\n')   # a folder: kept
    assert SettingsStore(path).load().whisper_model == "/models/my-whisper"


def test_an_unreadable_file_is_reported_and_left_alone(tmp_path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("= not toml =")
    with pytest.raises(ConfigError, match="could not be read.*left as it is"):
        SettingsStore(path).load()
    assert path.read_text() == "= not toml ="


@pytest.mark.parametrize("bad, words", [
    (Settings(theme="neon"), "theme"), (Settings(log_level="loud"), "log level"),
    (Settings(volume=2.0), "volume"), (Settings(recording_folder="rel/path"), "full path"),
    (Settings(transcriber="vosk"), "speech recogniser"),
])
def test_invalid_settings_are_not_saved(tmp_path, bad, words) -> None:
    assert any(words in p for p in bad.validate())
    with pytest.raises(ConfigError):
        SettingsStore(tmp_path / "s.toml").save(bad)
    assert not (tmp_path / "s.toml").exists()
