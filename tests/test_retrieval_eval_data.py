"""The retrieval evaluation sets are well formed and true.

Three sets over the same English corpus: benchmarks/retrieval_questions.yaml (English),
benchmarks/retrieval_questions_es.yaml and benchmarks/retrieval_questions_es2.yaml (two
Spanish sets, `language: es`). Checks, for each, the schema, that every expected source exists in
../shared/data/regulations, that every expected locator names a part the document really
has (section and subsection of the US Code file, article / note / standard / rule headings
of the treaty texts), that there are no duplicates, and that questions are paraphrased
rather than copied from the text; then each set's own size and spread.
Also checks the hit rule the benchmark scores with.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import needs_shared_regulations

REPO = Path(__file__).resolve().parents[1]
QUESTIONS_FILE = REPO / "benchmarks" / "retrieval_questions.yaml"
SPANISH_FILE = REPO / "benchmarks" / "retrieval_questions_es.yaml"
SPANISH2_FILE = REPO / "benchmarks" / "retrieval_questions_es2.yaml"
DEV_FILE = REPO / "benchmarks" / "retrieval_dev_questions.yaml"
QUESTION_FILES = pytest.mark.parametrize(
    "path", [QUESTIONS_FILE, SPANISH_FILE, SPANISH2_FILE], ids=["en", "es", "es2"]
)
SPANISH_FILES = pytest.mark.parametrize(
    ("path", "prefix"), [(SPANISH_FILE, "es-"), (SPANISH2_FILE, "es2-")], ids=["es", "es2"]
)
CORPUS = (REPO / ".." / "shared" / "data" / "regulations").resolve()

TITLES = {
    "wto/wto_customs_valuation_agreement.md": "Agreement on Customs Valuation",
    "wto/wto_rules_of_origin_agreement.md": "Agreement on Rules of Origin",
    "wto/wto_preshipment_inspection_agreement.md": "Agreement on Preshipment Inspection",
    "wto/wto_import_licensing_agreement.md": "Agreement on Import Licensing Procedures",
    "wco/revised_kyoto_convention.md": "Revised Kyoto Convention",
    "wco/hs_convention.md": "HS Convention",
}
REQUIRED = {"id", "question", "source", "locator", "note"}
ALLOWED = REQUIRED | {"alt"}
USC_LOCATOR = re.compile(r"^19 U\.S\.C\. § (?P<section>\d+[a-z]?)(?P<sub>(\([A-Za-z0-9]+\))*)$")
ROMAN = r"[IVXL]+"


@cache
def question_set(path: Path = QUESTIONS_FILE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def questions(path: Path = QUESTIONS_FILE) -> list[dict[str, Any]]:
    return list(question_set(path)["questions"])


def targets(q: dict[str, Any]) -> list[tuple[str, str]]:
    return [(q["source"], q["locator"])] + [(a["source"], a["locator"]) for a in q.get("alt") or []]


@cache
def english_text(source: str) -> str:
    """The document text, cut before the Dutch translation that follows some treaties."""
    text = (CORPUS / source).read_text(encoding="utf-8")
    for dutch_start in ("####Internationale overeenkomst", "####Internationaal Verdrag"):
        cut = text.find(dutch_start, 200)
        if cut > 0:
            text = text[:cut]
    return text


def headings(source: str) -> list[str]:
    """Markdown heading texts of the English part, whitespace collapsed."""
    return [
        " ".join(line.lstrip("#").split())
        for line in english_text(source).splitlines()
        if line.startswith("#")
    ]


def article_block(source: str, number: str) -> str:
    """Text of `### Article N` up to the next Article/Part/Annex heading."""
    text = english_text(source)
    start = re.search(rf"^###\s*Article\s+{number}\s*$", text, re.M)
    assert start, f"{source} has no Article {number}"
    next_part = re.compile(r"^###\s*(Article|PART|Annex|CHAPTER)\b", re.M | re.I)
    end = next_part.search(text, start.end())
    return text[start.end() : end.start() if end else len(text)]


def check_treaty_locator(source: str, locator: str) -> None:
    """Assert that every level of a treaty locator names a heading the document has."""
    title = TITLES[source]
    assert locator.startswith(title + " > "), f"{locator!r} should start with {title!r}"
    parts = locator[len(title) + 3 :].split(" > ")
    heads = headings(source)
    first = parts[0]
    if m := re.fullmatch(r"Article (\d+)", first):
        block = article_block(source, m.group(1))
        if len(parts) > 1:
            para = re.fullmatch(r"(\d+)(\([a-z]\))?", parts[1])
            assert para and len(parts) == 2, f"bad paragraph in {locator!r}"
            assert re.search(rf"^\s*{para.group(1)}\s*\.", block, re.M), locator
    elif re.fullmatch(rf"Annex {ROMAN}", first):
        assert first in heads, f"{source} has no {first}"
        if len(parts) > 1:
            assert len(parts) == 2 and parts[1] in heads, f"no heading {parts[1]!r} in {source}"
            assert parts[1] == "General Note" or parts[1].startswith("Note to Article ")
    elif first == "General Annex":
        assert source == "wco/revised_kyoto_convention.md"
        m = re.fullmatch(r"Chapter (\d+)", parts[1])
        assert m and f"CHAPTER {m.group(1)}" in heads, f"no {parts[1]} in {locator!r}"
        if len(parts) > 2:
            std = re.fullmatch(rf"{m.group(1)}\.\d+", parts[2])
            assert std and parts[2] in heads and len(parts) == 3, f"no standard in {locator!r}"
    elif first == "General Interpretative Rules":
        assert source == "wco/hs_convention.md"
        rule = re.fullmatch(r"Rule ([1-6])", parts[1])
        assert rule and len(parts) == 2, locator
        gir = english_text(source).split("GENERAL RULES FOR THE INTERPRETATION")[-1][:6000]
        assert re.search(rf"^{rule.group(1)}\.", gir, re.M), locator
    elif re.fullmatch(rf"Section {ROMAN}", first):
        assert first in heads, f"no {first} in {source}"
        if len(parts) > 1:
            note = re.fullmatch(r"Note (\d+)", parts[1])
            assert note and len(parts) == 2, f"bad section note in {locator!r}"
            text = english_text(source)
            start = text.index(f"###{first}\n")
            notes = text[start : text.index("###Chapter", start)]
            assert re.search(rf"(^|[.;:)\s]){note.group(1)}\.-", notes, re.M), locator
    else:
        pytest.fail(f"unrecognised locator {locator!r}")


def check_usc_locator(source: str, locator: str) -> None:
    """Assert that the section and subsection match the headers of the US Code chunk file."""
    m = USC_LOCATOR.match(locator)
    assert m, f"{locator!r} is not like '19 U.S.C. § 1592(c)'"
    text = (CORPUS / source).read_text(encoding="utf-8")
    section = re.search(r"^#### §\s*(\d+[a-z]?)\.", text, re.M)
    assert section and section.group(1) == m.group("section"), f"{source}: not § {m['section']}"
    sub = re.search(r"^##### \((\w+)\)", text, re.M)
    if m.group("sub"):
        first = m.group("sub")[1:].split(")")[0]
        assert sub and sub.group(1) == first, f"{source} is not subsection ({first})"


@QUESTION_FILES
def test_schema(path: Path) -> None:
    data = question_set(path)
    assert data["version"] == 1
    assert (REPO / data["corpus"]).resolve() == CORPUS
    assert data["source_only_prefixes"] == ["us-19-usc/"]
    for q in questions(path):
        assert REQUIRED <= set(q) <= ALLOWED, f"{q.get('id')}: keys {sorted(q)}"
        for key in REQUIRED:
            assert isinstance(q[key], str) and q[key].strip(), f"{q['id']}: empty {key}"
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", q["id"]), q["id"]
        assert q["question"].rstrip().endswith("?"), q["id"]
        for alt in q.get("alt") or []:
            assert set(alt) == {"source", "locator"}, f"{q['id']}: alt {alt}"
        assert len(set(targets(q))) == len(targets(q)), f"{q['id']}: repeated target"


def test_size() -> None:
    assert len(questions()) >= 70


@QUESTION_FILES
def test_no_duplicates(path: Path) -> None:
    qs = questions(path)
    ids = Counter(q["id"] for q in qs)
    assert [i for i, n in ids.items() if n > 1] == []
    texts = Counter(" ".join(re.findall(r"[a-z0-9]+", q["question"].lower())) for q in qs)
    assert [t for t, n in texts.items() if n > 1] == []


@needs_shared_regulations
@QUESTION_FILES
def test_sources_exist(path: Path) -> None:
    assert CORPUS.is_dir(), f"shared corpus missing at {CORPUS}"
    for q in questions(path):
        for source, _ in targets(q):
            assert not Path(source).is_absolute() and ".." not in Path(source).parts
            assert (CORPUS / source).is_file(), f"{q['id']}: {source} not in {CORPUS}"


@needs_shared_regulations
@QUESTION_FILES
def test_locators_name_real_parts(path: Path) -> None:
    for q in questions(path):
        for source, locator in targets(q):
            if source.startswith("us-19-usc/"):
                check_usc_locator(source, locator)
            else:
                check_treaty_locator(source, locator)


def test_spread_over_the_texts() -> None:
    qs = questions()
    folders = Counter(q["source"].split("/")[0] for q in qs if not q["id"].startswith("x-"))
    assert folders["us-19-usc"] >= 20 and folders["wto"] >= 20 and folders["wco"] >= 20, folders
    for doc in TITLES:
        assert any(q["source"] == doc for q in qs), f"no question on {doc}"
    spanning = [q for q in qs if len({s.split("/")[0] for s, _ in targets(q)}) > 1]
    assert len(spanning) >= 5


@SPANISH_FILES
def test_spanish_set(path: Path, prefix: str) -> None:
    """20 Spanish questions each: 7 US Code, 7 WTO, 6 WCO, every one a Spanish question."""
    data = question_set(path)
    assert data["language"] == "es"
    assert question_set(QUESTIONS_FILE).get("language", "en") == "en"
    qs = questions(path)
    assert len(qs) == 20
    for q in qs:
        assert q["id"].startswith(prefix), q["id"]
        assert "¿" in q["question"], f"{q['id']}: not a Spanish question"
    folders = Counter(q["source"].split("/")[0] for q in qs)
    assert folders == {"us-19-usc": 7, "wto": 7, "wco": 6}, folders
    assert any(q["source"] == "wco/hs_convention.md" for q in qs)
    assert any(q["source"] == "wco/revised_kyoto_convention.md" for q in qs)


def test_first_spanish_set_comparable_with_english() -> None:
    """Most passages of the first Spanish set are ones the English set expects."""
    english = {(q["source"], q["locator"]) for q in questions(QUESTIONS_FILE)}
    shared = [q["id"] for q in questions(SPANISH_FILE) if (q["source"], q["locator"]) in english]
    assert len(shared) >= 12, f"only {len(shared)} passages comparable with the English set"


def test_second_spanish_set_is_new() -> None:
    """The second Spanish set expects none of the first set's passages; about half are dev ones."""
    first = {(q["source"], q["locator"]) for q in questions(SPANISH_FILE)}
    qs = questions(SPANISH2_FILE)
    repeated = [q["id"] for q in qs if (q["source"], q["locator"]) in first]
    assert repeated == [], f"main passages already expected by the first Spanish set: {repeated}"
    dev = {(q["source"], q["locator"]) for q in questions(DEV_FILE)}
    from_dev = [q["id"] for q in qs if (q["source"], q["locator"]) in dev]
    assert 8 <= len(from_dev) <= 12, f"{len(from_dev)} passages shared with the dev set"


def test_ids_unique_across_sets() -> None:
    """No question id appears in two of the sets (English, dev, both Spanish)."""
    ids = Counter(
        q["id"]
        for path in (QUESTIONS_FILE, DEV_FILE, SPANISH_FILE, SPANISH2_FILE)
        for q in questions(path)
    )
    assert [i for i, n in ids.items() if n > 1] == []


@needs_shared_regulations
@QUESTION_FILES
def test_questions_are_paraphrased(path: Path) -> None:
    """No question repeats six consecutive words of the passage it should find."""

    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    for q in questions(path):
        doc = " " + " ".join(words((CORPUS / q["source"]).read_text(encoding="utf-8"))) + " "
        w = words(q["question"])
        copied = [
            " ".join(w[i : i + 6])
            for i in range(len(w) - 5)
            if f" {' '.join(w[i : i + 6])} " in doc
        ]
        assert copied == [], f"{q['id']} copies the text: {copied}"


@cache
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_retrieval", REPO / "benchmarks" / "bench_retrieval.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("returned", "expected", "hit"),
    [
        (
            "Agreement on Customs Valuation > Article 1 > 2(a)",
            "Agreement on Customs Valuation > Article 1 > 2",
            True,
        ),
        (
            "Agreement on Customs Valuation > Article 1",
            "Agreement on Customs Valuation > Article 1 > 2",
            True,
        ),
        (
            "Agreement on Customs Valuation > Article 12",
            "Agreement on Customs Valuation > Article 1",
            False,
        ),
        (
            "Agreement on Customs Valuation > Annex I > Note to Article 11",
            "Agreement on Customs Valuation > Annex I > Note to Article 1",
            False,
        ),
        ("Agreement on Customs Valuation", "Agreement on Customs Valuation > Article 1", False),
        (
            "Revised Kyoto Convention > General Annex > Chapter 6 > 6.6",
            "Revised Kyoto Convention > General Annex > Chapter 6 > 6.6",
            True,
        ),
        (
            "Revised Kyoto Convention > General Annex",
            "Revised Kyoto Convention > General Annex > Chapter 6 > 6.6",
            False,
        ),
        ("19 U.S.C.\u202f§\u202f1592(c)(4)", "19 U.S.C. § 1592(c)", True),
        ("19 U.S.C. § 1592a(a)", "19 U.S.C. § 1592", False),
        (
            "HS Convention > General Interpretative Rules > Rule 1-2",
            "HS Convention > General Interpretative Rules > Rule 2",
            True,
        ),
        (
            "HS Convention > General Interpretative Rules > Rule 4-5",
            "HS Convention > General Interpretative Rules > Rule 3",
            False,
        ),
        (
            "Revised Kyoto Convention > General Annex > Chapter 2 > E1-E7",
            "Revised Kyoto Convention > General Annex > Chapter 2",
            True,
        ),
        (
            "Agreement on Customs Valuation > Article 15 > 3-5",
            "Agreement on Customs Valuation > Article 15 > 4",
            True,
        ),
        (
            "Agreement on Customs Valuation > Article 1 > 2(b)-(c)",
            "Agreement on Customs Valuation > Article 1 > 2",
            True,
        ),
        (
            "Agreement on Customs Valuation > Annex I > General note > Sequential Application",
            "Agreement on Customs Valuation > Annex I > General Note",
            True,
        ),
        ("HS Convention > Section XVI > Note 3-5", "HS Convention > Section XVI > Note 2", False),
        ("HS Convention > Section XVI", "HS Convention > Section XVI > Note 2", True),
    ],
)
def test_benchmark_hit_rule(returned: str, expected: str, hit: bool) -> None:
    assert bench().locator_matches(returned, expected) is hit


def test_benchmark_scores_every_alternative() -> None:
    b = bench()
    loaded, source_only, corpus = b.load_question_set(QUESTIONS_FILE)
    assert corpus == CORPUS and len(loaded) == len(questions())
    by_id = {q.id: q for q in loaded}

    class P:
        def __init__(self, source: str, locator: str) -> None:
            self.source, self.locator, self.score = source, locator, 0.5

    q = by_id["cva-related-buyer-reject-price"]
    wrong = P(q.targets[0].source, "Agreement on Customs Valuation > Article 15")
    alt = P("us-19-usc/chunck-334.md", "anything: the US Code is scored by file")
    assert b.first_hit_rank([wrong, alt], q, source_only) == 2
    assert b.first_hit_rank([wrong], q, source_only) is None


@SPANISH_FILES
def test_benchmark_loads_spanish_set(path: Path, prefix: str) -> None:
    loaded, source_only, corpus = bench().load_question_set(path)
    assert corpus == CORPUS and source_only == ("us-19-usc/",)
    assert [q.id for q in loaded] == [q["id"] for q in questions(path)]
    assert all(q.id.startswith(prefix) for q in loaded)
    assert sum(len(q.targets) for q in loaded) == sum(len(targets(q)) for q in questions(path))
