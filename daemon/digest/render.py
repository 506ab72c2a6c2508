"""Digest -> HTML and plain text with Jinja2 (templates/), styles inline for mail clients.

The bundled HTML template writes its styles inline already, so its digests skip the CSS inliner
(css_inline re-parsed and re-serialised every message: ~0.4 ms of a digest's ~3 ms). A template
of one's own (digest.templates) with a <style> block (or a stylesheet <link>, or an include) is
run through the inliner, as before: whether a template needs it is decided once per template.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import re
import textwrap
import weakref
from pathlib import Path
from zoneinfo import ZoneInfo

import css_inline
import jinja2
from markupsafe import Markup, escape

from paperdigest.digest import Digest
from paperdigest.digest.views import PaperView, excerpt, paper_url, view
from paperdigest.errors import ConfigError
from paperdigest.web.links import MailLinks

TEXT_WIDTH = 72
_INLINER = css_inline.CSSInliner(keep_style_tags=False)

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
        autoescape=lambda name: name is not None and name.endswith((".html", ".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap
    env.filters["mark_style"] = mark_style
    return env


def mark_style(html: Markup, style: str) -> Markup:
    """The <mark>s of a summary (views.marked) with `style` inline: what a template without a
    <style> block writes `{{ p.summary_html | mark_style(...) }}` for. Its text is escaped, so
    every "<mark>" in it is one of marked()'s."""
    return Markup(str(html).replace("<mark>", f'<mark style="{escape(style)}">'))


# What makes a template's HTML need the CSS inliner: a <style> block it does not keep as it is
# (data-css-inline="keep": media queries), a stylesheet link, or a template it pulls in (which
# could hold either). Found in the template's source (its {# comments #} left out), once per template.
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_NEEDS_INLINER = re.compile(
    r"<style\b(?![^>]*data-css-inline\s*=\s*[\"']?keep)|<link\b|\{%-?\s*(?:include|extends|import|from)\b",
    re.IGNORECASE,
)
_INLINED: weakref.WeakKeyDictionary[jinja2.Template, bool] = weakref.WeakKeyDictionary()


def needs_inliner(env: jinja2.Environment, template: jinja2.Template) -> bool:
    """Whether `template`'s output must go through the CSS inliner (cached by template: a
    template Jinja reloads is a new object, decided again)."""
    known = _INLINED.get(template)
    if known is None:
        if env.loader is None or template.name is None:
            known = True
        else:
            source = env.loader.get_source(env, template.name)[0]
            known = _NEEDS_INLINER.search(_COMMENT.sub("", source)) is not None
        _INLINED[template] = known
    return known


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
) -> tuple[str | None, str | None]:
    """Text and/or HTML from one context (the papers' views are built once). A mailed digest
    gets its links (`[web]`), or the address to write to to unsubscribe."""
    env = env or environment()
    context = _context(digest, links, unsubscribe_by_mail)
    text_body = env.get_template("digest.txt.j2").render(context) if text else None
    html_body = None
    if html:
        template = env.get_template("digest.html.j2")
        html_body = template.render(context)
        if needs_inliner(env, template):
            html_body = str(_INLINER.inline(html_body))
    return text_body, html_body


def render_text(digest: Digest, env: jinja2.Environment | None = None) -> str:
    return render_both(digest, env, html=False)[0] or ""


def render_html(digest: Digest, env: jinja2.Environment | None = None) -> str:
    return render_both(digest, env, text=False)[1] or ""
