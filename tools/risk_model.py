"""Declaration risk scoring with labels: LightGBM on analyst features, with reasons in words.

Train on inspected KCS lines (`Fraud` = 1 when the inspection found fraud), rank new lines
by fraud score, and explain each score with its top contributing factors (per-line SHAP
values from LightGBM's `pred_contrib`), turned into sentences an officer can check.

    model = train_model(read_kcs([train_csv]))
    scored = score_lines(model, read_kcs([new_csv], require_label=False))
    report = evaluate([train_csv], [test_csv])   # precision at 5% / 10% of the test lines
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tamga.errors import ImportRejected
from tools.risk_features import (
    INFO_PREFIX,
    KCS_COLUMNS,
    REQUIRED_COLUMNS,
    FeatureConfig,
    build_features,
    read_kcs,
)

Progress = Callable[[str], None]
Row = dict[Hashable, Any]  # one line's features or fields, by column name

CURRENCY = "KRW"  # KCS Item Price is in Korean won.

# Fixed, deterministic LightGBM settings (chosen on the time-based validation split).
# One thread: on a busy 2-core machine OpenMP with 2 threads ran 3-5x slower than 1.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "max_depth": 8,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "max_cat_to_onehot": 4,
    "num_threads": 1,
    "deterministic": True,
    "force_col_wise": True,
    "seed": 0,
    "verbose": -1,
}
MAX_ROUNDS = 1000
EARLY_STOPPING = 50
DEFAULT_ROUNDS = 200  # used when the training data is too short in time to validate
VALIDATION_SHARE = 0.25  # the latest quarter of the training period validates
ROUNDS_GROWTH = 1.15  # the final model sees ~1/3 more data than the validation fit


@dataclass
class Validation:
    """Figures from the time-based validation split inside the training data."""

    cutoff: str
    n_fit: int
    n_valid: int
    precision_at_5pct: float
    precision_at_10pct: float
    auc: float | None
    best_iteration: int

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dict(self.__dict__)


@dataclass
class RiskModel:
    """A trained scorer: the booster plus the labeled lines its history features come from."""

    booster: Any
    feature_names: list[str]
    categorical: list[str]
    vocab: dict[str, dict[str, int]]
    reference: pd.DataFrame
    config: FeatureConfig
    params: dict[str, Any]
    num_rounds: int
    prior: float
    validation: Validation | None = None
    train_seconds: float = 0.0

    def top_features(self, n: int = 10) -> list[dict[str, Any]]:
        """Features with the largest share of total split gain."""
        gain = self.booster.feature_importance(importance_type="gain")
        total = float(gain.sum()) or 1.0
        order = np.argsort(-gain, kind="stable")[:n]
        return [
            {"feature": self.feature_names[i], "gain_share": round(float(gain[i]) / total, 4)}
            for i in order
        ]


# ---------------------------------------------------------------------------------------------
# Training


def train_model(
    train: pd.DataFrame,
    *,
    params: dict[str, Any] | None = None,
    config: FeatureConfig | None = None,
    validate: bool = True,
    progress: Progress | None = None,
) -> RiskModel:
    """Train the risk model on labeled lines (as returned by `read_kcs`).

    With `validate`, the latest quarter of the training period is held out first (its labels
    hidden from its features, as for real new lines) to pick the number of boosting rounds
    by early stopping and to report validation precision; then the model is refit on all lines.
    """
    lgb = _lightgbm()
    say = progress or (lambda _m: None)
    _check_lines(train, need_label=True)
    if train["fraud"].nunique() < 2:
        raise ImportRejected("The training lines need both fraud and non-fraud outcomes.")
    config = config or FeatureConfig()
    full_params = {**DEFAULT_PARAMS, **(params or {})}
    started = time.perf_counter()
    train = train.sort_values("date", kind="stable").reset_index(drop=True)

    validation = None
    rounds = DEFAULT_ROUNDS
    if validate:
        validation = _validate(train, config, full_params, say)
        if validation is not None:
            rounds = max(20, round(validation.best_iteration * ROUNDS_GROWTH))
    say(f"Building features for {len(train):,} training lines...")
    feats = build_features(train, None, config)
    names = [c for c in feats.columns if not c.startswith(INFO_PREFIX)]
    cats = [c for c in config.categorical if c in names]
    vocab = {c: {v: i for i, v in enumerate(sorted(feats[c].dropna().unique()))} for c in cats}
    matrix = _matrix(feats, names, vocab)
    say(f"Training LightGBM ({rounds} rounds, {len(names)} features)...")
    dataset = lgb.Dataset(
        matrix, label=train["fraud"].to_numpy(), feature_name=names, categorical_feature=cats
    )
    booster = lgb.train(full_params, dataset, num_boost_round=rounds)
    return RiskModel(
        booster=booster,
        feature_names=names,
        categorical=cats,
        vocab=vocab,
        reference=train,
        config=config,
        params=full_params,
        num_rounds=rounds,
        prior=float(train["fraud"].mean()),
        validation=validation,
        train_seconds=time.perf_counter() - started,
    )


def _validate(
    train: pd.DataFrame, config: FeatureConfig, params: dict[str, Any], say: Progress
) -> Validation | None:
    """Fit on the earlier part of the training period, early-stop on the latest part."""
    lgb = _lightgbm()
    days = train["date"].sort_values()
    cutoff = days.iloc[int(len(days) * (1 - VALIDATION_SHARE))]
    fit, valid = train[train["date"] < cutoff], train[train["date"] >= cutoff]
    if len(fit) < 200 or len(valid) < 50 or fit["fraud"].nunique() < 2:
        say("Training period too short for a time-based validation; using default rounds.")
        return None
    say(
        f"Validating: fit on {len(fit):,} lines before {cutoff:%Y-%m-%d}, "
        f"validate on {len(valid):,} later lines..."
    )
    fit_feats = build_features(fit, None, config)
    valid_feats = build_features(fit, valid, config)
    names = [c for c in fit_feats.columns if not c.startswith(INFO_PREFIX)]
    cats = [c for c in config.categorical if c in names]
    vocab = {c: {v: i for i, v in enumerate(sorted(fit_feats[c].dropna().unique()))} for c in cats}
    train_set = lgb.Dataset(
        _matrix(fit_feats, names, vocab),
        label=fit["fraud"].to_numpy(),
        feature_name=names,
        categorical_feature=cats,
    )
    valid_matrix = _matrix(valid_feats, names, vocab)
    valid_set = lgb.Dataset(valid_matrix, label=valid["fraud"].to_numpy(), reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(EARLY_STOPPING, verbose=False)],
    )
    best = int(booster.best_iteration or booster.current_iteration())
    scores = booster.predict(
        valid_matrix, num_iteration=best, num_threads=int(params.get("num_threads", 1))
    )
    labels = valid["fraud"].to_numpy()
    return Validation(
        cutoff=f"{cutoff:%Y-%m-%d}",
        n_fit=len(fit),
        n_valid=len(valid),
        precision_at_5pct=precision_at(labels, scores, 0.05),
        precision_at_10pct=precision_at(labels, scores, 0.10),
        auc=auc(labels, scores),
        best_iteration=best,
    )


def _lightgbm() -> Any:
    import lightgbm

    return lightgbm


def _matrix(feats: pd.DataFrame, names: list[str], vocab: dict[str, dict[str, int]]) -> np.ndarray:
    """Float matrix in `names` order; categorical values become codes, unseen ones NaN."""
    cols = []
    for name in names:
        col = feats[name]
        if name in vocab:
            col = col.map(vocab[name])
        cols.append(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float))
    return np.column_stack(cols) if cols else np.empty((len(feats), 0))


def _check_lines(lines: pd.DataFrame, need_label: bool) -> None:
    """Refuse frames that did not come through `read_kcs` (or lack the label when needed)."""
    needed = {KCS_COLUMNS[c] for c in REQUIRED_COLUMNS}
    if need_label:
        needed.add("fraud")
    missing = sorted(needed - set(lines.columns))
    if missing:
        raise ImportRejected(
            f"Lines lack column(s) {', '.join(missing)}; read them with read_kcs()."
        )
    if need_label and lines["fraud"].isna().any():
        raise ImportRejected("Every training line needs a Fraud label (0 or 1).")


# ---------------------------------------------------------------------------------------------
# Scoring and reasons


def score_lines(
    model: RiskModel,
    lines: pd.DataFrame,
    *,
    n_reasons: int = 3,
    explain_top: int | None = None,
) -> pd.DataFrame:
    """Fraud score (0-1) and reasons in words for each line, in the order given.

    History features for these lines use the model's labeled training lines plus earlier
    lines of `lines` (whose labels, if present, are ignored). Returns a frame with the same
    index as `lines` and columns declaration_id, score, reasons (list of strings).
    Reasons cost far more than scores (per-line SHAP values): with `explain_top=k` only the
    k highest-scored lines get them and the others get an empty list.
    """
    _check_lines(lines, need_label=False)
    feats = build_features(model.reference, lines, model.config)
    matrix = _matrix(feats, model.feature_names, model.vocab)
    threads = int(model.params.get("num_threads", 1))
    scores = model.booster.predict(matrix, num_threads=threads)
    if explain_top is None:
        chosen = np.arange(len(lines))
    else:
        chosen = np.sort(np.argsort(-scores, kind="stable")[: max(0, explain_top)])
    reasons: list[list[str]] = [[] for _ in range(len(lines))]
    if len(chosen):
        contrib = model.booster.predict(
            matrix[chosen], pred_contrib=True, num_threads=threads
        )[:, :-1]
        texts = explain(
            model, lines.iloc[chosen], feats.iloc[chosen], contrib, n_reasons=n_reasons
        )
        for row, text in zip(chosen, texts, strict=True):
            reasons[row] = text
    return pd.DataFrame(
        {"declaration_id": lines["declaration_id"].to_numpy(), "score": scores, "reasons": reasons},
        index=lines.index,
    )


@dataclass
class _Factor:
    name: str
    features: tuple[str, ...]
    sentence: Callable[[Row, Row], str]


def _num(x: float | None) -> str:
    """A number for a sentence: thousands separators, three significant digits below 100."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "?"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if x == 0:
        return "0"
    if abs(x) < 0.01:
        return "under 0.01"
    return f"{x:.3g}"


def _lines(n: float, kind: str = "") -> str:
    """'1 past line', '12 past lines', with thousands separators."""
    word = f"{kind} line" if kind else "line"
    return f"{n:,.0f} {word}" + ("" if n == 1 else "s")


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _history(who: str, name: str) -> Callable[[Row, Row], str]:
    def sentence(f: Row, _line: Row) -> str:
        n, nl = f.get(f"h_{name}_n"), f.get(f"h_{name}_nl")
        frauds = f.get(f"{INFO_PREFIX}{name}_frauds")
        if n is None or math.isnan(n):
            return f"{who} not given"
        if n == 0:
            return f"{who}'s first declaration line (no past record)"
        if not nl:
            return f"{who} has {_lines(n, 'earlier')}, none with an inspection result yet"
        return f"{who}'s past fraud rate {_pct(frauds / nl)} ({_lines(nl, 'past')})"

    return sentence


def _relation(what: str, name: str) -> Callable[[Row, Row], str]:
    def sentence(f: Row, _line: Row) -> str:
        n = f.get(f"h_{name}_n")
        if n is None or math.isnan(n):
            return f"no {what} given"
        if n == 0:
            return f"first declaration with this {what}"
        return f"importer used this {what} on {_lines(n, 'earlier')}"

    return sentence


def _relation_hs(f: Row, line: Row) -> str:
    n = f.get("h_importer_hs6_n")
    if not n:
        return f"first time this importer declares HS {line['hs6']}"
    return f"importer declared HS {line['hs6']} on {_lines(n, 'earlier')}"


def _unit_value(name: str) -> Callable[[Row, Row], str]:
    def sentence(f: Row, line: Row) -> str:
        where = f"HS {line['hs6']}" + (f" from {line['origin']}" if name == "hs6_origin" else "")
        ratio, pct = f.get(f"uv_{name}_ratio"), f.get(f"uv_{name}_pct")
        peers = f.get(f"uv_{name}_n") or 0
        if ratio is None or math.isnan(ratio):
            return f"too few earlier lines of {where} to compare the unit value (only {peers:,.0f})"
        median = f.get(f"{INFO_PREFIX}uv_{name}_median")
        if line["item_price"] < 1:
            return (
                f"declared value {_num(line['item_price'])} {CURRENCY}, under 1 {CURRENCY}, "
                f"for {where} (peer median {_num(median)} {CURRENCY}/kg, {_lines(peers)})"
            )
        if abs(ratio - 1) < 0.005:
            size = "at"
        elif ratio < 1:
            size = f"{100 * (1 - ratio):.0f}% below"
        elif ratio >= 2:
            size = f"{ratio:.1f} times"
        else:
            size = f"{100 * (ratio - 1):.0f}% above"
        return (
            f"unit value {size} the median for {where} "
            f"({_num(line['_uv'])} vs {_num(median)} {CURRENCY}/kg, "
            f"percentile {100 * (pct or 0.0):.0f} of {_lines(peers)})"
        )

    return sentence


def _repeat_value(f: Row, line: Row) -> str:
    n, nl, frauds = f.get("h_value_n"), f.get("h_value_nl"), f.get(f"{INFO_PREFIX}value_frauds")
    value = f"declared value {_num(line['item_price'])} {CURRENCY}"
    if not n:
        return f"{value} never declared before"
    if not nl:
        return f"{value} declared on {_lines(n, 'earlier')}, none inspected yet"
    return f"{value} seen on {_lines(nl, 'earlier')}, {_pct(frauds / nl)} of them fraudulent"


def _repeat_value_mass(f: Row, line: Row) -> str:
    n = f.get("h_value_mass_n")
    nl, frauds = f.get("h_value_mass_nl"), f.get(f"{INFO_PREFIX}value_mass_frauds")
    what = (
        f"same declared value and net mass ({_num(line['item_price'])} {CURRENCY}, "
        f"{_num(line['net_mass'])} kg)"
    )
    if not n:
        return "first line with this declared value and net mass"
    if not nl:
        return f"{what} on {_lines(n, 'earlier')}, none inspected yet"
    return f"{what} on {_lines(nl, 'earlier')}, {_pct(frauds / nl)} of them fraudulent"


def _goods_history(name: str) -> Callable[[Row, Row], str]:
    def sentence(f: Row, line: Row) -> str:
        where = f"HS {line['hs6']}" + (f" from {line['origin']}" if name == "hs6_origin" else "")
        nl, frauds = f.get(f"h_{name}_nl"), f.get(f"{INFO_PREFIX}{name}_frauds")
        if not nl:
            return f"no inspected past lines of {where}"
        return f"{where}: past fraud rate {_pct(frauds / nl)} ({_lines(nl, 'past')})"

    return sentence


def _tariff(f: Row, line: Row) -> str:
    return (
        f"tariff rate {_num(line['tax_rate'])}% (tax type {line['tax_type']}, "
        f"origin indicator {line['origin_indicator']})"
    )


def _route(f: Row, line: Row) -> str:
    if line["origin"] != line["departure"]:
        return f"origin {line['origin']} differs from country of departure {line['departure']}"
    return f"origin and departure both {line['origin']}"


def _amounts(f: Row, line: Row) -> str:
    return (
        f"declared {_num(line['item_price'])} {CURRENCY} for {_num(line['net_mass'])} kg "
        f"({_num(line['_uv'])} {CURRENCY}/kg)"
    )


def _goods(f: Row, line: Row) -> str:
    return f"goods class HS {line['hs6']} (chapter {line['hs6'][:2]})"


def _season(f: Row, line: Row) -> str:
    day = line["date"]
    return f"declared on {day:%A} {day.day} {day:%B}"


def _procedure(f: Row, line: Row) -> str:
    courier = line.get("courier")
    by = f", courier {courier}" if isinstance(courier, str) else ""
    return (
        f"procedure: office {line['office']}, import type {line['import_type']}, "
        f"use {line['import_use']}, payment {line['payment_type']}, "
        f"transport mode {line['transport_mode']}{by}"
    )


FACTORS: tuple[_Factor, ...] = (
    _Factor("repeat_value_mass", ("h_value_mass_n", "h_value_mass_nl", "h_value_mass_rate"),
            _repeat_value_mass),
    _Factor("repeat_value", ("h_value_n", "h_value_nl", "h_value_rate"), _repeat_value),
    _Factor("unit_value_hs6", ("uv_hs6_ratio", "uv_hs6_z", "uv_hs6_pct", "uv_hs6_n"),
            _unit_value("hs6")),
    _Factor("unit_value_hs6_origin",
            ("uv_hs6_origin_ratio", "uv_hs6_origin_z", "uv_hs6_origin_pct", "uv_hs6_origin_n"),
            _unit_value("hs6_origin")),
    _Factor("importer", ("h_importer_n", "h_importer_nl", "h_importer_rate"),
            _history("importer", "importer")),
    _Factor("declarant", ("h_declarant_n", "h_declarant_nl", "h_declarant_rate"),
            _history("declarant", "declarant")),
    _Factor("seller", ("h_seller_n", "h_seller_nl", "h_seller_rate"),
            _history("seller", "seller")),
    _Factor("hs6_history", ("h_hs6_n", "h_hs6_nl", "h_hs6_rate"), _goods_history("hs6")),
    _Factor("hs6_origin_history", ("h_hs6_origin_n", "h_hs6_origin_nl", "h_hs6_origin_rate"),
            _goods_history("hs6_origin")),
    _Factor("new_seller", ("h_importer_seller_n",), _relation("seller", "importer_seller")),
    _Factor("new_declarant", ("h_importer_declarant_n",),
            _relation("declarant", "importer_declarant")),
    _Factor("new_hs6", ("h_importer_hs6_n",), _relation_hs),
    _Factor("tariff", ("tax_rate", "tax_type", "origin_indicator"), _tariff),
    _Factor("route", ("origin_ne_departure", "origin", "departure"), _route),
    _Factor("amounts", ("log_net_mass", "log_item_price", "log_unit_value"), _amounts),
    _Factor("goods", ("hs2", "hs_chapter", "hs6_num"), _goods),
    _Factor("season", ("month", "weekday", "day_of_month"), _season),
    _Factor("procedure", ("office", "process_type", "import_type", "import_use", "payment_type",
                          "transport_mode", "courier"), _procedure),
)


def explain(
    model: RiskModel,
    lines: pd.DataFrame,
    feats: pd.DataFrame,
    contrib: np.ndarray,
    *,
    n_reasons: int = 3,
) -> list[list[str]]:
    """Turn per-feature SHAP contributions into the top factors of each line, in words.

    Contributions of the features of one factor (e.g. the unit-value comparison) are summed;
    the factors that raise the score most come first. A line with no factor raising its
    score gets the one that lowers it most, marked as such.
    """
    index = {name: i for i, name in enumerate(model.feature_names)}
    factors = [f for f in FACTORS if any(n in index for n in f.features)]
    summed = np.column_stack(
        [contrib[:, [index[n] for n in f.features if n in index]].sum(axis=1) for f in factors]
    )
    plain = lines.assign(
        _uv=lines["item_price"] / lines["net_mass"].where(lines["net_mass"] > 0)
    ).to_dict("records")
    info = feats.to_dict("records")
    order = np.argsort(-summed, axis=1, kind="stable")
    out: list[list[str]] = []
    for row, ranked in enumerate(order):
        chosen = [j for j in ranked[:n_reasons] if summed[row, j] > 0]
        if chosen:
            texts = [factors[j].sentence(info[row], plain[row]) for j in chosen]
        else:
            j = int(ranked[-1])
            texts = ["lowers the score: " + factors[j].sentence(info[row], plain[row])]
        out.append(texts)
    return out


# ---------------------------------------------------------------------------------------------
# Evaluation


def precision_at(labels: Sequence[float] | np.ndarray, scores: np.ndarray, share: float) -> float:
    """Share of truly fraudulent lines among the top-scored `share` of lines (ties: file order)."""
    y = np.asarray(labels, dtype=float)
    k = max(1, math.ceil(len(y) * share))
    top = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    return float(y[top].mean())


def auc(labels: Sequence[float] | np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (rank form, ties averaged); None when only one class."""
    y = np.asarray(labels, dtype=float)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


@dataclass
class Evaluation:
    """Result of `evaluate`: ranking quality on the test lines and the top flagged lines."""

    precision_at_5pct: float
    precision_at_10pct: float
    n_test: int
    n_train: int
    base_rate: float
    train_base_rate: float
    auc: float | None
    elapsed_s: float
    cpu_s: float
    train_s: float
    score_s: float
    num_rounds: int
    params: dict[str, Any]
    top_features: list[dict[str, Any]]
    validation: Validation | None
    top_lines: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The `tamga risk evaluate --json` object."""
        out = dict(self.__dict__)
        out["validation"] = self.validation.to_json() if self.validation else None
        return out

    def describe(self) -> str:
        """Readable summary for the terminal."""
        auc_text = f"{self.auc:.3f}" if self.auc is not None else "n/a"
        lines = [
            f"Trained on {self.n_train:,} lines (fraud rate {_pct(self.train_base_rate)}), "
            f"tested on {self.n_test:,} lines (fraud rate {_pct(self.base_rate)}).",
            f"Precision at 5%:  {self.precision_at_5pct:.3f}",
            f"Precision at 10%: {self.precision_at_10pct:.3f}",
            f"ROC AUC:          {auc_text}",
        ]
        if self.validation:
            v = self.validation
            lines.append(
                f"Validation inside the training data (fit before {v.cutoff}, "
                f"{v.n_valid:,} later lines): precision at 5% {v.precision_at_5pct:.3f}, "
                f"at 10% {v.precision_at_10pct:.3f}; {v.best_iteration} rounds."
            )
        lines.append(
            f"{self.num_rounds} boosting rounds; training {self.train_s:.1f} s, "
            f"scoring {self.score_s:.1f} s, total {self.elapsed_s:.1f} s "
            f"({self.cpu_s:.1f} s of CPU)."
        )
        lines.append(
            "Top features: " + ", ".join(f["feature"] for f in self.top_features[:6]) + "."
        )
        if self.top_lines:
            lines.append("")
            lines.append(f"Top {len(self.top_lines)} flagged test lines:")
            for n, line in enumerate(self.top_lines, 1):
                outcome = "fraud" if line["fraud"] == 1 else "no fraud"
                lines.append(
                    f"{n}. declaration {line['declaration_id']} ({line['date']}, importer "
                    f"{line['importer']}, HS {line['hs6']}): score {line['score']:.3f}, "
                    f"inspection found {outcome}"
                )
                lines.extend(f"   - {reason}" for reason in line["reasons"])
        return "\n".join(lines)


def evaluate(
    train_paths: Sequence[Path | str],
    test_paths: Sequence[Path | str],
    *,
    fmt: str = "kcs",
    top: int = 5,
    progress: Progress | None = None,
) -> Evaluation:
    """Train on the train files only, rank the test lines, report precision at 5% and 10%.

    Test labels are read only to measure the ranking; the features never see them.
    """
    if fmt != "kcs":
        raise ImportRejected(f"Unknown format {fmt!r}; only 'kcs' is supported.")
    say = progress or (lambda _m: None)
    started, cpu_started = time.perf_counter(), time.process_time()
    say(f"Reading {len(train_paths)} training file(s) and {len(test_paths)} test file(s)...")
    train = read_kcs(train_paths, require_label=True)
    test = read_kcs(test_paths, require_label=True)
    model = train_model(train, progress=say)
    say(f"Scoring {len(test):,} test lines...")
    scored_at = time.perf_counter()
    unlabeled = test.drop(columns=["fraud", "critical_fraud"], errors="ignore")
    scored = score_lines(model, unlabeled, explain_top=top)
    score_s = time.perf_counter() - scored_at
    labels = test["fraud"].to_numpy()
    scores = scored["score"].to_numpy()
    ranked = np.argsort(-scores, kind="stable")[:top]
    top_lines = [
        {
            "declaration_id": test["declaration_id"].iloc[i],
            "date": f"{test['date'].iloc[i]:%Y-%m-%d}",
            "importer": test["importer"].iloc[i],
            "hs6": test["hs6"].iloc[i],
            "score": round(float(scores[i]), 4),
            "fraud": int(labels[i]),
            "reasons": scored["reasons"].iloc[i],
        }
        for i in ranked
    ]
    return Evaluation(
        precision_at_5pct=precision_at(labels, scores, 0.05),
        precision_at_10pct=precision_at(labels, scores, 0.10),
        n_test=len(test),
        n_train=len(train),
        base_rate=float(labels.mean()),
        train_base_rate=model.prior,
        auc=auc(labels, scores),
        elapsed_s=round(time.perf_counter() - started, 2),
        cpu_s=round(time.process_time() - cpu_started, 2),
        train_s=round(model.train_seconds, 2),
        score_s=round(score_s, 2),
        num_rounds=model.num_rounds,
        params=model.params,
        top_features=model.top_features(10),
        validation=model.validation,
        top_lines=top_lines,
    )
