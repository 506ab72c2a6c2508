"""Digest -> HTML and plain text with Jinja2 (templates/), styles inline for mail clients.

The bundled HTML template writes its styles inline already, so its digests skip the CSS inliner
(css_inline re-parsed and re-serialised every message: ~0.4 ms of a digest's ~3 ms). A template
of one's own (digest.templates) with a <style> block (or a stylesheet <link>, or an include) is
run through the inliner, as before: whether a template needs it is decided once per template.
A mailed digest's HTML is pure ASCII (non-ASCII as character references) where its template
allows it, so that mail/message.py can send it 7-bit, with no quoted-printable pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import importlib.resources
import re
import sys
import textwrap
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import jinja2
import jinja2.ext
import jinja2.runtime
from markupsafe import Markup, escape

from paperdigest.digest import Digest
from paperdigest.digest.views import PaperView, excerpt, paper_url, view
from paperdigest.errors import ConfigError
from paperdigest.paths import private_dir, state_dir
from paperdigest.web.links import MailLinks

if TYPE_CHECKING:
    import css_inline

TEXT_WIDTH = 72

__all__ = ["PaperView", "environment", "excerpt", "paper_url", "render_both", "render_html", "render_text", "subject"]


def _local(moment: dt.datetime, zone: str) -> dt.datetime:
    return moment.astimezone(ZoneInfo(zone))


def period_text(digest: Digest) -> str:
    zone = digest.subscriber.timezone
    start, end = _local(digest.window_start, zone), _local(digest.window_end, zone)
    if start.year == end.year:
        return f"{start:%b %-d, %H:%M} – {end:%b %-d, %Y, %H:%M} ({zone})"
    return f"{start:%b %-d, %Y, %H:%M} – {end:%b %-d, %Y, %H:%M} ({zone})"


def subject(digest: Digest) -> str:
    """'Paper digest — 12 new papers on agents, robotics (Nov 3)'."""
    count = len(digest.papers)
    noun = "paper" if count == 1 else "papers"
    topics = f" on {', '.join(digest.topics)}" if digest.topics else ""
    day = _local(digest.period, digest.subscriber.timezone)
    return f"Paper digest — {count} new {noun}{topics} ({day:%b %-d})"


@functools.lru_cache(maxsize=8192)
def _wrap(text: str, indent: int = 0, hanging: int | None = None, width: int = TEXT_WIDTH) -> str:
    """Fill to `width` columns; continuation lines are indented by `hanging` (default: `indent`)."""
    rest = " " * (indent if hanging is None else hanging)
    return textwrap.fill(
        text,
        width=width,
        initial_indent=" " * indent,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


@functools.lru_cache(maxsize=8)
def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment (cached: templates compile once per process)."""
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not template_dir.is_dir():
            raise ConfigError(f"digest.templates: {template_dir} is not a directory")
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(jinja2.FileSystemLoader(str(importlib.resources.files("paperdigest.templates"))))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        extensions=[Constants],
        autoescape=lambda name: name is not None and name.endswith((".html", ".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["wrap"] = _wrap
    env.filters["mark_style"] = mark_style
    env.filters["once"] = once  # a filter, not a global: Jinja calls a global through Context.call, at ~1 µs
    return env


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's own cache of compiled templates in a folder, that never fails a render: a file it
    cannot read (or one cut short) is compiled afresh, one it cannot write is not kept."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a damaged cache file: compiled afresh (and written again)
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The compiled templates kept under the state folder (cache/templates/), so that a `send`
    does not compile the two digest templates every run (~20 ms of CPU). Jinja keys each by the
    template's name and file and checks its source's SHA-1 on load: an edited template compiles
    afresh. What it does not check (the environment's options, the Constants extension, Jinja's
    release) names the folder: Jinja's and Python's versions and this module's own source. None
    (compiled each run, as before) when the folder cannot be made."""
    try:
        fingerprint = hashlib.sha1(Path(__file__).read_bytes(), usedforsecurity=False)
        fingerprint.update(f"|{jinja2.__version__}|{sys.version}".encode())
        folder = private_dir(state_dir() / "cache" / "templates" / fingerprint.hexdigest()[:16])
    except OSError:
        return None
    return _TemplateCache(str(folder))


_ONCE: dict[tuple[object, int, tuple[object, ...]], tuple[object, str]] = {}
ONCE_KEPT = 16384


def once(item: object, macro: jinja2.runtime.Macro, *args: object) -> str:
    """`{{ item | once(macro, *args) }}`: `macro(item, *args)`, rendered once and kept: what a
    template calls a macro through when its output depends on nothing but its arguments (a
    paper's block: its view, cached and shared by views.view, and its rank). Kept by the macro's
    compiled code (a template changed and reloaded is new code), `item` itself (held, so that
    its id names it) and the other arguments."""
    key = (getattr(macro, "_func").__code__, id(item), args)  # noqa: B009  Jinja's Macro keeps its function there
    found = _ONCE.get(key)
    if found is not None and found[0] is item:
        return found[1]
    out: str = macro(item, *args)
    if len(_ONCE) >= ONCE_KEPT:
        _ONCE.clear()
    _ONCE[key] = (item, out)
    return out


# `{% set s_NAME = "text" %}` on a line of its own; the text holds no quote, brace or backslash.
_CONSTANT = re.compile(r'^\{%-? set (s_\w+) = "([^"{}\\]*)" -?%\}$', re.MULTILINE)
_CONSTANT_USE = re.compile(r"\{\{-? (s_\w+) -?\}\}")


class Constants(jinja2.ext.Extension):
    """A `{% set s_NAME = "text" %}` (the bundled HTML template's styles) that is the name's only
    assignment: every `{{ s_NAME }}` is written as the text (escaped as the template escapes)
    when the template compiles, not looked up and escaped at each render (a digest's HTML
    writes some 250 styles). The template renders the same either way."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        found = _CONSTANT.findall(source)
        if not found:
            return source
        uses: dict[str, int] = {}
        for match in _CONSTANT_USE.finditer(source):
            uses[match[1]] = uses.get(match[1], 0) + 1
        autoescape = self.environment.autoescape
        escaped = autoescape(name) if callable(autoescape) else autoescape
        constants = {
            key: str(escape(value)) if escaped else value
            for key, value in found
            # assigned once, and named nowhere else than in {{ key }}
            if len(re.findall(rf"\b{key}\b", source)) == 1 + uses.get(key, 0)
        }
        return _CONSTANT_USE.sub(lambda m: constants.get(m[1], m[0]), source)


def mark_style(html: Markup, style: str) -> Markup:
    """The <mark>s of a summary (views.marked) with `style` inline: what a template without a
    <style> block writes `{{ p.summary_html | mark_style(...) }}` for. Its text is escaped, so
    every "<mark>" in it is one of marked()'s."""
    return Markup(str(html).replace("<mark>", f'<mark style="{escape(style)}">'))


# What makes a template's HTML need the CSS inliner: a <style> block it does not keep as it is
# (data-css-inline="keep": media queries), a stylesheet link, or a template it pulls in (which
# could hold either). Found in the template's source (its {# comments #} left out), once per
# template, by traits() below.
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_NEEDS_INLINER = re.compile(r"<style\b(?![^>]*data-css-inline\s*=\s*[\"']?keep)|<link\b", re.IGNORECASE)
_PULLS_IN = re.compile(r"\{%-?\s*(?:include|extends|import|from)\b")
# The elements whose text HTML does not decode character references in (raw text).
_RAW_TEXT = re.compile(
    r"<(script|style|xmp|iframe|noembed|noframes|noscript|plaintext)\b[^>]*>(.*?)(?:</\1|$)", re.IGNORECASE | re.DOTALL
)
# &#128;-&#159;: HTML reads these as windows-1252's characters, not as the C1 controls they number.
_C1_REFERENCE = re.compile(rb"&#1(?:2[89]|[3-5][0-9]);")


@dataclass(frozen=True, slots=True)
class _Traits:
    inline: bool  # its HTML goes through the CSS inliner
    references: bool  # its HTML may have non-ASCII written as character references


_TRAITS: weakref.WeakKeyDictionary[jinja2.Template, _Traits] = weakref.WeakKeyDictionary()


@functools.cache
def _inliner() -> css_inline.CSSInliner:
    import css_inline  # noqa: PLC0415  lazy: only a template with a <style> block needs it (~10-25 ms of imports)

    return css_inline.CSSInliner(keep_style_tags=False)


def traits(env: jinja2.Environment, template: jinja2.Template) -> _Traits:
    """What `template`'s HTML needs, from its source (cached by template: a template Jinja
    reloads is a new object, decided again). Non-ASCII may become character references unless a
    raw-text element (<style>, <script>...) of the source holds non-ASCII or a Jinja tag, where
    a reference would be read as itself; a template that pulls in others is asked neither."""
    known = _TRAITS.get(template)
    if known is None:
        if env.loader is None or template.name is None:
            known = _Traits(inline=True, references=False)
        else:
            source = _COMMENT.sub("", env.loader.get_source(env, template.name)[0])
            pulls_in = _PULLS_IN.search(source) is not None
            raw = [m.group(2) for m in _RAW_TEXT.finditer(source)]
            known = _Traits(
                inline=pulls_in or _NEEDS_INLINER.search(source) is not None,
                references=not pulls_in and all(t.isascii() and "{{" not in t and "{%" not in t for t in raw),
            )
        _TRAITS[template] = known
    return known


def ascii_html(html: str) -> str | None:
    """`html` with every non-ASCII character a character reference (C: str.encode), which a
    browser reads back as the same text; None when that would change it (a C1 control in it)."""
    if html.isascii():
        return html
    data = html.encode("ascii", "xmlcharrefreplace")
    return None if _C1_REFERENCE.search(data) else data.decode("ascii")


def _context(
    digest: Digest, links: MailLinks | None = None, unsubscribe_by_mail: str | None = None
) -> dict[str, object]:
    sections = [{"topic": section.topic, "papers": [view(p) for p in section.papers]} for section in digest.sections]
    rising = [
        {
            "title": r.paper.title,
            "url": paper_url(r.paper.title, r.paper.arxiv_id),
            "then": r.upvotes_then,
            "now": r.upvotes_now,
            "gain": r.upvotes_now - r.upvotes_then,
        }
        for r in digest.rising
    ]
    more_papers = [{"title": s.paper.title, "url": paper_url(s.paper.title, s.paper.arxiv_id)} for s in digest.more]
    return {
        "subject": subject(digest),
        "subscriber": digest.subscriber,
        "period": period_text(digest),
        "count": len(digest.papers),
        "candidates": digest.candidates,
        "matched": digest.matched,
        "more": max(digest.matched - len(digest.papers), 0),  # matched, but cut by max_papers
        "more_papers": more_papers,  # the first of those, best first
        "topics": digest.topics,
        "sections": sections,
        "rising": rising,
        "empty": digest.empty,
        "links": links,  # with [web]: view in the browser, feed, archive, unsubscribe
        "unsubscribe_by_mail": unsubscribe_by_mail,  # without: the address to write to
    }


def render_both(
    digest: Digest,
    env: jinja2.Environment | None = None,
    text: bool = True,
    html: bool = True,
    links: MailLinks | None = None,
    unsubscribe_by_mail: str | None = None,
    references: bool = False,
) -> tuple[str | None, str | None]:
    """Text and/or HTML from one context (the papers' views are built once). A mailed digest
    gets its links (`[web]`), or the address to write to to unsubscribe. With `references`, the
    HTML is made pure ASCII (non-ASCII as character references) where its template allows it,
    so that its message part can go out 7-bit, without quoted-printable (mail/message.py)."""
    env = env or environment()
    context = _context(digest, links, unsubscribe_by_mail)
    text_body = env.get_template("digest.txt.j2").render(context) if text else None
    html_body = None
    if html:
        template = env.get_template("digest.html.j2")
        html_body = template.render(context)
        known = traits(env, template)
        if known.inline:
            html_body = str(_inliner().inline(html_body))
        if references and known.references:
            html_body = ascii_html(html_body) or html_body
    return text_body, html_body


def render_text(digest: Digest, env: jinja2.Environment | None = None) -> str:
    return render_both(digest, env, html=False)[0] or ""


def render_html(digest: Digest, env: jinja2.Environment | None = None) -> str:
    return render_both(digest, env, text=False)[1] or ""
