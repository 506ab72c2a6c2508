"""Digest windows, selection, rendering (golden files) and escaping.

Golden files live in tests/golden/digest/; PAPERDIGEST_REGEN_GOLDEN=1 rewrites them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import Engine, select, update

from paperdigest import digest
from paperdigest.digest import render, views
from paperdigest.ingest import apply
from paperdigest.model import Paper, RawDump
from paperdigest.parse import parse_dump
from paperdigest.score import Hit, ScoredPaper
from paperdigest.store import queries
from paperdigest.store.engine import open_engine
from paperdigest.store.tables import paper_table
from tests.conftest import SEEDS, check_golden
from tests.sample import (
    API_NOW,
    HOSTILE,
    HOSTILE_AUTHOR,
    NOW,
    RISING,
    WITHDRAWN,
    api_digest,
    api_sample_store,
    api_settings,
    hostile_dump,
    sample_store,
    settings,
)
from tests.storehelp import scalar

UTC = dt.UTC


@pytest.fixture
def store(db_url: str) -> Iterator[Engine]:
    """The seeds ingested (not backfilled) at a fixed time, plus one hostile dump (at db_url)."""
    engine = sample_store(db_url)
    yield engine
    engine.dispose()


def golden(name: str, actual: str) -> None:
    check_golden(f"digest/{name}", actual)


def test_period_is_the_latest_fire_in_the_subscribers_timezone() -> None:
    ada = settings().subscribers[0]  # 07:00 Europe/Berlin = 06:00 UTC in November
    window = digest.period_window(ada, NOW, last_end=None)
    assert window.period == dt.datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert window.start == dt.datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    assert window.end == NOW  # papers ingested after the cron fired still go out with this digest
    early = digest.period_window(ada, dt.datetime(2026, 11, 23, 5, 59, tzinfo=UTC), last_end=None)
    assert early.period == dt.datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def test_window_starts_where_the_last_digest_window_ended() -> None:
    ada = settings().subscribers[0]
    last = dt.datetime(2026, 11, 20, 6, 3, tzinfo=UTC)
    assert digest.period_window(ada, NOW, last_end=last).start == last  # after downtime: all since then


# --- selection (pure) ------------------------------------------------------------------------


def p(pid: int, title: str, upvotes: int | None = 0, abstract: str = "") -> Paper:
    day = dt.date(2026, 11, 22)
    return Paper(pid, title, abstract, 2, None, None, upvotes, None, day, day)


WINDOW = digest.Window(
    dt.datetime(2026, 11, 23, 6, tzinfo=UTC),
    dt.datetime(2026, 11, 22, 6, tzinfo=UTC),
    dt.datetime(2026, 11, 23, 6, tzinfo=UTC),
)


def test_a_paper_view_is_shared_only_by_equal_paper_score_and_hits() -> None:
    """view() is cached by (paper, score, hits): the same view again for those, a view of its own
    for another keyword hit, score, or the same paper with its upvotes changed."""
    paper = p(1, "A GUI agent for the web", 3, "An agent that clicks.")
    hits = (Hit("agent", "title"), Hit("GUI", "title"))
    first = views.view(ScoredPaper(paper, 5.0, "agents", 2.0, 3.0, hits, ("agents",)))
    again = views.view(ScoredPaper(p(1, "A GUI agent for the web", 3, "An agent that clicks."), 5.0, "x", 2.0, 3.0,
                                   hits, ("x",)))
    assert again is first and "<mark>agent</mark>" in first.summary_html and first.why.startswith("title: agent, GUI")
    other_hits = views.view(ScoredPaper(paper, 5.0, "agents", 2.0, 3.0, hits[1:], ("agents",)))
    other_score = views.view(ScoredPaper(paper, 6.0, "agents", 2.0, 3.0, hits, ("agents",)))
    upvoted = views.view(ScoredPaper(dataclasses_replace(paper, upvotes=40), 5.0, "agents", 2.0, 3.0, hits, ()))
    assert "<mark>" not in other_hits.summary_html and other_hits.why.startswith("title: GUI;")
    assert other_score.score == "6.0" and first.score == "5.0"
    assert upvoted.facts != first.facts and "40 upvotes" in upvoted.why


def test_selection_ranks_caps_thresholds_and_skips_sent() -> None:
    conf = settings()
    ada = conf.subscribers[0].model_copy(update={"max_papers": 2, "min_score": 3.5})
    papers = [
        p(1, "GUI agent", 1),
        p(2, "An agent", 30),
        p(3, "Agent sent before", 50),
        p(4, "Agent", 0),
        p(5, "Robots only", 90),
        p(6, "A survey of agents", 99),
    ]
    result = digest.select(conf, ada, WINDOW, papers, sent={3: 50}, sent_papers_now=[papers[2]])
    assert [s.paper.id for s in result.papers] == [2, 1]  # 4 is under min_score, 3 was sent, 6 is excluded
    assert (result.candidates, result.matched) == (6, 2)
    assert result.sections[0].topic == "agents"


def test_sections_follow_the_subscribers_topic_order() -> None:
    conf = settings()
    grace = conf.subscribers[1].model_copy(update={"min_score": 0})
    papers = [p(1, "Clinical notes", 100), p(2, "Robot arms", 1)]
    result = digest.select(conf, grace, WINDOW, papers, sent={}, sent_papers_now=[])
    assert [s.topic for s in result.sections] == ["robotics", "medicine"]


def test_no_topics_means_everything_by_upvotes() -> None:
    conf = settings()
    everything = conf.subscribers[0].model_copy(update={"topics": []})
    result = digest.select(conf, everything, WINDOW, [p(1, "Protein", 3), p(2, "Weather", 40)], {}, [])
    assert [s.paper.id for s in result.papers] == [2, 1] and result.sections[0].topic is None


@pytest.mark.parametrize(
    ("then", "now", "rising"),
    [(5, 15, True), (5, 14, False), (30, 45, False), (30, 60, True), (None, 90, False), (0, 10, True)],
)
def test_rising_means_doubled_and_at_least_ten_more(then: int | None, now: int, rising: bool) -> None:
    conf = settings()
    result = digest.select(conf, conf.subscribers[0], WINDOW, [], sent={9: then}, sent_papers_now=[p(9, "Old", now)])
    assert bool(result.rising) is rising
    assert result.empty is not rising


# --- the store window ------------------------------------------------------------------------


def test_build_takes_non_backfill_papers_of_the_window(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = open_engine(db_url)
    conf = settings()
    path = SEEDS / "004_d0e4e6143df38525.txt"
    monkeypatch.setenv("PAPERDIGEST_NOW", "2026-11-22T08:00:00+00:00")
    apply(engine, parse_dump(RawDump("a", path.read_bytes(), None), dt.date(2026, 11, 4)), backfill=True)
    ada = conf.subscribers[0]
    assert digest.build(engine, conf, ada, NOW).candidates == 0  # a backfill never makes papers new
    apply(engine, parse_dump(RawDump("b", hostile_dump(), None), dt.date(2026, 11, 4)))
    built = digest.build(engine, conf, ada, NOW)
    assert built.candidates == 1 and built.papers[0].paper.title == HOSTILE
    later = digest.build(engine, conf, ada, NOW + dt.timedelta(days=1))
    assert later.candidates == 0  # ingested before that period's window


def test_build_never_repeats_a_sent_paper(store: Engine) -> None:
    conf = settings()
    ada = conf.subscribers[0]
    first = digest.build(engine=store, settings=conf, subscriber=ada, now=NOW)
    assert first.papers
    with store.begin() as conn:
        shown = {s.paper.id: s.paper.upvotes for s in first.papers}
        queries.record_sent_upvotes(conn, ada.email, shown, NOW - dt.timedelta(hours=4))
    second = digest.build(store, conf, ada, NOW, since=dt.date(2020, 1, 1))
    assert not {s.paper.id for s in first.papers} & {s.paper.id for s in second.papers}


def test_rising_comes_from_the_store_without_reading_the_whole_history(store: Engine) -> None:
    """Build: a sent paper that gained sharply is Rising; one that gained a little, or whose
    upvotes were unknown when sent, is not; sent papers never come back as new."""
    conf = settings()
    ada = conf.subscribers[0]
    first = digest.build(store, conf, ada, NOW)
    sent = [s.paper for s in first.papers]
    assert len(sent) >= 3
    sharp, slight, unknown = sent[0], sent[1], sent[2]
    with store.begin() as conn:
        queries.record_sent_upvotes(
            conn, ada.email, {sharp.id: 5, slight.id: (slight.upvotes or 0) - 3, unknown.id: None}, NOW
        )
        queries.record_sent_upvotes(conn, ada.email, {p.id: p.upvotes for p in sent[3:]}, NOW)
        conn.execute(update(paper_table).where(paper_table.c.id == sharp.id).values(upvotes=40))
        gained = queries.sent_and_gained(conn, ada.email, conf.digest.rising_min_gain)
    assert [paper.id for paper, _ in gained] == [sharp.id]  # only it gained 10 or more since sent
    again = digest.build(store, conf, ada, NOW, since=dt.date(2020, 1, 1))
    assert [(r.paper.id, r.upvotes_then, r.upvotes_now) for r in again.rising] == [(sharp.id, 5, 40)]
    assert not {p.id for p in sent} & {s.paper.id for s in again.papers}


# --- rendering -------------------------------------------------------------------------------


def test_two_subscribers_get_different_correctly_ranked_digests_golden(store: Engine) -> None:
    conf = settings()
    ada, grace = (digest.build(store, conf, s, NOW) for s in conf.subscribers)
    assert ada.topics == ("agents",) and set(grace.topics) <= {"robotics", "medicine"} and grace.topics
    for built in (ada, grace):
        scores = [s.score for s in built.papers if s.topic == built.papers[0].topic]
        assert scores == sorted(scores, reverse=True)
        assert len(built.papers) <= built.subscriber.max_papers
        assert all(s.score >= built.subscriber.min_score for s in built.papers)
    golden("ada.txt", render.render_text(ada))
    golden("ada.html", render.render_html(ada))
    golden("grace.txt", render.render_text(grace))
    golden("grace.html", render.render_html(grace))


URL_LINE = re.compile(r"^ *https?://\S+$")


def test_text_digest_fits_72_columns(store: Engine, api_store: Engine) -> None:
    """Every line within 72 columns but URLs, and every URL on a line of its own."""
    conf = settings()
    built_all = [digest.build(store, conf, subscriber, NOW) for subscriber in conf.subscribers]  # grace: 75 once
    for built in (*built_all, api_digest(api_store)):
        text = render.render_text(built)
        assert [line for line in text.splitlines() if len(line) > 72 and not URL_LINE.match(line)] == []
        # The footer of a mailed digest without [web] (a trial found it at 75 columns).
        mailed = render.render_both(built, html=False, unsubscribe_by_mail="paper-digest@example.org")[0] or ""
        assert "To unsubscribe, write to paper-digest@example.org" in mailed
        assert [line for line in mailed.splitlines() if len(line) > 72 and not URL_LINE.match(line)] == []
        with_urls = [line for line in text.splitlines() if "://" in line]
        assert with_urls and all(URL_LINE.match(line) for line in with_urls)


def test_hostile_title_is_escaped_in_html_and_literal_in_text(store: Engine) -> None:
    conf = settings()
    built = digest.build(store, conf, conf.subscribers[0].model_copy(update={"max_papers": 500}), NOW)
    html = render.render_html(built)
    assert "<script>" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34; agent" in html  # as markupsafe escapes it
    assert "<b>injects</b>" not in html
    soup = BeautifulSoup(html, "html.parser")
    assert HOSTILE in soup.get_text()
    text = render.render_text(built)
    assert HOSTILE in text


def test_html_is_email_safe(store: Engine) -> None:
    conf = settings()
    html = render.render_html(digest.build(store, conf, conf.subscribers[0], NOW))
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("script") is None
    links = [a["href"] for a in soup.find_all("a")]
    assert links and all(str(href).startswith("https://") for href in links)
    assert soup.find("table", attrs={"width": "600"}) is not None
    assert 'style="' in html  # CSS inlined
    assert "prefers-color-scheme: dark" in html  # dark mode kept in a style block
    assert not any(re.match(r"on\w+", attr) for tag in soup.find_all(True) for attr in tag.attrs)


def test_links_go_to_the_paper_page_when_the_arxiv_id_is_known() -> None:
    assert render.paper_url("QLoRA", "2305.14314") == "https://huggingface.co/papers/2305.14314"
    assert render.paper_url("A & B", None) == "https://arxiv.org/search/?query=A+%26+B&searchtype=title"


def test_subject_line() -> None:
    conf = settings()
    papers = [p(i, f"Agent {i}", i) for i in range(1, 4)]
    result = digest.select(conf, conf.subscribers[0], WINDOW, papers, {}, [])
    assert render.subject(result) == "Paper digest — 3 new papers on agents (Nov 23)"


def test_user_templates_override_the_shipped_ones(store: Engine, tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("{{ count }} papers for {{ subscriber.email }}\n")
    conf = settings(digest={"templates": str(tmp_path)})
    built = digest.build(store, conf, conf.subscribers[0], NOW)
    env = render.environment(conf.digest.templates)
    assert render.render_text(built, env) == f"{len(built.papers)} papers for ada@example.org\n"
    assert "<table" in render.render_html(built, env)  # the HTML template still comes from the package


def test_the_shipped_html_template_has_its_styles_inline_and_skips_the_inliner(store: Engine) -> None:
    """No <style> to inline (only the dark mode block, kept as it is), every element styled
    already, and the template known not to need css_inline, whose output would differ (it adds
    <tbody>); its {% set s_... %} styles written into the compiled template."""
    conf = settings()
    built = digest.build(store, conf, conf.subscribers[0], NOW)
    html = render.render_html(built)
    soup = BeautifulSoup(html, "html.parser")
    assert [style.get("data-css-inline") for style in soup.find_all("style")] == ["keep"]
    unstyled = [el for el in soup.body.find_all(True) if not el.get("style") and el.name not in ("br", "tr", "li")]
    assert [str(el)[:20] for el in unstyled] == ['<td align="center">\n'] and soup.body.get("style")  # as before
    assert soup.find("mark") is not None and all(m.get("style") for m in soup.find_all("mark"))
    env = render.environment()
    template = env.get_template("digest.html.j2")
    assert render.traits(env, template) == render._Traits(inline=False, references=True)
    assert "<tbody>" not in html
    source = env.loader.get_source(env, "digest.html.j2")[0]  # type: ignore[union-attr]
    assert "{{ s_meta }}" in source and "{{ s_meta }}" not in render.Constants(env).preprocess(source, "digest.html.j2")


def test_a_user_html_template_with_a_style_block_is_still_inlined(store: Engine, tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text(
        "<html><head>{# a <link> in a comment is no link #}<style>.count { color: #b91c1c; }</style>"
        '<style data-css-inline="keep">@media print { p { color: #000; } }</style></head>'
        '<body><p class="count">{{ count }} — papers</p></body></html>\n'
    )
    conf = settings(digest={"templates": str(tmp_path)})
    built = digest.build(store, conf, conf.subscribers[0], NOW)
    env = render.environment(conf.digest.templates)
    html = render.render_html(built, env)
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("p", class_="count")["style"] == "color: #b91c1c;"  # type: ignore[index]
    assert [style.get("data-css-inline") for style in soup.find_all("style")] == ["keep"]
    assert render.traits(env, env.get_template("digest.html.j2")) == render._Traits(inline=True, references=True)
    mailed = render.render_both(built, env, text=False, references=True)[1]
    assert mailed is not None and "&#8212; papers" in mailed and mailed.isascii()


@pytest.mark.parametrize(
    ("body", "inline", "references"),
    [
        ("<p>{{ count }}</p>", False, True),
        ("<style data-css-inline='keep'>p { color: red }</style><p>{{ count }}</p>", False, True),
        ('<link rel="stylesheet" href="https://example.org/a.css"><p>{{ count }}</p>', True, True),
        ("<STYLE>p { color: red }</STYLE><p>{{ count }}</p>", True, True),
        ("<script>var a = '{{ count }}';</script><p>x</p>", False, False),  # a reference is no character there
        ("<style data-css-inline=keep>p::after { content: '→' }</style><p>x</p>", False, False),
        ('{% include "digest.txt.j2" %}', True, False),
    ],
)
def test_what_a_template_needs_is_read_from_its_source(
    tmp_path: Path, body: str, inline: bool, references: bool
) -> None:
    (tmp_path / "digest.html.j2").write_text(body)
    env = render.environment(tmp_path)
    assert render.traits(env, env.get_template("digest.html.j2")) == render._Traits(inline, references)


def test_non_ascii_becomes_character_references_unless_a_c1_control_is_there() -> None:
    expected = "<p>Gr&#252;&#223;e &#8212; &#252;n&#239;c&#246;d&#233; &#119987;</p>"
    assert render.ascii_html("<p>Grüße — ünïcödé 𝒳</p>") == expected
    assert render.ascii_html("<p>plain</p>") == "<p>plain</p>"
    assert render.ascii_html("<p>a\x85b</p>") is None  # &#133; would read as windows-1252's "…"


def test_once_renders_a_macro_once_per_item_and_arguments(tmp_path: Path) -> None:
    """item | once(macro, *args): the macro's output kept by (its code, the item itself, args), so
    an item it has seen comes back as rendered then (items must not change: views are frozen)."""
    (tmp_path / "digest.html.j2").write_text(
        "{% macro m(x, n) %}<b>{{ x.a }}</b>{{ n }}{% endmacro %}"
        "{{ first | once(m, 1) }} {{ first | once(m, 2) }} {{ second | once(m, 1) }}\n"
    )
    template = render.environment(tmp_path).get_template("digest.html.j2")
    first, second = SimpleNamespace(a="x<"), SimpleNamespace(a="y")
    assert template.render(first=first, second=second) == "<b>x&lt;</b>1 <b>x&lt;</b>2 <b>y</b>1\n"
    first.a = "changed"  # not seen by once(): the same item, rendered already
    assert template.render(first=first, second=SimpleNamespace(a="z")) == "<b>x&lt;</b>1 <b>x&lt;</b>2 <b>z</b>1\n"


def test_style_constants_are_folded_only_when_assigned_once_and_used_plainly(tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text(
        '{% set s_a = "color: red;" %}\n{% set s_b = "a<b" %}\n{% set s_c = "x" %}\n{% set s_c = "y" %}\n'
        '<p style="{{ s_a }}">{{ s_b }}</p><p>{{ s_c }}</p><p>{{ s_b | upper }}</p>\n'
    )
    env = render.environment(tmp_path)
    source = env.loader.get_source(env, "digest.html.j2")[0]  # type: ignore[union-attr]
    folded = render.Constants(env).preprocess(source, "digest.html.j2")
    assert '<p style="color: red;">' in folded  # s_a: once, used plainly
    assert "{{ s_b }}" in folded and "{{ s_c }}" in folded  # s_b: also in a filter; s_c: set twice
    assert env.get_template("digest.html.j2").render() == '<p style="color: red;">a&lt;b</p><p>y</p><p>A&lt;B</p>\n'


# --- the command -----------------------------------------------------------------------------


def test_digest_command_previews_without_marking_sent(
    cli: Any, store: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = tmp_path / "c.toml"
    config_path.write_text(
        '[topics.agents]\nkeywords = ["agent"]\n[topics.robotics]\nkeywords = ["robot"]\n'
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["agents"]\n'
        '[[subscribers]]\nemail = "grace@example.org"\ntopics = ["robotics"]\n'
    )
    db = db_url
    monkeypatch.setenv("PAPERDIGEST_NOW", NOW.isoformat())
    ada = cli("--config", str(config_path), "--db", db, "digest", "--subscriber", "ada@example.org")
    grace = cli("--config", str(config_path), "--db", db, "digest", "--subscriber", "grace@example.org")
    assert ada.code == grace.code == 0
    assert "on agents" in ada.out and "on robotics" in grace.out and ada.out != grace.out
    out = cli("--config", str(config_path), "--db", db, "digest", "--out", str(tmp_path / "out"))
    assert out.code == 0
    assert {f.name for f in (tmp_path / "out").iterdir()} == {
        "ada@example.org.html",
        "ada@example.org.txt",
        "grace@example.org.html",
        "grace@example.org.txt",
    }
    assert scalar(db_url, "SELECT count(*) FROM sent_paper") == 0
    unknown = cli("--config", str(config_path), "--db", db, "digest", "--subscriber", "nobody@example.org")
    assert unknown.code == 2 and "unknown subscriber" in unknown.err


def test_papers_topic_lists_scores_and_reasons(cli: Any, store: Engine, db_url: str, tmp_path: Path) -> None:
    config_path = tmp_path / "c.toml"
    config_path.write_text('[topics.agents]\nkeywords = ["agent", "GUI"]\n')
    db = db_url
    result = cli("--config", str(config_path), "--db", db, "papers", "--topic", "agents", "--json", "--top", "10")
    lines = result.json_lines()
    assert len(lines) == 10
    scores = [line["score"] for line in lines]
    assert scores == sorted(scores, reverse=True)
    assert all(line["explain"]["hits"] for line in lines)
    assert all(isinstance(line["why"], str) and "score" in line["why"] for line in lines)
    table = cli("--config", str(config_path), "--db", db, "papers", "--topic", "agents", "--top", "3")
    assert table.code == 0 and "why" in table.out
    for line in lines[:3]:  # each row shows its score and the start of its reasons
        assert f"{line['score']:.1f}" in table.out
    assert table.out.count("title:") + table.out.count("abstract:") >= 3
    bad = cli("--config", str(config_path), "--db", db, "papers", "--topic", "nope")
    assert bad.code == 2 and "unknown topic" in bad.err


@pytest.mark.sqlite_only  # SQLite's query plan; PostgreSQL's planner picks by its statistics
def test_the_window_query_uses_the_first_dump_index(store: Engine) -> None:
    """Scoring a digest reads the papers of its window (a span of dumps in commit order) through
    an index, not the whole store."""
    stmt = select(paper_table.c.id).where(
        paper_table.c.first_dump_id > 3,
        paper_table.c.first_dump_id <= 5,
        paper_table.c.first_backfill.is_(False),
    )
    compiled = stmt.compile(store, compile_kwargs={"literal_binds": True})
    with store.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    assert "ix_paper_first_dump_id" in plan, plan


def test_a_later_window_reads_none_of_the_stored_papers(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = queries.papers_of_dumps

    def spy(conn: Any, after: int, upto: int) -> list[Paper]:
        found = original(conn, after, upto)
        calls.append(len(found))
        return found

    conf = settings()
    monkeypatch.setattr(queries, "papers_of_dumps", spy)
    digest.build(store, conf, conf.subscribers[0], NOW + dt.timedelta(days=3))
    assert calls == [0]  # a later window holds none of the 348 stored papers, and none were read


def test_a_digest_cut_by_max_papers_says_how_many_were_left_out(store: Engine) -> None:
    conf = settings()
    cut = digest.build(store, conf, conf.subscribers[0], NOW)
    left_out = cut.matched - len(cut.papers)
    assert left_out > 0
    text, html = render.render_both(cut)
    assert text is not None and html is not None
    assert f"…and {left_out} more papers matched your topics" in " ".join(text.split())
    assert f"…and {left_out} more papers matched your topics" in BeautifulSoup(html, "html.parser").get_text()
    whole = digest.build(store, conf, conf.subscribers[0].model_copy(update={"max_papers": 500}), NOW)
    assert whole.matched == len(whole.papers)
    assert "more papers matched" not in render.render_text(whole)


def test_the_html_digest_numbers_its_papers_as_the_text_does(store: Engine) -> None:
    conf = settings()
    built = digest.build(store, conf, conf.subscribers[1], NOW)
    soup = BeautifulSoup(render.render_html(built), "html.parser")
    ranks = [span.get_text() for span in soup.select("span.rank")]
    per_section = [str(i) + "." for section in built.sections for i in range(1, len(section.papers) + 1)]
    assert ranks == per_section and len(ranks) == len(built.papers)
    text = render.render_text(built)
    assert all(f"\n{rank} " in text for rank in per_section)


# --- the API sample: every field the daily-papers API gives (issue 12) ---------------------------


@pytest.fixture
def api_store(tmp_path: Path) -> Engine:
    """Two days of the real sample as the huggingface source ingests them (tests/sample.py)."""
    return api_sample_store(tmp_path / "api.db")


def test_the_api_digest_golden(api_store: Engine) -> None:
    built = api_digest(api_store)
    golden("lin.txt", render.render_text(built))
    golden("lin.html", render.render_html(built))


def paper_blocks(text: str) -> dict[str, str]:
    """The text digest's entries by their first line ("1. QLoRA: ..."), each with its lines."""
    blocks: dict[str, str] = {}
    for block in text.split("\n\n"):
        if re.match(r"^\d+\. ", block):
            blocks[block.splitlines()[0]] = block
    return blocks


def test_a_paper_shows_its_authors_summary_and_links(api_store: Engine) -> None:
    built = api_digest(api_store)
    text, html = render.render_both(built)
    assert text is not None and html is not None
    qlora = next(block for first, block in paper_blocks(text).items() if "QLoRA" in first)
    assert "Tim Dettmers, Artidoro Pagnoni, Ari Holtzman et al. · University of" in qlora  # three, et al.
    assert "Luke Zettlemoyer" not in qlora
    assert "AI summary: QLoRA enables efficient finetuning" in qlora
    assert "62 upvotes · 10 comments" in qlora
    assert "code (10,939 stars)" in qlora
    urls = [line.strip() for line in qlora.splitlines() if line.strip().startswith("https://")]
    assert urls == [
        "https://huggingface.co/papers/2305.14314",
        "https://arxiv.org/abs/2305.14314",
        "https://arxiv.org/pdf/2305.14314",
        "https://github.com/artidoro/qlora",
    ]
    soup = BeautifulSoup(html, "html.parser")
    card = next(td for td in soup.select("td.paper") if "QLoRA" in td.get_text())
    assert card.select_one("a.title")["href"] == "https://huggingface.co/papers/2305.14314"  # type: ignore[index]
    links = {a.get_text(): a["href"] for a in card.select("p.links a")}
    assert links == {
        "arXiv": "https://arxiv.org/abs/2305.14314",
        "PDF": "https://arxiv.org/pdf/2305.14314",
        "Code": "https://github.com/artidoro/qlora",
    }
    assert "★ 10,939" in card.select_one("p.links").get_text()  # type: ignore[union-attr]
    assert card.select_one("p.byline").get_text() == (  # type: ignore[union-attr]
        "Tim Dettmers, Artidoro Pagnoni, Ari Holtzman et al. · University of Washington"
    )
    assert card.select_one("span.label").get_text() == "AI summary"  # type: ignore[union-attr]
    x_llm = next(td for td in soup.select("td.paper") if "X-LLM" in td.get_text())
    assert {a.get_text(): a["href"] for a in x_llm.select("p.links a")}["Project page"] == "https://x-llm.github.io"


def test_three_authors_or_fewer_are_all_named() -> None:
    day = dt.date(2023, 5, 23)
    two = Paper(1, "T", None, 2, None, None, 1, "2305.1", day, day, author_names=("A B", "C D"))
    three = dataclasses_replace(two, author_names=("A", "B", "C"), authors=3)
    four = dataclasses_replace(two, author_names=("A", "B", "C", "D"), authors=4)
    count = dataclasses_replace(two, author_names=None, authors=11, org="Org")
    assert [views.byline(p) for p in (two, three, four, count)] == ["A B, C D", "A, B, C", "A, B, C et al.",
                                                                   "11 authors · Org"]  # fmt: skip


def test_without_an_ai_summary_the_abstract_is_cut_at_a_sentence(api_store: Engine) -> None:
    text = render.render_text(api_digest(api_store))
    snowball = next(block for first, block in paper_blocks(text).items() if "Snowball" in first)
    assert "AI summary" not in snowball
    assert "their tendency to hallucinate incorrect statements.\n   Links:" in snowball
    assert views.excerpt("One. Two three. Four five six.", limit=16) == "One. Two three."
    assert views.excerpt("A very long first sentence without an end " * 20, limit=40).endswith("…")


def test_a_withdrawn_paper_is_never_in_a_digest(api_store: Engine) -> None:
    built = api_digest(api_store)
    with api_store.connect() as conn:
        (goat,) = [p for p in queries.all_papers(conn) if p.arxiv_id == WITHDRAWN]
    assert goat.withdrawn_at == dt.date(2023, 5, 24)
    shown = [s.paper.arxiv_id for s in (*built.papers, *built.more)] + [r.paper.arxiv_id for r in built.rising]
    assert WITHDRAWN not in shown and "2305.14314" in shown
    everything = digest.build(
        api_store, api_settings(), api_settings().subscribers[0].model_copy(update={"max_papers": 500}), API_NOW
    )
    assert WITHDRAWN not in {s.paper.arxiv_id for s in everything.papers}
    unwithdrawn = dataclasses_replace(goat, withdrawn_at=None)
    kept = digest.select(api_settings(), api_settings().subscribers[0], WINDOW, [unwithdrawn], {}, [])
    assert [s.paper.arxiv_id for s in kept.papers] == [WITHDRAWN]  # it matches: only the withdrawal keeps it out


def test_the_matched_keywords_are_marked_in_the_html(api_store: Engine) -> None:
    soup = BeautifulSoup(render.render_html(api_digest(api_store)), "html.parser")
    card = next(td for td in soup.select("td.paper") if "QLoRA" in td.get_text())
    assert [m.get_text() for m in card.select("p.excerpt mark")] == ["language models", "quantization"]
    assert "AI keywords: quantization" in card.select_one("p.why").get_text()  # type: ignore[union-attr]
    marked = views.marked("Web-Agents and an agentic GUI agent <b>", ("web agent", "agent", "gui"))
    assert str(marked) == "<mark>Web-Agents</mark> and an agentic <mark>GUI</mark> <mark>agent</mark> &lt;b&gt;"


def test_a_cut_digest_names_the_next_titles_as_links(api_store: Engine) -> None:
    built = api_digest(api_store)
    assert built.matched - len(built.papers) == 6 and len(built.more) == 5
    text, html = render.render_both(built)
    assert text is not None and html is not None
    assert "…and 6 more papers matched your topics" in " ".join(text.split())
    soup = BeautifulSoup(html, "html.parser")
    more = [(a.get_text(), a["href"]) for a in soup.select("ul.more a")]
    assert more == [(s.paper.title, render.paper_url(s.paper.title, s.paper.arxiv_id)) for s in built.more]
    scores = [s.score for s in (*built.papers, *built.more)]
    assert scores == sorted(scores, reverse=True)  # the next in line, in the ranking's order


def test_rising_shows_the_gain_since_the_paper_was_sent(api_store: Engine) -> None:
    built = api_digest(api_store)
    assert [(r.paper.arxiv_id, r.upvotes_then, r.upvotes_now) for r in built.rising] == [(RISING[0], 5, 20)]
    text, html = render.render_both(built)
    assert text is not None and html is not None
    assert "(5 -> 20 upvotes: +15 since we sent it)" in " ".join(text.split())
    assert "5 → 20 upvotes: +15 since we sent it" in BeautifulSoup(html, "html.parser").get_text()


def test_an_author_name_is_escaped(api_store: Engine) -> None:
    text, html = render.render_both(api_digest(api_store))
    assert text is not None and html is not None
    assert HOSTILE_AUTHOR in text
    assert "<img" not in html and "Eve &lt;img src=x onerror=alert(2)&gt; &amp; Co" in html
    assert HOSTILE_AUTHOR in BeautifulSoup(html, "html.parser").get_text()


RANKING_TOPICS: dict[str, Any] = {
    "agents": {"keywords": ["agent", "web agent", "GUI", "tool use"], "exclude": ["survey"]},
    "robotics": {"keywords": ["robot", "manipulation", "embodied", "navigation"]},
    "reasoning": {"keywords": ["reasoning", "chain-of-thought", "math"]},
    "multimodal": {"keywords": ["multimodal", "vision-language", "video", "image"]},
    "llm": {"keywords": ["language model", "LLM", "fine-tuning", "prompt"]},
    "benchmarks": {"keywords": ["benchmark", "dataset", "evaluation"]},
    "rl": {"keywords": ["reinforcement learning", "policy", "reward"]},
    "medicine": {"keywords": ["medical", "biomedical", "clinical", "healthcare"]},
}


def test_a_batchs_rankings_are_top_paper_for_paper(tmp_path: Path) -> None:
    """The batch's merged per-topic rankings (digest/ranking.py) choose, order, file and count
    exactly as score.top does, for many subscribers on one window: topic sets in any order,
    thresholds, caps, papers already sent or withdrawn, and ties (same score, upvotes and title)."""
    import random  # noqa: PLC0415

    from paperdigest.digest.ranking import Rankings  # noqa: PLC0415
    from paperdigest.score import HitCache, top  # noqa: PLC0415

    engine = sample_store(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as conn:
        stored = queries.papers_of_dumps(conn, 0, queries.newest_dump(conn))
    engine.dispose()
    rng = random.Random(13)
    twins = [dataclasses_replace(p, id=p.id + 100_000) for p in rng.sample(stored, 40)]  # ties on every key
    withdrawn = dt.date(2026, 11, 5)
    gone = [dataclasses_replace(p, id=p.id + 200_000, withdrawn_at=withdrawn) for p in rng.sample(stored, 20)]
    window = [*stored, *twins, *gone]
    rng.shuffle(window)
    conf = settings(topics=RANKING_TOPICS)
    rankings = Rankings(conf.scoring, HitCache())
    names = sorted(RANKING_TOPICS)
    chosen_somewhere = 0
    for _ in range(300):
        topics = {name: conf.topics[name] for name in rng.sample(names, rng.randint(1, len(names)))}
        sent = {p.id: p.upvotes for p in rng.sample(window, rng.randint(0, 60))}
        min_score = rng.choice([0.0, 0.0, 2.0, 4.5, 8.0, 100.0])
        limit = rng.choice([1, 3, 10, 25, 1000])
        fresh = [p for p in window if p.id not in sent and p.withdrawn_at is None]
        want = top(fresh, topics, conf.scoring, None, min_score, limit)
        assert rankings.top("window", window, sent, topics, min_score, limit) == want
        chosen_somewhere += len(want[0])
    assert chosen_somewhere > 1000  # the comparisons ranked papers, not empty lists


def test_rankings_of_a_window_read_again_follow_the_new_list() -> None:
    """A window's key given with another list (the window read again, its papers' upvotes moved
    on) is ranked from that list, not from what was sorted for the first."""
    from paperdigest.digest.ranking import Rankings  # noqa: PLC0415
    from paperdigest.score import top  # noqa: PLC0415

    conf = settings()
    topics = {"agents": conf.topics["agents"]}
    first = [p(1, "A web agent", upvotes=1), p(2, "An agent for GUI tasks", upvotes=50)]
    again = [p(2, "An agent for GUI tasks", upvotes=50), p(1, "A web agent", upvotes=900)]
    rankings = Rankings(conf.scoring)
    assert rankings.top((0, 5), first, {}, topics, 0.0, 10) == top(first, topics, conf.scoring, None, 0.0, 10)
    assert rankings.top((0, 5), again, {}, topics, 0.0, 10) == top(again, topics, conf.scoring, None, 0.0, 10)
    assert [s.paper.upvotes for s in rankings.top((0, 5), again, {}, topics, 0.0, 10)[0]] == [900, 50]
