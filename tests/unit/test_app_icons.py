"""The committed app icons are what build/make_icons.py makes, in the sizes each OS reads."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ICONS = ROOT / "resources" / "icons"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def png_pixels(data: bytes) -> np.ndarray:
    """The RGBA pixels of a PNG as build/make_icons.py writes it (8-bit RGBA, filter 0 rows)."""
    width, height = png_size(data)
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * 4)
    assert not rows[:, 0].any(), "make_icons.py writes every row unfiltered"
    return rows[:, 1:].reshape(height, width, 4)


def embedded_pngs(data: bytes) -> list[tuple[bytes, bytes]]:
    """(entry, PNG) for each image in a .png, .ico or .icns, with the entry's container header."""
    if data[:4] == b"icns":
        out, pos = [], 8
        while pos < len(data):
            length = struct.unpack(">I", data[pos + 4:pos + 8])[0]
            out.append((data[pos:pos + 4], data[pos + 8:pos + length]))
            pos += length
        return out
    if data[:4] == b"\x00\x00\x01\x00":
        count = struct.unpack("<H", data[4:6])[0]
        entries = [data[6 + 16 * i:22 + 16 * i] for i in range(count)]
        return [(entry[:8], data[offset:offset + length])
                for entry in entries for length, offset in [struct.unpack("<II", entry[8:])]]
    return [(b"png", data)]


def test_the_script_reproduces_the_committed_files(tmp_path) -> None:
    """Same images, pixel for pixel within 2/255: a PNG's compressed bytes differ between zlib
    builds (and may between machines with the same Qt), so bytes are not compared."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, str(ROOT / "build" / "make_icons.py"), "--out", str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(made) == 11
    for rel in made:
        ours, theirs = embedded_pngs((tmp_path / rel).read_bytes()), embedded_pngs((ICONS / rel).read_bytes())
        hint = f"resources/icons/{rel} differs from what build/make_icons.py makes: run it and commit"
        assert [entry for entry, _ in ours] == [entry for entry, _ in theirs], hint
        for (entry, a), (_, b) in zip(ours, theirs):
            pa, pb = png_pixels(a), png_pixels(b)
            assert pa.shape == pb.shape, hint
            diff = np.abs(pa.astype(np.int16) - pb.astype(np.int16))
            assert diff.max() <= 2, f"{hint} ({entry!r}: {int((diff > 2).sum())} channels off by > 2)"


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
