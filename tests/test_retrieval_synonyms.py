"""Query expansion from the customs synonym list (retrieval/synonyms.py)."""

from __future__ import annotations

from retrieval.synonyms import CUSTOMS_SYNONYMS, expand_query, expansion_terms


def test_plain_words_bring_in_the_legal_terms():
    assert "security" in expansion_terms("Can we ask for a guarantee?").split()
    assert "counterfeit" in expansion_terms("a container of fake handbags").split()
    terms = expansion_terms("Can we confiscate the truck?").split()
    assert {"seizure", "forfeiture", "vehicle"} <= set(terms)


def test_phrases_win_and_words_match_on_boundaries():
    assert "audit-based" in expansion_terms("Is PCA mandatory?").split()
    # "cap" must not fire inside "capital", nor "fine" inside "define"
    assert expansion_terms("define the capital goods") == ""


def test_no_repeats_and_nothing_already_asked():
    terms = expansion_terms("Is a fine a penalty? What about fines?").split()
    assert "penalty" not in terms  # already in the question
    assert len(terms) == len(set(terms))


def test_expand_query_keeps_the_question_first():
    assert expand_query("no plain words here") == "no plain words here"
    expanded = expand_query("pay back the overpaid duty")
    assert expanded.startswith("pay back the overpaid duty ")
    assert "repayment" in expanded


def test_the_list_is_lower_case_and_non_empty():
    assert all(k == k.lower() and v.strip() for k, v in CUSTOMS_SYNONYMS.items())


def test_no_plain_word_is_listed_twice() -> None:
    """A dict literal keeps the last of two equal keys without a word: the source lists each
    plain word once."""
    import re
    from pathlib import Path

    import retrieval.synonyms as module

    keys = re.findall(r'^    "([^"]+)":', Path(module.__file__).read_text(encoding="utf-8"), re.M)
    assert len(keys) == len(set(keys)) == len(module.CUSTOMS_SYNONYMS)
