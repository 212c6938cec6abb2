"""Features for declaration risk scoring on KCS-format lines, built without leakage.

Two kinds of reference data feed the features:

* the *labeled* lines (the training files, with their `Fraud` outcome), and
* the *new* lines being scored (their labels, if any, are never read).

History features (per importer, declarant, seller, HS code, declared value, relationship)
for a line only use lines dated strictly before it: for a training line, earlier training
lines with their labels; for a new line, all labeled lines dated before it plus earlier new
lines counted without labels. Unit-value peer statistics (median, spread, percentile per HS
code and per HS code + origin) come from the labeled lines only; a training line's peers are
taken out-of-fold, so its own value never sits in its peer group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tamga.errors import ImportRejected

# KCS header -> internal name. Order is the order of the published files.
KCS_COLUMNS: dict[str, str] = {
    "Declaration ID": "declaration_id",
    "Date": "date",
    "Office ID": "office",
    "Process Type": "process_type",
    "Import Type": "import_type",
    "Import Use": "import_use",
    "Payment Type": "payment_type",
    "Mode of Transport": "transport_mode",
    "Declarant ID": "declarant",
    "Importer ID": "importer",
    "Seller ID": "seller",
    "Courier ID": "courier",
    "HS6 Code": "hs6",
    "Country of Departure": "departure",
    "Country of Origin": "origin",
    "Tax Rate": "tax_rate",
    "Tax Type": "tax_type",
    "Country of Origin Indicator": "origin_indicator",
    "Net Mass": "net_mass",
    "Item Price": "item_price",
    "Fraud": "fraud",
    "Critical Fraud": "critical_fraud",
}
LABEL_COLUMN = "Fraud"
OPTIONAL_COLUMNS = ("Critical Fraud",)
REQUIRED_COLUMNS = tuple(c for c in KCS_COLUMNS if c not in (LABEL_COLUMN, *OPTIONAL_COLUMNS))
NUMERIC_COLUMNS = ("tax_rate", "net_mass", "item_price")

# Categorical columns given to LightGBM as categoricals (codes learned from the labeled lines).
CATEGORICAL_FEATURES = (
    "office",
    "process_type",
    "import_type",
    "import_use",
    "payment_type",
    "transport_mode",
    "departure",
    "origin",
    "tax_type",
    "origin_indicator",
    "courier",
    "hs2",
)

# Entities whose past record (line count, labeled count, past fraud rate) becomes features.
HISTORY_KEYS: dict[str, tuple[str, ...]] = {
    "importer": ("importer",),
    "declarant": ("declarant",),
    "seller": ("seller",),
    "hs6": ("hs6",),
    "hs6_origin": ("hs6", "origin"),
    "value": ("item_price",),
    "value_mass": ("item_price", "net_mass"),
    "importer_seller": ("importer", "seller"),
    "importer_declarant": ("importer", "declarant"),
    "importer_hs6": ("importer", "hs6"),
}
# Peer groups for the unit-value comparison.
PEER_KEYS: dict[str, tuple[str, ...]] = {
    "hs6": ("hs6",),
    "hs6_origin": ("hs6", "origin"),
}
MIN_PEERS = 3
# Columns with this prefix explain a line (e.g. past fraud counts) but are not model features.
INFO_PREFIX = "info_"
PRIOR_STRENGTH = 2.0


@dataclass
class FeatureConfig:
    """Which feature groups to build (the defaults are the ones chosen on validation)."""

    history_keys: tuple[str, ...] = tuple(HISTORY_KEYS)
    peer_keys: tuple[str, ...] = tuple(PEER_KEYS)
    categorical: tuple[str, ...] = CATEGORICAL_FEATURES
    folds: int = 5
    seed: int = 0


def read_kcs(paths: Sequence[Path | str], *, require_label: bool = True) -> pd.DataFrame:
    """Read KCS declaration-line CSV files into one frame with internal column names.

    Raises ImportRejected naming the file and the column when a file is missing, lacks a
    required column, or holds a value that cannot be read (a bad date, number or label).
    """
    if not paths:
        raise ImportRejected("No KCS file given.")
    frames = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise ImportRejected(f"File not found: {path}")
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ImportRejected(f"{path}: not a readable CSV file ({exc}).") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
        needed = [*REQUIRED_COLUMNS, LABEL_COLUMN] if require_label else list(REQUIRED_COLUMNS)
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            raise ImportRejected(f"{path}: missing KCS column(s) {names}.")
        frames.append(_parse(frame, path, require_label))
    return pd.concat(frames, ignore_index=True)


def _parse(frame: pd.DataFrame, path: Path, require_label: bool) -> pd.DataFrame:
    """Typed, renamed copy of one raw KCS frame; errors name the column and the first bad line."""
    keep = [c for c in KCS_COLUMNS if c in frame.columns]
    out = frame[keep].rename(columns=KCS_COLUMNS)
    for col in out.columns:
        out[col] = out[col].str.strip()

    def bad(col: str, mask: pd.Series, what: str) -> None:
        if mask.any():
            first = int(np.flatnonzero(mask.to_numpy())[0])
            header = next(k for k, v in KCS_COLUMNS.items() if v == col)
            value = frame[header].iloc[first]
            raise ImportRejected(
                f"{path}: column {header!r} line {first + 2}: {what} (got {value!r})."
            )

    dates = pd.to_datetime(out["date"], format="%Y-%m-%d", errors="coerce")
    bad("date", dates.isna(), "expected a date YYYY-MM-DD")
    out["date"] = dates
    for col in NUMERIC_COLUMNS:
        values = pd.to_numeric(out[col], errors="coerce")
        bad(col, values.isna() & out[col].notna(), "expected a number")
        bad(col, values < 0, "expected a number >= 0")
        out[col] = values.astype(float)
    bad("hs6", out["hs6"].isna(), "expected an HS code")
    out["hs6"] = out["hs6"].str.zfill(6)
    if "fraud" in out.columns:
        labels = pd.to_numeric(out["fraud"], errors="coerce")
        if require_label:
            bad("fraud", ~labels.isin([0, 1]), "expected 0 or 1")
        out["fraud"] = labels.where(labels.isin([0, 1])).astype(float)
    if "critical_fraud" in out.columns:
        out["critical_fraud"] = pd.to_numeric(out["critical_fraud"], errors="coerce")
    return out


# ---------------------------------------------------------------------------------------------
# Feature building


def build_features(
    labeled: pd.DataFrame, new: pd.DataFrame | None = None, config: FeatureConfig | None = None
) -> pd.DataFrame:
    """Feature frame for `new` lines (or for the labeled lines themselves when `new` is None).

    `labeled` are the reference lines with their `fraud` outcome. The `fraud` column of `new`
    is dropped before anything is computed, so a new line's features never see its label.
    """
    config = config or FeatureConfig()
    labeled = labeled.reset_index(drop=True)
    if new is None:
        target = labeled
        history_frame = labeled.assign(_y=labeled["fraud"].astype(float), _new=False)
    else:
        target = new.drop(columns=["fraud", "critical_fraud"], errors="ignore").reset_index(
            drop=True
        )
        history_frame = pd.concat(
            [
                labeled.assign(_y=labeled["fraud"].astype(float), _new=False),
                target.assign(_y=np.nan, _new=True),
            ],
            ignore_index=True,
        )
    features = _basic_features(target)
    rows = history_frame.index[history_frame["_new"]] if new is not None else history_frame.index
    prior = _past_prior(history_frame)
    for name in config.history_keys:
        hist = _past_stats(history_frame, HISTORY_KEYS[name], prior)
        hist = hist.loc[rows].reset_index(drop=True)
        features[f"h_{name}_n"] = hist["n"]
        if name.startswith("importer_"):
            continue  # relationship: only how often the pair met before
        features[f"h_{name}_nl"] = hist["nl"]
        features[f"h_{name}_rate"] = hist["rate"]
        features[f"{INFO_PREFIX}{name}_frauds"] = hist["s"]
    luv_ref = _log_unit_value(labeled)
    luv_new = _log_unit_value(target)
    for name in config.peer_keys:
        keys = PEER_KEYS[name]
        if new is None:
            peer = _peer_stats_oof(labeled, luv_ref, keys, config.folds, config.seed)
        else:
            peer = _peer_stats(labeled, luv_ref, target, luv_new, keys)
        for stat in ("ratio", "z", "pct", "n"):
            features[f"uv_{name}_{stat}"] = peer[stat].to_numpy()
        features[f"{INFO_PREFIX}uv_{name}_median"] = np.exp(peer["median"].to_numpy())
    return features


def _basic_features(lines: pd.DataFrame) -> pd.DataFrame:
    """Features that need no reference data: amounts, tariff, route, season, codes."""
    out = pd.DataFrame(index=lines.index)
    out["tax_rate"] = lines["tax_rate"]
    out["log_net_mass"] = np.log1p(lines["net_mass"])
    out["log_item_price"] = np.log1p(lines["item_price"])
    out["log_unit_value"] = _log_unit_value(lines)
    out["origin_ne_departure"] = (lines["origin"] != lines["departure"]).astype(float)
    out["month"] = lines["date"].dt.month.astype(float)
    out["weekday"] = lines["date"].dt.day_of_week.astype(float)
    out["day_of_month"] = lines["date"].dt.day.astype(float)
    out["hs_chapter"] = pd.to_numeric(lines["hs6"].str[:2], errors="coerce")
    out["hs6_num"] = pd.to_numeric(lines["hs6"], errors="coerce")
    for col in CATEGORICAL_FEATURES:
        out[col] = lines["hs6"].str[:2] if col == "hs2" else lines[col]
    return out


def _log_unit_value(lines: pd.DataFrame) -> pd.Series:
    """log(price per kg); prices under 1 count as 1, lines without mass get NaN."""
    mass = lines["net_mass"].where(lines["net_mass"] > 0)
    return pd.Series(np.log(lines["item_price"].clip(lower=1.0) / mass), index=lines.index)


def _group_codes(frame: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """One integer per distinct key combination; -1 where any key is missing."""
    codes = frame.groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
    missing = frame[list(keys)].isna().any(axis=1).to_numpy()
    return np.where(missing, -1, codes)


def _past_prior(frame: pd.DataFrame) -> np.ndarray:
    """Per line: the fraud rate of all labeled lines dated strictly before it (Laplace-smoothed).

    Used as the prior that entity rates shrink towards, so that even the prior never looks
    at the present or the future."""
    day = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    y = frame["_y"].to_numpy(dtype=float)
    daily = (
        pd.DataFrame({"d": day, "nl": ~np.isnan(y) * 1.0, "s": np.nan_to_num(y)})
        .groupby("d", sort=True)
        .sum()
    )
    past = daily.cumsum() - daily
    rate = (past["s"] + 1.0) / (past["nl"] + 2.0)
    return rate.reindex(day).to_numpy()


def _past_stats(frame: pd.DataFrame, keys: Sequence[str], prior: np.ndarray) -> pd.DataFrame:
    """Per line: lines with the same key on strictly earlier dates (n), how many of them carry
    a label (nl), how many of those were fraud (s) and the rate shrunk towards `prior`, the
    per-line past base rate (rate). Same-day lines are not counted."""
    day = frame["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    group = _group_codes(frame, keys)
    y = frame["_y"].to_numpy(dtype=float)
    daily = (
        pd.DataFrame(
            {"g": group, "d": day, "n": 1.0, "nl": ~np.isnan(y) * 1.0, "s": np.nan_to_num(y)}
        )
        .groupby(["g", "d"], sort=True)
        .sum()
    )
    past = daily.groupby(level="g").cumsum() - daily
    index = pd.MultiIndex.from_arrays([group, day], names=["g", "d"])
    out = past.reindex(index)[["n", "nl", "s"]].reset_index(drop=True)
    out["rate"] = (out["s"] + PRIOR_STRENGTH * prior) / (out["nl"] + PRIOR_STRENGTH)
    out.index = frame.index
    out.loc[group < 0, ["n", "nl", "s", "rate"]] = np.nan
    return out


def _peer_stats(
    ref: pd.DataFrame,
    ref_luv: pd.Series,
    query: pd.DataFrame,
    query_luv: pd.Series,
    keys: Sequence[str],
) -> pd.DataFrame:
    """Compare each query line's log unit value with its peer group in `ref`.

    Returns ratio (unit value / peer median), z (robust z-score of the log unit value),
    pct (share of peers with a lower unit value, ties counted half) and n (peer count).
    Groups with fewer than MIN_PEERS peers give NaN.
    """
    key_list = list(keys)
    both = pd.concat([ref[key_list], query[key_list]], ignore_index=True)
    group = _group_codes(both, key_list)
    g_ref, g_q = group[: len(ref)], group[len(ref) :]
    v_ref, v_q = ref_luv.to_numpy(dtype=float), query_luv.to_numpy(dtype=float)
    ok = (g_ref >= 0) & ~np.isnan(v_ref)
    g_ref, v_ref = g_ref[ok], v_ref[ok]
    stats = pd.DataFrame({"g": g_ref, "v": v_ref}).groupby("g")["v"].agg(["median", "count"])
    dev = np.abs(v_ref - stats["median"].reindex(g_ref).to_numpy())
    stats["mad"] = pd.Series(dev).groupby(g_ref).median()
    looked = stats.reindex(g_q)
    med, cnt = looked["median"].to_numpy(), looked["count"].to_numpy()
    scale = np.maximum(1.4826 * looked["mad"].to_numpy(), 0.25)
    # Percentile within the group: rank values globally, then search (group, rank) pairs.
    all_vals = np.concatenate([v_ref, np.nan_to_num(v_q, nan=0.0)])
    _, inverse = np.unique(all_vals, return_inverse=True)
    width = int(inverse.max()) + 2
    comp_ref = np.sort(g_ref.astype(np.int64) * width + inverse[: len(v_ref)])
    comp_q = g_q.astype(np.int64) * width + inverse[len(v_ref) :]
    below = np.searchsorted(comp_ref, comp_q, side="left")
    upto = np.searchsorted(comp_ref, comp_q, side="right")
    start = np.searchsorted(comp_ref, g_q.astype(np.int64) * width, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = (below - start + 0.5 * (upto - below)) / cnt
        out = pd.DataFrame(
            {
                "ratio": np.exp(v_q - med),
                "z": (v_q - med) / scale,
                "pct": pct,
                "n": np.nan_to_num(cnt, nan=0.0),
                "median": med,
            }
        )
    thin = ~(cnt >= MIN_PEERS) | np.isnan(v_q) | (g_q < 0)
    out.loc[thin, ["ratio", "z", "pct", "median"]] = np.nan
    return out


def _peer_stats_oof(
    ref: pd.DataFrame, luv: pd.Series, keys: Sequence[str], folds: int, seed: int
) -> pd.DataFrame:
    """Peer statistics for the labeled lines themselves, each fold against the other folds."""
    fold = np.random.default_rng(seed).integers(0, folds, size=len(ref))
    parts = []
    for k in range(folds):
        inside, outside = fold == k, fold != k
        part = _peer_stats(
            ref[outside], luv[outside], ref[inside], luv[inside], keys
        )
        part.index = np.flatnonzero(inside)
        parts.append(part)
    return pd.concat(parts).sort_index()

