"""Paper identity: the title key (NFKC, case-folded, punctuation and white space folded) and arXiv ids."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from paperdigest.ingest.identity import fold_space, normalize_arxiv_id, title_key

_any_text = st.text(max_size=80)
# Without combining marks: case folding may leave a mark next to a letter it composes with only
# after another NFKC (e.g. Greek iota subscripts), which is beyond what titles need.
_text_without_marks = st.text(alphabet=st.characters(exclude_categories=("Cs", "Mn", "Mc", "Me")), max_size=80)
_word = st.text(alphabet=st.characters(categories=("Lu", "Ll", "Nd")), min_size=1, max_size=12)
# Punctuation and white space as titles really carry it (ASCII, dashes, quotes, bullets, NBSP).
_separator = st.text(
    alphabet=st.sampled_from(list(" \t\n\r-–—:;,.!?'\"“”‘’«»()[]{}/\\|·•…&*_+=#@%\u00a0\u2009\u3000")),
    min_size=1,
    max_size=4,
)
_latin = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéÉüÜßøØçÇ0123456789 -:"))
)


def test_title_key_example() -> None:
    assert title_key("Pangu-Agent:  A Fine-Tunable Agent") == "pangu agent a fine tunable agent"


def test_title_key_tells_words_apart() -> None:
    assert title_key("agent") != title_key("reagent")
    assert title_key("Agent S2") != title_key("Agent S")


def test_title_key_examples_that_must_agree() -> None:
    assert title_key("QLoRA: Efficient Finetuning of Quantized LLMs") == title_key(
        "qlora  efficient finetuning of quantized llms"
    )
    assert title_key("TinyStories: How Small Can Language Models Be and Still Speak Coherent\n  English?") == title_key(
        "TinyStories: How Small Can Language Models Be and Still Speak Coherent English?"
    )
    assert title_key("ＱＬｏＲＡ") == title_key("QLoRA")  # NFKC: full-width letters
    assert title_key("Stra\u00dfe") == title_key("STRASSE")  # case folding, not lower()
    assert title_key("Poke\u0301Champ") == title_key("PokéChamp")  # composed and decomposed é


def test_title_key_of_punctuation_only_titles_is_not_empty() -> None:
    assert title_key("...") != ""
    assert title_key("?!") != title_key("...")


@settings(max_examples=200)
@given(_any_text)
@example("Stra\u00df\u0301e")  # casefold() makes "ss\u0301": the key is not NFKC any more
@example("\u1f80\u0301")
def test_title_key_is_idempotent(title: str) -> None:
    key = title_key(title)
    assert title_key(key) == key


@settings(max_examples=200)
@given(_text_without_marks)
def test_title_key_ignores_case_folding(title: str) -> None:
    assert title_key(title.casefold()) == title_key(title)


@settings(max_examples=200)
@given(_latin)
def test_title_key_ignores_upper_and_lower_case(title: str) -> None:
    assert title_key(title.upper()) == title_key(title.lower()) == title_key(title)


@settings(max_examples=200)
@given(st.lists(_word, min_size=1, max_size=6), st.data())
def test_title_key_ignores_punctuation_and_extra_white_space(words: list[str], data: st.DataObject) -> None:
    separators = data.draw(st.lists(_separator, min_size=len(words) + 1, max_size=len(words) + 1))
    noisy = separators[0] + "".join(word + sep for word, sep in zip(words, separators[1:], strict=True))
    assert title_key(noisy) == title_key(" ".join(words))


@settings(max_examples=200)
@given(_any_text)
@example("ῶ")  # folding decomposes it, NFKC composes it again (found by Hypothesis)
def test_title_key_is_folded(title: str) -> None:
    key = title_key(title)
    assert key == fold_space(key)
    # Case-folded as NFKC text: "ῶ".casefold() is ω + a combining perispomeni, which NFKC composes
    # back into "ῶ"; the key is the composed form, and a key is its own key.
    assert key == unicodedata.normalize("NFKC", key.casefold()) or not key.strip()
    assert title_key(key) == key or not key.strip()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2305.14314", "2305.14314"),
        ("arXiv:2305.14314v2", "2305.14314"),
        ("2401.01234", "2401.01234"),
        (" 2305.14314 ", "2305.14314"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("not-an-id", None),
        ("1412.6980", "1412.6980"),  # four digits before 2015
        ("12.345", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_arxiv_id(raw: str | None, expected: str | None) -> None:
    assert normalize_arxiv_id(raw) == expected
