"""Regenerate docs/digest.png, the README's picture of the HTML digest: `python -m tests.screenshot`.

It renders the sample digest (ada's, as tests/golden/digest/ada.html, from the bundled seeds with
the clock pinned; see tests/sample.py), and takes a headless Chromium screenshot of the whole page
600 px wide. The SHA-256 of the exact HTML shown is stored in the PNG (a tEXt chunk), so a test
can tell, without a browser, when the picture no longer matches what the code renders.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import struct
import sys
import tempfile
import zlib
from pathlib import Path

from tests.browser import INSTALL_HINT, find_chromium, run_chromium
from tests.sample import screenshot_html

ROOT = Path(__file__).resolve().parent.parent
PNG = ROOT / "docs" / "digest.png"
COMMAND = "python -m tests.screenshot"
HASH_KEY = b"paperdigest-html-sha256"
WIDTH = 600
SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Measures the page in a copy (the digest itself has no script); --dump-dom hands the DOM back.
MEASURE = '<script>document.body.setAttribute("data-height", document.documentElement.scrollHeight);</script>'


def html_sha256(page: str) -> str:
    return hashlib.sha256(page.encode("utf-8")).hexdigest()


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, in order."""
    if not png.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    chunks, at = [], len(SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        chunks.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_text(png: bytes, key: bytes = HASH_KEY) -> str | None:
    """The value of the tEXt chunk named `key`, or None."""
    for kind, data in _chunks(png):
        if kind == b"tEXt" and data.split(b"\0", 1)[0] == key:
            return data.split(b"\0", 1)[1].decode("latin-1")
    return None


def with_png_text(png: bytes, value: str, key: bytes = HASH_KEY) -> bytes:
    """`png` with one tEXt chunk `key` = `value` right after the header (replacing any older one)."""
    out = [SIGNATURE]
    for kind, data in _chunks(png):
        if kind == b"tEXt" and data.split(b"\0", 1)[0] == key:
            continue
        out.append(_chunk(kind, data))
        if kind == b"IHDR":
            out.append(_chunk(b"tEXt", key + b"\0" + value.encode("latin-1")))
    return b"".join(out)


def page_height(binary: Path, page: str, workdir: Path) -> int:
    copy = workdir / "measure.html"
    copy.write_text(page.replace("</body>", MEASURE + "</body>", 1), encoding="utf-8")
    dom = run_chromium(binary, copy, workdir / "profile-measure", "--dump-dom", width=WIDTH)
    found = re.search(r'data-height="(\d+)"', dom)
    if found is None:
        raise RuntimeError(f"could not measure the page height:\n{dom[:2000]}")
    return int(found.group(1))


def screenshot(out: Path) -> str:
    """Write the screenshot to `out`; returns the SHA-256 of the HTML it shows."""
    binary = find_chromium()
    if not isinstance(binary, Path):
        raise RuntimeError(f"Chromium not found: {binary}; {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="paperdigest-screenshot-") as tmp:
        workdir = Path(tmp)
        page = screenshot_html(workdir)
        html_file = workdir / "digest.html"
        html_file.write_text(page, encoding="utf-8")
        height = page_height(binary, page, workdir)
        shot = workdir / "digest.png"
        run_chromium(
            binary,
            html_file,
            workdir / "profile-shot",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            width=WIDTH,
            height=height,
        )
        digest = html_sha256(page)
        out.write_bytes(with_png_text(shot.read_bytes(), digest))
    return digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=PNG, help=f"where to write the PNG (default: {PNG})")
    args = parser.parse_args(argv)
    try:
        digest = screenshot(args.out)
    except RuntimeError as exc:
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} (HTML sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
