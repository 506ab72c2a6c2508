"""paperdigest: research-paper listings in, digests out.

The pipeline, one package (or module) per stage; docs/architecture.md has the map::

    fetched = source.fetch(memory)                  # sources/: an inbox, a URL, the API by day; fetching only
    for dump in fetched:                            # ingest/job.py joins the stages:
        listing = parse.parse_dump(dump)            #   parse/: bytes -> Listing of Entry
        changes = ingest.diff(listing, known)       #   ingest/diff.py: pure, in model terms
        ingest.apply(changes)                       #   ingest/write.py: one transaction per dump (store/)
    for subscriber whose period is due:             # digest/job.py
        digest  = digest.build(window)              #   digest/selection.py + score.py: ranked, explained
        message = compose(render(digest))           #   digest/render.py (Jinja2) + mail/message.py
        outbox.add(message)                         #   mail/outbox.py: a queue
    outbox.deliver_due(transport)                   # exactly once: claim, send, mark (mail/)

`service/` runs it on a schedule (APScheduler, systemd); `cli.py` is a thin layer of commands.
"""

__version__ = "0.3.0"
