"""The plan-example bank (assistant/plan_examples.yaml): grammar, audit rules and coverage.

Pure Python and fast: no database, no model. The allowed words come from tamga.plan.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest
import yaml

from tamga.plan import AUDIT_DIMENSIONS, AUDIT_MEASURES, Dimension, Measure, Shape

BANK = Path(__file__).resolve().parents[1] / "assistant" / "plan_examples.yaml"

SHAPES = get_args(Shape)
MEASURES = get_args(Measure)
DIMENSIONS = get_args(Dimension)


def _alt(words: tuple[str, ...]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


LINE = re.compile(
    rf"(?P<shape>{_alt(SHAPES)}) (?P<measure>{_alt(MEASURES)})"
    rf"(?: by (?P<dim1>{_alt(DIMENSIONS)})(?: (?P<dim2>{_alt(DIMENSIONS)}))?)?"
    r"(?: n (?P<n>100|[1-9][0-9]?))?"
    r"(?P<low> low)?"
    r"(?P<count> count)?"
    r"(?: above (?P<above>(?:0|[1-9][0-9]*)(?:\.[0-9]+)?))?"
)

AUDIT_SHAPES = {"total", "breakdown", "top", "bottom", "compare", "argmax", "argmin",
                "change_ranking"}
NEEDS_BY = {"breakdown", "top", "bottom", "argmax", "argmin", "change_ranking",
            "set_difference", "first_seen", "threshold"}
NO_BY = {"total", "compare", "vs_peers"}
RANKED = {"top", "bottom", "change_ranking"}  # these always carry n (10 when none is asked)
COUNTABLE = {"set_difference", "first_seen", "threshold"}

MIN_EXAMPLES = 160
MIN_PER_SHAPE = 8
MIN_PER_MEASURE = 3
MIN_PER_DIMENSION = 2
MIN_TWO_DIM_BREAKDOWNS = 8
MIN_COUNT = 10
MIN_LOW = 8
MIN_NONE = 15


def _load() -> list[dict]:
    data = yaml.safe_load(BANK.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("examples"), list)
    return data["examples"]


EXAMPLES = _load()
PARSED = [(ex, LINE.fullmatch(ex["plan"])) for ex in EXAMPLES if ex["plan"] != "none"]


def test_enough_examples_with_question_and_plan() -> None:
    assert len(EXAMPLES) >= MIN_EXAMPLES
    for ex in EXAMPLES:
        assert set(ex) == {"q", "plan"}, ex
        assert isinstance(ex["q"], str) and ex["q"].strip() == ex["q"] and ex["q"], ex
        assert isinstance(ex["plan"], str), ex


def test_no_duplicate_questions() -> None:
    counts = Counter(" ".join(ex["q"].lower().split()) for ex in EXAMPLES)
    assert [q for q, c in counts.items() if c > 1] == []


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda ex: ex["q"][:60])
def test_plan_matches_the_grammar(ex: dict) -> None:
    plan = ex["plan"]
    if plan == "none":
        return
    m = LINE.fullmatch(plan)
    assert m, f"not a plan line: {plan!r}"
    shape, measure = m["shape"], m["measure"]
    dims = [d for d in (m["dim1"], m["dim2"]) if d]
    assert len(set(dims)) == len(dims), f"same dimension twice: {plan!r}"
    if shape in NEEDS_BY:
        assert dims, f"{shape} needs a by: {plan!r}"
    if shape in NO_BY:
        assert not dims, f"{shape} takes no by: {plan!r}"
    assert (m["n"] is not None) == (shape in RANKED), f"n only (and always) on rankings: {plan!r}"
    assert not m["low"] or shape == "change_ranking", f"low is for biggest falls: {plan!r}"
    assert not m["count"] or shape in COUNTABLE, f"count on {shape}: {plan!r}"
    assert (m["above"] is not None) == (shape == "threshold"), f"above <-> threshold: {plan!r}"
    if measure in AUDIT_MEASURES:
        assert shape in AUDIT_SHAPES, f"audits cannot be asked as {shape}: {plan!r}"
        assert set(dims) <= AUDIT_DIMENSIONS, f"audits cannot be grouped so: {plan!r}"
    else:
        assert not {"audit_outcome", "audit_type"} & set(dims), f"audit-only dim: {plan!r}"


def test_coverage_minimums() -> None:
    assert all(m for _, m in PARSED), "a plan does not parse (see the grammar test)"
    parsed = [m for _, m in PARSED if m is not None]
    shapes = Counter(m["shape"] for m in parsed)
    measures = Counter(m["measure"] for m in parsed)
    dims = Counter(d for m in parsed for d in (m["dim1"], m["dim2"]) if d)
    short = {s: shapes[s] for s in SHAPES if shapes[s] < MIN_PER_SHAPE}
    assert not short, f"shapes under {MIN_PER_SHAPE}: {short}"
    short = {s: measures[s] for s in MEASURES if measures[s] < MIN_PER_MEASURE}
    assert not short, f"measures under {MIN_PER_MEASURE}: {short}"
    short = {s: dims[s] for s in DIMENSIONS if dims[s] < MIN_PER_DIMENSION}
    assert not short, f"dimensions under {MIN_PER_DIMENSION}: {short}"
    two_dim = [m for m in parsed if m["shape"] == "breakdown" and m["dim2"]]
    assert len(two_dim) >= MIN_TWO_DIM_BREAKDOWNS
    time = {"month", "quarter", "year"}
    assert any({m["dim1"], m["dim2"]} & time for m in two_dim), "no time x other breakdown"
    assert sum(bool(m["count"]) for m in parsed) >= MIN_COUNT
    assert sum(bool(m["low"]) for m in parsed) >= MIN_LOW
    assert sum(ex["plan"] == "none" for ex in EXAMPLES) >= MIN_NONE
