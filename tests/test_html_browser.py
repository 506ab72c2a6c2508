"""The HTML digest checked in its markup and opened in real headless Chromium.

The markup checks (absolute links, no script, the hostile title as literal text, the README's
screenshot up to date) need no browser and always run. The measurements in the browser need
Chromium (see tests/browser.py): without it they are skipped, saying how to install it, unless
PAPERDIGEST_REQUIRE_BROWSER=1 (as .ci/run sets) makes a missing browser a failure.

The digest itself carries no script, so the browser measures a test-only copy: a recorder for
alert() right after <head> and a measurement script before </body>, which writes what it saw as
JSON into a hidden <pre id="measure">; Chromium's --dump-dom hands the DOM back.

Headless Chromium clamps its window to at least 500 px wide, so the phone width (375 px) is
measured inside an <iframe srcdoc> of that width, which is a viewport of its own. Dark mode is
Chromium's --force-dark-mode (prefers-color-scheme: dark): the text must stay readable (contrast).

Two pages: the seeds' sample (a hostile title) and the API's (author names, AI summaries, the code
and paper links, marked keywords, the titles cut by max_papers, Rising; a hostile author name).
"""

from __future__ import annotations

import datetime as dt
import html
import inspect
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from markupsafe import escape

from paperdigest import digest
from paperdigest.digest import render
from tests import screenshot
from tests.browser import CHROMIUM_ENV, REQUIRE_ENV, chromium_or_skip, run_chromium
from tests.conftest import ROOT
from tests.sample import HOSTILE, HOSTILE_AUTHOR, NOW, api_digest, api_sample_store, sample_store, settings

WIDTHS = (600, 375)
DARK = "dark"  # 600 px, with prefers-color-scheme: dark
VIEWS: tuple[int | str, ...] = (*WIDTHS, DARK)
# The text the digest shows, by what it is: each must stand out from its background (WCAG AA: 4.5:1).
READ = ".title, .meta, .byline, .links a, .note, .why, .excerpt, mark, .label, h1, h2, .more a, .foot"

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
  function rgb(text) {
    var m = text.match(/[0-9.]+/g).map(Number);
    return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
  }
  function luminance(c) {
    var f = function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  function background(el) {
    for (var node = el; node && node.nodeType === 1; node = node.parentElement) {
      var c = rgb(getComputedStyle(node).backgroundColor);
      if (c.a > 0) { return c; }
    }
    return {r: 255, g: 255, b: 255, a: 1};
  }
  var contrast = [];
  document.querySelectorAll(__READ__).forEach(function (el) {
    var fg = luminance(rgb(getComputedStyle(el).color)), bg = luminance(background(el));
    var ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    contrast.push({what: el.tagName.toLowerCase() + (el.className ? "." + el.className : ""), ratio: ratio});
  });
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
    hostileAnchors: hostile,
    dark: window.matchMedia("(prefers-color-scheme: dark)").matches,
    mainBackground: getComputedStyle(document.querySelector(".main")).backgroundColor,
    contrast: contrast
  };
  var pre = document.createElement("pre");
  pre.id = "measure";
  pre.hidden = true;
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
""".replace("__HOSTILE__", json.dumps(HOSTILE).replace("</", "<\\/")).replace(  # no "</script>" in a script
    "__READ__", json.dumps(READ)
)

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


def measurements(dom: str) -> dict[str, Any]:
    pre = BeautifulSoup(dom, "html.parser").find(id="measure")
    assert pre is not None and pre.get_text(), f"no measurements in the dumped DOM:\n{dom[:2000]}"
    result: dict[str, Any] = json.loads(pre.get_text())
    return result


@dataclass(frozen=True)
class Page:
    html: str
    subject: str
    titles: list[str]
    folder: Path
    sample: str  # "seeds" (a hostile title) | "api" (a hostile author name)


@pytest.fixture(scope="module", params=["seeds", "api"])
def page(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Page:
    """seeds: ada's digest of every sample paper on agents, the hostile title among them; api: lin's
    digest of the API sample (tests/sample.py), as the README's picture shows it. No browser."""
    tmp = tmp_path_factory.mktemp(f"browser-{request.param}")
    # The page comes from a store on SQLite: that both engines give the same digest is the golden
    # test's (tests/test_digest.py), this module looks at the page in a browser.
    if request.param == "seeds":
        engine = sample_store(f"sqlite:///{tmp / 'papers.db'}")
        conf = settings()
        ada = conf.subscribers[0].model_copy(update={"max_papers": 500})
        built = digest.build(engine, conf, ada, NOW, since=dt.date(2020, 1, 1))
    else:
        engine = api_sample_store(tmp / "papers.db")
        built = api_digest(engine)
    engine.dispose()
    rendered = render.render_html(built)
    (tmp / "digest.html").write_text(rendered, encoding="utf-8")
    return Page(rendered, render.subject(built), [s.paper.title for s in built.papers], tmp, request.param)


@pytest.fixture(scope="module")
def seen(page: Page) -> dict[int | str, dict[str, Any]]:
    """Viewport width (or DARK) -> what Chromium measured in the page there."""
    binary = chromium_or_skip()
    assert page.html.count("<head>") == 1 and page.html.count("</body>") == 1, "unexpected document shape"
    copy = page.html.replace("<head>", "<head>" + RECORDER).replace("</body>", MEASURE + "</body>")
    measure_page = page.folder / "measure.html"
    measure_page.write_text(copy, encoding="utf-8")
    result: dict[int | str, dict[str, Any]] = {}
    for width in WIDTHS:
        if width >= 500:
            target = measure_page
        else:
            target = page.folder / f"phone-{width}.html"
            target.write_text(PHONE_HOST.format(width=width, srcdoc=html.escape(copy, quote=True)), encoding="utf-8")
        profile = page.folder / f"profile-{target.stem}"
        result[width] = measurements(run_chromium(binary, target, profile, "--dump-dom", width=max(width, 600)))
    dark = run_chromium(binary, measure_page, page.folder / "profile-dark", "--dump-dom", "--force-dark-mode")
    result[DARK] = measurements(dark)
    return result


# --- markup: no browser needed --------------------------------------------------------------


def test_every_link_is_absolute_in_the_markup(page: Page) -> None:
    anchors = BeautifulSoup(page.html, "html.parser").find_all("a", href=True)
    assert len(anchors) >= len(page.titles)
    relative = [a["href"] for a in anchors if not re.match(r"https?://", str(a["href"]))]
    assert relative == []


def test_no_script_and_no_event_handlers_in_the_markup(page: Page) -> None:
    soup = BeautifulSoup(page.html, "html.parser")
    assert soup.find("script") is None
    assert "<script" not in page.html.lower()
    handlers = [(tag.name, attr) for tag in soup.find_all(True) for attr in tag.attrs if attr.lower().startswith("on")]
    assert handlers == []


def test_a_hostile_title_is_literal_text_in_the_markup(page: Page) -> None:
    if page.sample == "api":
        assert "<img" not in page.html and HOSTILE_AUTHOR in BeautifulSoup(page.html, "html.parser").get_text()
        return
    assert HOSTILE in page.titles, "the hostile paper should be in the digest"
    assert str(escape(HOSTILE)) in page.html  # escaped as the template escapes it (markupsafe: " as &#34;)
    anchors = [a for a in BeautifulSoup(page.html, "html.parser").find_all("a") if a.get_text() == HOSTILE]
    assert len(anchors) == 1, "the title should be one link"
    assert anchors[0].find(True) is None, "the title's link should hold text only"


def test_the_readme_screenshot_shows_what_the_code_renders(tmp_path: Path) -> None:
    """docs/digest.png carries the SHA-256 of the HTML it was taken from; a template change makes it stale."""
    taken_from = screenshot.png_text(screenshot.PNG.read_bytes())
    assert taken_from is not None, f"{screenshot.PNG} has no HTML hash: regenerate it with `{screenshot.COMMAND}`"
    assert screenshot.html_sha256(screenshot.screenshot_html(tmp_path)) == taken_from, (
        f"{screenshot.PNG.relative_to(ROOT)} no longer shows what the code renders: regenerate it with "
        f"`{screenshot.COMMAND}` (from the repository root, with Chromium installed), look at it, commit it"
    )


# --- in Chromium ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_no_horizontal_scrolling(seen: dict[int | str, dict[str, Any]], width: int) -> None:
    at = seen[width]
    assert at["innerWidth"] == width, f"the viewport is {at['innerWidth']} px wide, not {width}"
    report = (
        f"at {width} px: scrollWidth={at['scrollWidth']} clientWidth={at['clientWidth']} "
        f"innerWidth={at['innerWidth']}; overflowing: {at['overflowing']}"
    )
    assert at["scrollWidth"] <= at["innerWidth"], report
    # Stricter: nothing reaches under the vertical scrollbar either.
    assert at["scrollWidth"] <= at["clientWidth"], report
    assert at["overflowing"] == [], report


def test_every_link_is_absolute_in_the_browser(page: Page, seen: dict[int | str, dict[str, Any]]) -> None:
    links = seen[600]["links"]
    assert len(links) >= len(page.titles)
    relative = [link for link in links if not re.match(r"https?://", link["href"])]
    assert relative == []
    assert {link["protocol"] for link in links} <= {"http:", "https:"}


def test_a_hostile_title_is_literal_text_and_runs_nothing_in_the_browser(
    page: Page, seen: dict[int | str, dict[str, Any]]
) -> None:
    hostile = HOSTILE if page.sample == "seeds" else HOSTILE_AUTHOR
    for width in VIEWS:
        at = seen[width]
        assert at["alerts"] == [], f"at {width} px a script from the digest's content ran"
        assert at["foreignScripts"] == 0, f"at {width} px a <script> element came out of the digest's content"
        assert at["title"] == page.subject
        assert hostile in at["text"], f"at {width} px the hostile text is not shown literally"
        if page.sample == "seeds":
            assert at["hostileAnchors"] == [0], "the title should be one link holding text only"


@pytest.mark.parametrize("view", [600, DARK])
def test_every_text_stands_out_from_its_background(seen: dict[int | str, dict[str, Any]], view: int | str) -> None:
    """Light and dark (prefers-color-scheme: dark, as mail clients in dark mode ask for it): the
    titles, names, links, marks and summaries keep a contrast of at least 4.5:1 (WCAG AA)."""
    at = seen[view]
    assert at["dark"] is (view == DARK)
    if view == DARK:
        assert at["mainBackground"] == "rgb(39, 39, 42)", "the dark style block did not apply"
    assert len(at["contrast"]) > 20
    poor = [c for c in at["contrast"] if c["ratio"] < 4.5]
    assert poor == [], f"{view}: too little contrast: {poor[:10]}"


# --- without Chromium -----------------------------------------------------------------------


OUTCOMES = {"skipped": "skipped", "failure": "failed", "error": "error"}


def run_this_module_without_chromium(folder: Path, *, require: bool) -> tuple[int, str, dict[str, tuple[str, str]]]:
    """This module in a child pytest whose Chromium does not exist; returns its exit code, its
    output and, per test, its outcome (passed, skipped, failed, error) and message."""
    folder.mkdir()
    env = {key: value for key, value in os.environ.items() if key != REQUIRE_ENV}  # CI sets it outside
    env[CHROMIUM_ENV] = str(folder / "no-such-chromium")
    if require:
        env[REQUIRE_ENV] = "1"
    report = folder / "report.xml"
    this = Path(__file__).relative_to(ROOT).as_posix()
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", this,
            f"--deselect={this}::test_without_chromium_the_browser_tests_skip_unless_required",
            f"--deselect={this}::test_the_readme_screenshot_shows_what_the_code_renders",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        marks = [child for child in case if child.tag in OUTCOMES]
        outcome = (OUTCOMES[marks[0].tag], marks[0].get("message", "")) if marks else ("passed", "")
        outcomes[case.attrib["name"]] = outcome
    return proc.returncode, proc.stdout + proc.stderr, outcomes


@pytest.mark.slow
def test_without_chromium_the_browser_tests_skip_unless_required(tmp_path: Path) -> None:
    needs_browser = {
        name
        for name, function in inspect.getmembers(sys.modules[__name__], inspect.isfunction)
        if name.startswith("test_") and "seen" in inspect.signature(function).parameters
    }
    code, output, outcomes = run_this_module_without_chromium(tmp_path / "lenient", require=False)
    assert code == 0, output[-3000:]
    skipped = {name for name, (outcome, _) in outcomes.items() if outcome == "skipped"}
    assert {name.split("[")[0] for name in skipped} == needs_browser, output[-3000:]
    assert all("apt-get install -y chromium" in outcomes[name][1] for name in skipped), outcomes
    passed = {name for name, (outcome, _) in outcomes.items() if outcome == "passed"}
    assert passed and passed | skipped == set(outcomes), outcomes  # the markup checks ran and passed

    code, output, outcomes = run_this_module_without_chromium(tmp_path / "strict", require=True)
    assert code != 0, output[-3000:]
    assert "Chromium not found" in output and "apt-get install -y chromium" in output
    assert {name for name, (outcome, _) in outcomes.items() if outcome in ("failed", "error")} == skipped
    assert {name for name, (outcome, _) in outcomes.items() if outcome == "passed"} == passed
