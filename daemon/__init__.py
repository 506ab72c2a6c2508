"""paperdigest: research-paper listings in, digests out.

The pipeline, one module (or package) per stage::

    for dump in sources.read(paths):          # sources/: files, directories, URLs -> RawDump
        listing = parse.parse_dump(dump)      # parse/: bytes -> Listing of Entry
        changes = ingest.diff(listing, store) # ingest.py: pure diff against the stored papers
        ingest.apply(changes)                 # one transaction per dump (store/)
    papers = score(store.window(...))         # score.py: upvotes + topic keywords, explained
    digest = select_and_render(papers)        # digest.py + templates/
    mail.deliver(outbox(digest))              # mail/: outbox, SMTP or .eml files

`cli.py` is a thin layer of commands over these functions.
"""

__version__ = "0.1.0"
