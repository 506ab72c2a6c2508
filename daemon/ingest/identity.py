"""Paper identity: the arXiv id when a source gives one, else a key folded from the title."""

from __future__ import annotations

import re
import unicodedata

# ASCII: letters lower-cased, digits kept, everything else (punctuation, symbols, controls) a space.
_ASCII_FOLD = {i: (chr(i).lower() if chr(i).isalnum() else " ") for i in range(128)}
# ASCII only: \d would take other scripts' digits ("٢٣٠٥.١٤٣١٤") for an arXiv id.
_ARXIV = re.compile(r"^(?:arxiv:)?(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$", re.I | re.ASCII)


def fold_space(text: str) -> str:
    """Line wraps and runs of white space become one space; ends are trimmed."""
    return " ".join(text.split())


def title_key(title: str) -> str:
    """NFKC, case-folded, punctuation and symbols folded to spaces, white space collapsed.

    >>> title_key("Pangu-Agent:  A Fine-Tunable Agent")
    'pangu agent a fine tunable agent'
    """
    if title.isascii():  # the common case, without a look at each character's category
        return " ".join(title.translate(_ASCII_FOLD).split()) or fold_space(title.lower())
    # NFKC again after case folding: folding can make sequences that compose ("ß" + accent).
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", title).casefold())
    folded = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)
    key = fold_space(folded)
    # A title made only of punctuation still needs a key that tells it apart.
    return key or fold_space(text)


def normalize_arxiv_id(raw: str | None) -> str | None:
    """`arXiv:2305.14314v2` -> `2305.14314`; anything that is not an arXiv id -> None."""
    if raw is None:
        return None
    match = _ARXIV.match(raw.strip())
    return match.group(1) if match else None
