"""The query plan: what an analytical question asks for, typed and validated, before any SQL.

Both engines fill a `QueryPlan` (the offline planner from rules, a language model from a JSON
schema); tools/plan_sql.py compiles it into one guarded SELECT with literal values written by
code; assistant/plan_render.py reads it back in one sentence and writes the answer.

    QueryPlan(shape="top", measures=["customs_value"], dimensions=["trader"], n=10,
              period=PeriodSpec(start=date(2025, 1, 1), end=date(2026, 1, 1), name="2025"))

Values in filters are codes the data uses (ISO2 countries, HS digits, trader IDs, office
names): the planner resolves words to codes before it builds a plan, and the compiler writes
them as SQL literals, so nothing the user typed reaches SQL text.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Measure = Literal[
    "customs_value", "invoice_value", "duty", "vat", "declarations", "items", "traders",
    "sellers", "origins", "net_mass", "quantity", "value_per_kg", "value_per_unit",
    "effective_duty_rate", "red_share", "yellow_share", "checked_share", "related_party_share",
    "audits", "audit_recoveries", "audit_penalties", "audit_additional_duty",
    "value_per_declaration",
]
Dimension = Literal[
    "trader", "seller", "hs_chapter", "hs_heading", "hs_subheading", "origin",
    "dispatch_country", "office", "transport_mode", "incoterm", "procedure", "channel",
    "preference", "aeo_status", "aeo", "sector", "region", "flow", "month", "quarter", "year",
    "declaration", "audit_outcome", "audit_type", "currency", "day",
]
Shape = Literal[
    "total", "breakdown", "top", "bottom", "change_ranking", "compare", "share", "vs_peers",
    "argmax", "argmin", "set_difference", "first_seen", "threshold",
]
Operator = Literal["eq", "in", "not_in", "prefix"]
Comparison = Literal["gt", "ge", "lt", "le"]

#: Measures read from the audits table (dated by opened_on), not from declarations.
AUDIT_MEASURES = frozenset({"audits", "audit_recoveries", "audit_penalties",
                            "audit_additional_duty"})
#: Dimensions audits can be grouped or filtered by.
AUDIT_DIMENSIONS = frozenset({
    "trader", "aeo_status", "aeo", "sector", "region", "month", "quarter", "year", "day",
    "audit_outcome", "audit_type",
})
#: Measures that are ratios (sum/sum or shares): they are not added up across groups.
RATIO_MEASURES = frozenset({
    "value_per_kg", "value_per_unit", "effective_duty_rate", "red_share", "yellow_share",
    "checked_share", "related_party_share", "value_per_declaration",
})
TIME_DIMENSIONS = frozenset({"day", "month", "quarter", "year"})
#: What a trader is (one value per trader): newcomers can be counted by these.
TRADER_ATTRIBUTES = frozenset({"sector", "region", "aeo_status", "aeo"})
MAX_N = 100


class PlanError(ValueError):
    """A plan that cannot be answered as asked (the message says why, for the officer)."""


class PeriodSpec(BaseModel):
    """A span of dates [start, end) and its name for sentences ("2025", "last quarter")."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    name: str = Field(default="", max_length=80)

    @model_validator(mode="after")
    def _ordered(self) -> PeriodSpec:
        if self.end <= self.start:
            raise PlanError(f"The period {self.name or self.start} ends before it starts.")
        return self

    def label(self) -> str:
        """The period's name, or its dates."""
        return self.name or f"{self.start} to {self.end}"


class Filter(BaseModel):
    """Keep only rows whose `dimension` is (or is not) one of `values`."""

    model_config = ConfigDict(frozen=True)

    dimension: Dimension
    op: Operator = "eq"
    values: list[str] = Field(min_length=1, max_length=50)
    labels: list[str] = Field(default_factory=list, max_length=50)  # words for the values

    def words(self) -> str:
        """The values as an officer reads them (names where known, else codes)."""
        shown = self.labels or self.values
        return " or ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")


class Threshold(BaseModel):
    """Keep only groups whose `measure` compares with `value` ("declarations above 1M")."""

    model_config = ConfigDict(frozen=True)

    measure: Measure
    op: Comparison = "gt"
    value: float


def _default_measures() -> list[Measure]:
    return ["customs_value"]


class QueryPlan(BaseModel):
    """One analytical question in a form code can check, explain and compile."""

    model_config = ConfigDict(frozen=True)

    shape: Shape
    measures: list[Measure] = Field(default_factory=_default_measures, min_length=1,
                                    max_length=4)
    dimensions: list[Dimension] = Field(default_factory=list, max_length=2)
    filters: list[Filter] = Field(default_factory=list, max_length=8)
    period: PeriodSpec | None = None
    compare_to: PeriodSpec | None = None  # the earlier period of compare / change_ranking /
    #                                        set_difference ("active in period, not in compare_to")
    flow: Literal["import", "export", "both"] = "import"
    related_party: bool | None = None
    n: int | None = None
    order: Literal["desc", "asc"] = "desc"  # top/argmax/increase: desc; bottom/argmin/decrease
    threshold: Threshold | None = None
    count_only: bool = False  # threshold / first_seen / set_difference: how many, not which;
    #                           breakdown: how many different groups
    share_of: Filter | None = None  # share: the part whose share of the whole is asked
    entity: Filter | None = None  # vs_peers: the one compared with the others

    @model_validator(mode="before")
    @classmethod
    def _one_currency(cls, data: Any) -> Any:
        return invoice_values_by_currency(data)

    @model_validator(mode="after")
    def _consistent(self) -> QueryPlan:
        check_plan(self)
        return self

    def with_changes(self, **changes: Any) -> QueryPlan:
        """A copy with some fields changed, validated again (the app's one-click changes)."""
        data = self.model_dump()
        data.update(changes)
        return QueryPlan.model_validate(data)


#: Shapes where invoice values can be kept apart by currency with one more grouping.
_CURRENCY_GROUPABLE = ("breakdown", "top", "bottom", "argmax", "argmin", "threshold", "compare",
                       "change_ranking")


def invoice_values_by_currency(data: Any) -> Any:
    """Invoice values are in each invoice's own currency and cannot be added across currencies:
    a plan measuring them without one currency filter gets currency as a grouping (a total
    becomes a breakdown by currency), or a PlanError where no grouping can be added."""
    if not isinstance(data, dict) or "invoice_value" not in (data.get("measures") or []):
        return data

    def field(item: Any, name: str) -> Any:
        return item.get(name) if isinstance(item, dict) else getattr(item, name, None)

    dims = list(data.get("dimensions") or [])
    one_currency = any(field(f, "dimension") == "currency" and field(f, "op") in (None, "eq")
                       and len(field(f, "values") or []) == 1
                       for f in data.get("filters") or [])
    if one_currency or "currency" in dims:
        return data
    shape = data.get("shape")
    if shape == "total":
        return {**data, "shape": "breakdown", "dimensions": ["currency"]}
    if shape in _CURRENCY_GROUPABLE and len(dims) < 2:
        return {**data, "dimensions": [*dims, "currency"]}
    raise PlanError("Invoice values are in each invoice's own currency and cannot be added "
                    "across currencies: name one currency (e.g. 'invoiced in EUR') or ask for "
                    "the customs value.")


def check_plan(plan: QueryPlan) -> None:
    """Raise PlanError when the plan contradicts itself or cannot be answered."""
    if plan.n is not None and not 1 <= plan.n <= MAX_N:
        raise PlanError(f"I can list between 1 and {MAX_N} rows; {plan.n} is not possible.")
    if plan.shape in ("top", "bottom", "change_ranking") and not plan.dimensions:
        raise PlanError("A ranking needs something to rank (traders, countries, offices...).")
    if plan.shape in ("breakdown", "argmax", "argmin") and not plan.dimensions:
        raise PlanError("A breakdown needs something to break the figures down by.")
    if plan.shape in ("compare", "change_ranking") and (plan.period is None
                                                          or plan.compare_to is None):
        raise PlanError("A comparison needs two periods.")
    if plan.shape == "set_difference" and (plan.period is None or plan.compare_to is None):
        raise PlanError("'Active in one period but not in another' needs both periods.")
    if plan.shape == "first_seen" and plan.period is None:
        raise PlanError("'New' needs the period they first appear in (e.g. 'new importers in "
                        "2025').")
    if plan.shape == "share" and plan.share_of is None and not plan.dimensions:
        raise PlanError("A share needs the part to measure against the whole.")
    if plan.shape == "vs_peers" and plan.entity is None:
        raise PlanError("A comparison with peers needs the trader to compare.")
    if plan.shape == "first_seen" and len(plan.dimensions) == 2 and not (
            plan.dimensions[0] == "trader" and plan.dimensions[1] in TRADER_ATTRIBUTES):
        raise PlanError("New traders can be grouped by their sector, region or AEO status; "
                        "other newcomers by nothing else.")
    if plan.count_only and plan.shape == "breakdown" and len(plan.dimensions) != 1:
        raise PlanError("I can count the different values of one grouping at a time.")
    if plan.shape == "threshold" and plan.threshold is None:
        raise PlanError("A threshold question needs the limit (e.g. above 1,000,000).")
    if plan.period is not None and plan.compare_to is not None \
            and plan.shape in ("compare", "change_ranking") \
            and plan.period.start < plan.compare_to.end and plan.compare_to.start < plan.period.end:
        raise PlanError(f"The two periods overlap ({plan.compare_to.label()} and "
                        f"{plan.period.label()}); compare periods that do not.")
    audit = [m for m in plan.measures if m in AUDIT_MEASURES]
    if audit and len(audit) != len(plan.measures):
        raise PlanError("Audit figures and declaration figures cannot be mixed in one answer.")
    audit_only = [d for d in plan.dimensions if d in ("audit_outcome", "audit_type")]
    audit_only += [f.dimension for f in plan.filters if f.dimension in ("audit_outcome",
                                                                        "audit_type")]
    if audit_only and not audit:
        raise PlanError(f"{', '.join(audit_only)} applies to audit figures only (number of "
                        "audits, audit recoveries).")
    if audit:
        wrong = [d for d in plan.dimensions if d not in AUDIT_DIMENSIONS]
        wrong += [f.dimension for f in plan.filters if f.dimension not in AUDIT_DIMENSIONS]
        if wrong:
            raise PlanError(f"Audits cannot be grouped or filtered by {', '.join(wrong)}.")
        if plan.shape not in ("total", "breakdown", "top", "bottom", "compare", "argmax",
                              "argmin", "change_ranking"):
            raise PlanError("For audits I can give totals, breakdowns, rankings and "
                            "comparisons.")
    if len(set(plan.dimensions)) != len(plan.dimensions):
        raise PlanError("The same grouping is asked twice.")


def plan_schema() -> dict[str, Any]:
    """The JSON schema of a plan (for a language model's constrained output)."""
    return QueryPlan.model_json_schema()
