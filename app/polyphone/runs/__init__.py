"""Scripted caller runs: a caller script played through the real engine and audio path,
with per-turn latency, a stereo recording and a report (JSON, HTML, a repro bundle)."""
