"""The Spanish-English customs glossary that lets keyword search and MiniLM read a Spanish
question (retrieval/crosslingual.py)."""

from __future__ import annotations

from retrieval.crosslingual import SPANISH_TERMS, english_terms


def test_customs_words_get_their_english_terms():
    assert english_terms("¿Qué es el valor en aduana?") == "customs value"
    got = english_terms("¿Cuántos años hay que conservar los registros?").split()
    assert {"years", "keep", "records"} <= set(got)
    assert "penalty" in english_terms("¿Qué multa corresponde por negligencia?")


def test_accents_and_case_are_optional_and_plurals_match():
    assert english_terms("IMPORTACIÓN") == english_terms("importacion") != ""
    assert english_terms("las facturas") == english_terms("la factura") == "invoice"
    assert english_terms("despachantes") == english_terms("despachante") == "customs broker"


def test_the_longest_phrase_wins_and_terms_are_not_repeated():
    got = english_terms("valor en aduana y valor de transacción").split()
    assert got.count("value") == 1 and "customs" in got and "transaction" in got
    # "derechos" alone is duties; "devolución de derechos" is drawback, not "refund duties"
    assert english_terms("devolución de derechos").split()[0] == "drawback"


def test_words_outside_the_glossary_give_nothing():
    assert english_terms("¿Qué tiempo hace hoy en Madrid?") == ""
    assert english_terms("") == ""
    # English words are not translated twice: an English question gets (almost) nothing
    assert english_terms("How long must an importer keep records?") == ""


def test_the_glossary_is_well_formed():
    for spanish, english in SPANISH_TERMS.items():
        assert spanish == spanish.lower().strip() and english.strip() == english, spanish
        assert not any(ch in spanish for ch in "áéíóúñü"), f"write {spanish!r} without accents"
        assert english_terms(spanish), spanish  # every entry matches itself
