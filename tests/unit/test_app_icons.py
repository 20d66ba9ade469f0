"""The committed app icons are what build/make_icons.py makes, in the sizes each OS reads."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_script_reproduces_the_committed_files(tmp_path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, str(ROOT / "build" / "make_icons.py"), "--out", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(made) == 11
    for rel in made:
        assert (tmp_path / rel).read_bytes() == (ICONS / rel).read_bytes(), (
            f"resources/icons/{rel} differs from what build/make_icons.py makes: run it and commit")


def test_linux_hicolor_sizes() -> None:
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        data = (ICONS / "hicolor" / f"{size}x{size}" / "apps" / "polyphone.png").read_bytes()
        assert png_size(data) == (size, size)


def test_windows_ico_directory() -> None:
    data = (ICONS / "polyphone.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1) and count == 7
    sizes = []
    for i in range(count):
        w, h, _, _, planes, bits, length, offset = struct.unpack("<BBBBHHII", data[6 + 16 * i:22 + 16 * i])
        image = data[offset:offset + length]
        assert png_size(image) == ((w or 256), (h or 256)) and bits == 32 and planes == 1
        sizes.append(w or 256)
    assert sizes == [16, 24, 32, 48, 64, 128, 256]


def test_macos_icns_elements() -> None:
    data = (ICONS / "polyphone.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    found, pos = {}, 8
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        found[kind] = png_size(data[pos + 8:pos + length])[0]
        pos += length
    assert found[b"ic10"] == 1024 and found[b"ic09"] == 512 and found[b"icp4"] == 16
    assert len(found) == 11
