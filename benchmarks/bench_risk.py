"""Benchmark the declaration risk model on the KCS split (train 2020 -> test 2021 Q1).

Prints precision at 5% / 10% on the official split, the validation figures from inside the
training period, training time and scoring throughput (with and without reasons).
With --ablation it also trains (a) the model without the repeated-declared-value history and
(b) a plain LightGBM on the raw columns, to show where the accuracy comes from.

    .venv/bin/python benchmarks/bench_risk.py [--ablation] [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cli.console import progress  # noqa: E402
from tools.risk_features import HISTORY_KEYS, FeatureConfig, read_kcs  # noqa: E402
from tools.risk_model import (  # noqa: E402
    DEFAULT_PARAMS,
    auc,
    precision_at,
    score_lines,
    train_model,
)

T = TypeVar("T")
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "kcs"


def figures(labels: np.ndarray, scores: np.ndarray) -> str:
    """p@5%, p@10% and AUC on one line."""
    return (
        f"p@5% {precision_at(labels, scores, 0.05):.3f}  "
        f"p@10% {precision_at(labels, scores, 0.10):.3f}  AUC {auc(labels, scores) or 0:.3f}"
    )


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float, float]:
    """Run fn, return (result, wall seconds, CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def raw_baseline(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Plain LightGBM on the raw KCS columns (text codes as integer codes), 300 rounds."""
    import lightgbm as lgb

    cols = [c for c in train.columns if c not in ("declaration_id", "date", "fraud",
                                                   "critical_fraud")]
    both = pd.concat([train[cols], test[cols]], ignore_index=True)
    for col in cols:
        if not pd.api.types.is_numeric_dtype(both[col]):
            both[col] = pd.factorize(both[col], sort=True)[0].astype(float)
    x_train, x_test = both.iloc[: len(train)], both.iloc[len(train):]
    params = {k: v for k, v in DEFAULT_PARAMS.items() if k != "max_depth"}
    booster = lgb.train(params, lgb.Dataset(x_train, train["fraud"]), num_boost_round=300)
    return np.asarray(booster.predict(x_test, num_threads=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ablation", action="store_true")
    args = parser.parse_args()

    train = read_kcs([args.data / "df_syn_train_eng.csv"])
    test = read_kcs([args.data / "df_syn_valid_eng.csv"])
    unlabeled = test.drop(columns=["fraud", "critical_fraud"])
    labels = test["fraud"].to_numpy()

    model, train_wall, train_cpu = timed(train_model, train, progress=progress)
    scored, score_wall, score_cpu = timed(score_lines, model, unlabeled, explain_top=0)
    _, reasons_wall, _ = timed(score_lines, model, unlabeled)
    big = pd.concat([unlabeled] * 10, ignore_index=True)
    big["declaration_id"] = [f"B{i}" for i in range(len(big))]
    _, big_wall, _ = timed(score_lines, model, big, explain_top=0)

    v = model.validation
    print("Declaration risk model, KCS train 2020 -> test 2021 Q1")
    print(f"  lines: train {len(train):,} (fraud {train['fraud'].mean():.1%}), "
          f"test {len(test):,} (fraud {labels.mean():.1%})")
    if v is not None:
        print(f"  validation (fit < {v.cutoff}: {v.n_fit:,} lines, validate {v.n_valid:,}): "
              f"p@5% {v.precision_at_5pct:.3f}  p@10% {v.precision_at_10pct:.3f}  "
              f"AUC {v.auc or 0:.3f}  best round {v.best_iteration}")
    print(f"  test (official split):   {figures(labels, scored['score'].to_numpy())}"
          f"  ({model.num_rounds} rounds, {len(model.feature_names)} features)")
    print(f"  training (incl. validation fit): {train_wall:.1f} s wall, {train_cpu:.1f} s CPU")
    print(f"  scoring {len(test):,} lines, scores only: {score_wall:.2f} s "
          f"({len(test) / score_wall:,.0f} lines/s, {score_cpu:.2f} s CPU)")
    print(f"  scoring {len(test):,} lines with reasons: {reasons_wall:.2f} s "
          f"({len(test) / reasons_wall:,.0f} lines/s)")
    print(f"  scoring {len(big):,} lines, scores only: {big_wall:.2f} s "
          f"({len(big) / big_wall:,.0f} lines/s)")
    print("  top features: " + ", ".join(
        f"{f['feature']} {f['gain_share']:.0%}" for f in model.top_features(6)))

    if args.ablation:
        keys = tuple(k for k in HISTORY_KEYS if k not in ("value", "value_mass"))
        plain = train_model(train, config=FeatureConfig(history_keys=keys))
        s = score_lines(plain, unlabeled, explain_top=0)["score"].to_numpy()
        pv = plain.validation
        if pv is not None:
            print(f"  ablation, no repeated-value history: validation p@5% "
                  f"{pv.precision_at_5pct:.3f} p@10% {pv.precision_at_10pct:.3f} "
                  f"AUC {pv.auc or 0:.3f}; test {figures(labels, s)}")
        print(f"  baseline, plain LightGBM on raw columns: test "
              f"{figures(labels, raw_baseline(train, test))}")


if __name__ == "__main__":
    main()
