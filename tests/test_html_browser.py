"""The HTML digest opened in real headless Chromium (Debian package `chromium`, /usr/bin/chromium).

The digest itself carries no script, so the browser measures a test-only copy: a recorder for
alert() right after <head> and a measurement script before </body>, which writes what it saw as
JSON into a hidden <pre id="measure">; Chromium's --dump-dom hands the DOM back.

Headless Chromium clamps its window to at least 500 px wide, so the phone width (375 px) is
measured inside an <iframe srcdoc> of that width, which is a viewport of its own.

Only file:// pages; the flags keep Chromium off the network.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

from paperdigest import digest, render
from paperdigest.config import validate
from paperdigest.ingest import apply
from paperdigest.model import RawDump
from paperdigest.parse import parse_dump
from paperdigest.store.engine import open_engine
from tests.conftest import SEED_AS_OF, SEEDS

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 60
HOSTILE = '<script>alert(1)</script> & "quotes" agent'
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
WIDTHS = (600, 375)

RECORDER = (
    '<script data-measure="1">window.__alerts = [];'
    "window.alert = function (m) { window.__alerts.push(String(m)); };</script>"
)
MEASURE = """<script data-measure="1">
(function () {
  var root = document.documentElement;
  var visible = root.clientWidth;
  var overflowing = [];
  document.querySelectorAll("body *").forEach(function (el) {
    var right = el.getBoundingClientRect().right;
    if (right > visible + 0.5) {
      overflowing.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " right=" + right);
    }
  });
  var links = Array.prototype.map.call(document.querySelectorAll("a[href]"), function (a) {
    return {href: a.getAttribute("href"), protocol: a.protocol};
  });
  var hostile = Array.prototype.filter.call(document.querySelectorAll("a"), function (a) {
    return a.textContent === __HOSTILE__;
  }).map(function (a) { return a.childElementCount; });
  var out = {
    innerWidth: window.innerWidth,
    clientWidth: visible,
    scrollWidth: root.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    overflowing: overflowing.slice(0, 20),
    links: links,
    title: document.title,
    text: document.body.innerText,
    foreignScripts: document.querySelectorAll("script:not([data-measure])").length,
    alerts: window.__alerts,
    hostileAnchors: hostile
  };
  var pre = document.createElement("pre");
  pre.id = "measure";
  pre.hidden = true;
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
""".replace("__HOSTILE__", json.dumps(HOSTILE).replace("</", "<\\/"))  # no "</script>" inside a script

# A 600 px window holding a 375 px iframe; once everything has loaded, the frame's
# measurements are copied out, since --dump-dom returns the top document only.
PHONE_HOST = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>phone</title></head>
<body style="margin:0">
<iframe id="phone" width="{width}" height="900" style="border:0;display:block" srcdoc="{srcdoc}"></iframe>
<pre id="measure" hidden></pre>
<script>
window.addEventListener("load", function () {{
  var inner = document.getElementById("phone").contentDocument.getElementById("measure");
  document.getElementById("measure").textContent = inner ? inner.textContent : "";
}});
</script>
</body></html>
"""


def hostile_dump() -> bytes:
    """One listing in the full text layout (as seeds/004_*.txt) whose title is hostile markup."""
    return (
        f"new\n\nSubscribe\n\nDaily Papers\n\nNov 4\n\n{HOSTILE}\n\nAn agent that <b>injects</b> markup."
        "\n\n  • 3 authors\n·\nNov 1 5\n"
    ).encode()


def chromium(tmp: Path, page: Path, *extra: str, width: int = 600, height: int = 900) -> str:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} not found: the browser tests need Chromium; install it with "
        "`apt-get update && apt-get install -y chromium` (as root)"
    )
    profile = tmp / f"profile-{page.stem}-{width}"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        *extra,
        page.as_uri(),
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"chromium did not finish within {TIMEOUT} s: {' '.join(command)}") from exc
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def measurements(dom: str) -> dict[str, Any]:
    pre = BeautifulSoup(dom, "html.parser").find(id="measure")
    assert pre is not None and pre.get_text(), f"no measurements in the dumped DOM:\n{dom[:2000]}"
    result: dict[str, Any] = json.loads(pre.get_text())
    return result


@dataclass(frozen=True)
class Rendered:
    html: str
    subject: str
    titles: list[str]
    seen: dict[int, dict[str, Any]]  # viewport width -> what the browser measured


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    tmp = tmp_path_factory.mktemp("browser")
    engine = open_engine(f"sqlite:///{tmp / 'papers.db'}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAPERDIGEST_NOW", "2026-11-22T08:00:00+00:00")
        for name, as_of in sorted(SEED_AS_OF.items(), key=lambda item: item[1]):
            path = SEEDS / name
            apply(engine, parse_dump(RawDump(str(path), path.read_bytes(), None), dt.date.fromisoformat(as_of)))
        apply(engine, parse_dump(RawDump("hostile.txt", hostile_dump(), None), dt.date(2026, 11, 4)))
    settings = validate(
        {
            "topics": {"agents": {"keywords": ["agent", "GUI"]}},
            "subscribers": [{"email": "ada@example.org", "topics": ["agents"], "max_papers": 500}],
        },
        "test",
    )
    built = digest.build(engine, settings, settings.subscribers[0], NOW, since=dt.date(2020, 1, 1))
    engine.dispose()
    page = render.render_html(built)
    (tmp / "digest.html").write_text(page, encoding="utf-8")

    assert page.count("<head>") == 1 and page.count("</body>") == 1, "unexpected document shape"
    copy = page.replace("<head>", "<head>" + RECORDER).replace("</body>", MEASURE + "</body>")
    measure_page = tmp / "measure.html"
    measure_page.write_text(copy, encoding="utf-8")

    seen: dict[int, dict[str, Any]] = {}
    for width in WIDTHS:
        if width >= 500:
            target = measure_page
        else:
            target = tmp / f"phone-{width}.html"
            target.write_text(PHONE_HOST.format(width=width, srcdoc=html.escape(copy, quote=True)), encoding="utf-8")
        seen[width] = measurements(chromium(tmp, target, "--dump-dom", width=max(width, 600)))
    return Rendered(page, render.subject(built), [s.paper.title for s in built.papers], seen)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_horizontal_scrolling(rendered: Rendered, width: int) -> None:
    seen = rendered.seen[width]
    assert seen["innerWidth"] == width, f"the viewport is {seen['innerWidth']} px wide, not {width}"
    report = (
        f"at {width} px: scrollWidth={seen['scrollWidth']} clientWidth={seen['clientWidth']} "
        f"innerWidth={seen['innerWidth']}; overflowing: {seen['overflowing']}"
    )
    assert seen["scrollWidth"] <= seen["innerWidth"], report
    # Stricter: nothing reaches under the vertical scrollbar either.
    assert seen["scrollWidth"] <= seen["clientWidth"], report
    assert seen["overflowing"] == [], report


def test_every_link_is_absolute_in_the_browser(rendered: Rendered) -> None:
    links = rendered.seen[600]["links"]
    assert len(links) >= len(rendered.titles)
    relative = [link for link in links if not re.match(r"https?://", link["href"])]
    assert relative == []
    assert {link["protocol"] for link in links} <= {"http:", "https:"}


def test_every_link_is_absolute_in_the_markup(rendered: Rendered) -> None:
    anchors = BeautifulSoup(rendered.html, "html.parser").find_all("a", href=True)
    assert len(anchors) >= len(rendered.titles)
    relative = [a["href"] for a in anchors if not re.match(r"https?://", str(a["href"]))]
    assert relative == []


def test_no_script_and_no_event_handlers_in_the_markup(rendered: Rendered) -> None:
    soup = BeautifulSoup(rendered.html, "html.parser")
    assert soup.find("script") is None
    assert "<script" not in rendered.html.lower()
    handlers = [(tag.name, attr) for tag in soup.find_all(True) for attr in tag.attrs if attr.lower().startswith("on")]
    assert handlers == []


def test_a_hostile_title_is_literal_text_and_runs_nothing(rendered: Rendered) -> None:
    assert HOSTILE in rendered.titles, "the hostile paper should be in the digest"
    for width in WIDTHS:
        seen = rendered.seen[width]
        assert seen["alerts"] == [], f"at {width} px a script from the digest's content ran"
        assert seen["foreignScripts"] == 0, f"at {width} px a <script> element came out of the digest's content"
        assert seen["title"] == rendered.subject
        assert HOSTILE in seen["text"], f"at {width} px the title is not shown literally"
        assert seen["hostileAnchors"] == [0], "the title should be one link holding text only"
