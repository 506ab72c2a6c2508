"""The links a digest carries when `[web]` is set: view in the browser, the subscriber's feed and
archive, one-click unsubscribe."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from paperdigest.config import Settings
from paperdigest.web.tokens import Tokens, load_secret


@dataclass(frozen=True, slots=True)
class MailLinks:
    view: str  # this digest, as mailed
    feed: str  # the subscriber's Atom feed
    archive: str  # the subscriber's recent digests
    unsubscribe: str  # GET: a page with a button; POST (RFC 8058 one-click): done


class LinkMaker:
    def __init__(self, base_url: str, tokens: Tokens) -> None:
        self.base = base_url.rstrip("/")
        self.tokens = tokens

    def for_digest(self, email: str, period: dt.datetime) -> MailLinks:
        return MailLinks(
            view=f"{self.base}/d/{self.tokens.digest(email, period)}",
            feed=f"{self.base}/f/{self.tokens.make('feed', email)}.atom",
            archive=f"{self.base}/s/{self.tokens.make('subscriber', email)}",
            unsubscribe=f"{self.base}/u/{self.tokens.make('unsubscribe', email)}",
        )


def link_maker(settings: Settings) -> LinkMaker | None:
    """Links for the mail when `[web]` is set; None otherwise."""
    if settings.web is None:
        return None
    return LinkMaker(settings.web.base_url, Tokens(load_secret(settings)))
