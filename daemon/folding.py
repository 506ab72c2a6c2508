"""Keyword folding, shared by the scoring (score.py, topic_index.py) and the config's checks of
keywords: NFKC, case-folded, words only, simple plural folding. Standard library only: config.py
imports it, and so does every command that reads a config."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

WORD = re.compile(r"\w+")


def fold_word(word: str) -> str:
    """Simple plural folding: agents -> agent, policies -> policy, boxes -> box; 'ss' and short words stay."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    if len(word) >= 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


@lru_cache(maxsize=4096)
def folded(text: str) -> str:
    """Text as a padded string of folded words: ' multi agent system '."""
    words = WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    return " " + " ".join(fold_word(w) for w in words) + " "
