"""The web side's pages (Jinja2, autoescaped: every value from a listing or a subscriber is text),
and the upvote sparkline drawn as an SVG."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2
from markupsafe import Markup

_LAYOUT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{ title }}</title>
<style>
body { margin: 0; font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; background: #f4f4f5;
       color: #18181b; }
main { max-width: 640px; margin: 0 auto; padding: 24px 16px; background: #fff; min-height: 100vh;
       box-sizing: border-box; }
h1 { font-size: 22px; line-height: 1.3; overflow-wrap: anywhere; }
p, li { line-height: 1.5; overflow-wrap: anywhere; }
a { color: #1d4ed8; }
.meta { color: #52525b; font-size: 14px; }
button { font-size: 16px; padding: 8px 16px; }
svg { max-width: 100%; height: auto; }
@media (prefers-color-scheme: dark) {
  body { background: #18181b; color: #e4e4e7; } main { background: #27272a; } a { color: #93c5fd; }
  .meta { color: #a1a1aa; }
}
</style></head>
<body><main>{% block body %}{% endblock %}</main></body></html>
"""

_PAGES = {
    "layout.html": _LAYOUT,
    "home.html": """{% extends "layout.html" %}{% block body %}
<h1>Paper Digest</h1>
<p>This site serves the digests it mails: the links in each mail lead here.</p>
{% endblock %}""",
    "message.html": """{% extends "layout.html" %}{% block body %}
<h1>{{ title }}</h1>
<p>{{ text }}</p>
{% endblock %}""",
    "unsubscribe.html": """{% extends "layout.html" %}{% block body %}
<h1>Unsubscribe</h1>
<p>Stop the paper digests to <strong>{{ email }}</strong>?</p>
<form method="post" action="{{ action }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>
{% endblock %}""",
    "subscriber.html": """{% extends "layout.html" %}{% block body %}
<h1>Your digests</h1>
<p class="meta">Sent to {{ email }} · <a href="{{ feed }}">Atom feed</a>
 · <a href="{{ unsubscribe }}">Unsubscribe</a></p>
{% if digests %}<ul>
{% for d in digests %}<li><a href="{{ d.url }}">{{ d.subject }}</a> <span class="meta">{{ d.when }}</span></li>
{% endfor %}</ul>{% else %}<p>No digest has been sent yet.</p>{% endif %}
{% endblock %}""",
    "paper.html": """{% extends "layout.html" %}{% block body %}
<h1>{{ paper.title }}</h1>
<p class="meta">{{ byline }}</p>
{% if paper.withdrawn_at %}
<p><strong>Withdrawn</strong> on {{ paper.withdrawn_at.strftime("%b %-d, %Y") }}.</p>
{% endif %}
<ul>{% for label, url, note in links %}
<li><a href="{{ url }}">{{ label }}</a>{% if note %} {{ note }}{% endif %}</li>
{% endfor %}</ul>
{% if paper.ai_summary %}<p><span class="meta">AI summary:</span> {{ paper.ai_summary }}</p>{% endif %}
{% if paper.abstract %}<p>{{ paper.abstract }}</p>{% endif %}
{% if paper.ai_keywords %}<p class="meta">Keywords: {{ paper.ai_keywords | join(", ") }}</p>{% endif %}
<h2>Upvotes</h2>
{% if sparkline %}{{ sparkline }}{% endif %}
{% if history_text %}<p class="meta">{{ history_text }}</p>
{% else %}<p>No upvote counts seen yet.</p>{% endif %}
{% endblock %}""",
    "text_digest.html": """{% extends "layout.html" %}{% block body %}
<pre style="white-space: pre-wrap; overflow-wrap: anywhere;">{{ text }}</pre>
{% endblock %}""",
}

ENV = jinja2.Environment(
    loader=jinja2.DictLoader(_PAGES), autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True
)


def page(name: str, **context: Any) -> str:
    return ENV.get_template(name).render(**context)


def sparkline(history: list[tuple[dt.date, int]], width: int = 320, height: int = 60) -> Markup | None:
    """An SVG polyline of the upvotes over the dumps that showed them; None with fewer than two
    (one point draws no line: the counts say it in words)."""
    if len(history) < 2:
        return None
    top = max(votes for _, votes in history) or 1
    step = width / max(len(history) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 4 - (votes / top) * (height - 8):.1f}" for i, (_, votes) in enumerate(history)
    )
    label = f"upvotes from {history[0][1]} to {history[-1][1]}"
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{label}"><polyline fill="none" stroke="currentColor" stroke-width="2"'
        f' points="{points}"/></svg>'
    )
    return Markup(svg)  # built from numbers only
