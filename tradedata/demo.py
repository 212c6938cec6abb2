"""Seeded, realistic demo trade data with planted anomalies (`tamga demo`).

The generator pictures a customs administration that reports in USD (see demo_vocab.py):
traders with sectors and sizes, supplier relations ("slots": a supplier, an origin and the
goods bought from it), declarations with offices, brokers, procedures and incoterms, and
declaration items with HS-specific prices, duty rates, preferences and VAT. Everything is
vectorised with numpy and bulk-loaded into DuckDB through Arrow; DuckDB formats the
identifiers and sorts the rows (declarations by date and trader, items by trader and date,
items carrying copies of their declaration's trader, date and flow) so that per-trader and
per-period scans stay fast.

Anomalies are planted for a few dozen traders and listed in `<db stem>.truth.csv` next to
the database (never inside it): undervaluation, misclassification, origin switching,
split consignments and related-party pricing.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tamga.errors import TamgaError
from tradedata import demo_vocab as V

Progress = Callable[[str], None]
ANOMALY_TYPES = ("undervaluation", "misclassification", "origin_switching",
                 "split_consignment", "related_party_pricing")
MIN_ITEMS = 2_000
MAX_ITEMS = 20_000_000
K_ORIGINS = 8  # origins kept per product


@dataclass
class DemoSummary:
    """What `generate_demo` built, for the CLI and for tests."""

    db_path: Path
    truth_path: Path
    seed: int
    traders: int
    declarations: int
    items: int
    audits: int
    date_from: date
    date_to: date
    elapsed_s: float
    size_bytes: int
    anomalies: dict[str, int] = field(default_factory=dict)  # truth rows per type
    anomaly_traders: int = 0

    def describe(self) -> str:
        """A few readable lines about the database that was built."""
        planted = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.anomalies.items())
        return "\n".join([
            f"Built demo trade database {self.db_path} ({self.size_bytes / 1e6:,.1f} MB) "
            f"in {self.elapsed_s:,.1f} s",
            f"  {self.traders:,} traders, {self.declarations:,} declarations, "
            f"{self.items:,} items, {self.audits:,} audits",
            f"  period {self.date_from} to {self.date_to}, seed {self.seed}, "
            "reporting currency USD",
            f"  planted anomalies for {self.anomaly_traders} traders (item rows: {planted});",
            f"  ground truth for evaluation only: {self.truth_path}",
        ])


def truth_path_for(db_path: Path) -> Path:
    """Where the ground-truth file of a demo database lives: next to it, `<stem>.truth.csv`."""
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}.truth.csv")


def _month_start(d: date, add: int = 0) -> date:
    m = d.year * 12 + d.month - 1 + add
    return date(m // 12, m % 12 + 1, 1)


def default_end_month(today: date | None = None) -> date:
    """The first day of last month: the default last month of demo data."""
    return _month_start(today or date.today(), -1)


def generate_demo(
    db_path: Path,
    items: int = 500_000,
    seed: int = 7,
    progress: Progress | None = None,
    end_month: date | None = None,
) -> DemoSummary:
    """Build a new demo database at db_path (replacing any existing one atomically).

    Deterministic given `seed` and `end_month` (default: last month). The ~36 months of
    data end with `end_month`; traders and declarations scale with `items`.
    """
    if not MIN_ITEMS <= items <= MAX_ITEMS:
        raise TamgaError(f"--rows must be between {MIN_ITEMS:,} and {MAX_ITEMS:,} (got {items:,}).")
    import duckdb

    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    db_path = Path(db_path).expanduser().resolve()
    truth = truth_path_for(db_path)
    tmp = db_path.with_name(f".{db_path.name}.building-{os.getpid()}")
    tmp_truth = truth.with_name(f".{truth.name}.building-{os.getpid()}")
    end = _month_start(end_month or default_end_month())
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp, tmp_truth, Path(f"{tmp}.wal"))
        counts = _build(tmp, tmp_truth, items, seed, end, say)
        _remove(Path(f"{db_path}.wal"))
        os.replace(tmp, db_path)
        os.replace(tmp_truth, truth)
    except (OSError, duckdb.Error) as exc:
        raise TamgaError(f"Could not build the demo database at {db_path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            _remove(tmp, tmp_truth, Path(f"{tmp}.wal"))
    elapsed = time.perf_counter() - started
    summary = DemoSummary(
        db_path=db_path, truth_path=truth, seed=seed, elapsed_s=elapsed,
        size_bytes=db_path.stat().st_size, **counts,
    )
    say(f"Done in {elapsed:,.1f} s.")
    return summary


def _remove(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


# --------------------------------------------------------------------------- products


@dataclass
class Products:
    """Goods as parallel arrays: catalogue products first, then long-tail subheadings."""

    hs6: list[str]
    code: list[str]  # national tariff line (10 digits imports, 8 digits exports)
    chapter: np.ndarray
    uv: np.ndarray  # USD per kg, median
    duty: np.ndarray  # MFN %
    unit: np.ndarray  # index into UNITS
    kgpu: np.ndarray  # kg per unit of quantity
    line_kg: np.ndarray  # typical kg per declaration line
    air: np.ndarray  # share flown
    export: np.ndarray  # domestic produce (origin = home)
    desc_start: np.ndarray
    desc_n: np.ndarray
    origins: np.ndarray  # (n, K) country index
    cum: np.ndarray  # (n, K) cumulative probabilities
    prob: np.ndarray  # (n, n_countries) dense probabilities
    texts: list[str]
    import_pool: dict[str, np.ndarray]
    export_pool: dict[str, np.ndarray]
    tail_pool: dict[str, np.ndarray]
    index: dict[str, int]  # hs6 -> product


UNITS = ("kg", "u", "pr", "l")


def _parse_catalogue() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sector = ""
    for raw in V.CATALOGUE.strip().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("["):
            sector = line.strip("[]")
            continue
        hs6, uv, duty, unit, line_kg, air, origins, texts = line.split("|")
        unit_name, _, kgpu = unit.partition(":")
        rows.append({
            "hs6": hs6, "sector": sector, "uv": float(uv), "duty": float(duty),
            "unit": UNITS.index(unit_name), "kgpu": float(kgpu or 1), "line_kg": float(line_kg),
            "air": float(air),
            "origins": {c: float(w) for c, w in (o.split(":") for o in origins.split())},
            "texts": [t.strip() for t in texts.split(";")],
        })
    return rows


def _countries(catalogue: list[dict[str, Any]]) -> list[str]:
    found = {V.HOME, *V.SWITCH_ORIGINS, *V.FOREIGN, *V.ROAD_ORIGINS}
    for hubs in V.TRANSSHIPMENT_HUBS.values():
        found.update(hubs)
    for row in catalogue:
        found.update(row["origins"])
    return sorted(found)


def _build_products(rng: np.random.Generator, subheadings: list[tuple[str, str]],
                    countries: list[str]) -> Products:
    cat = _parse_catalogue()
    cidx = {c: i for i, c in enumerate(countries)}
    known = {r["hs6"] for r in cat}
    rows: list[dict[str, Any]] = [dict(r) for r in cat]
    for r in rows:
        r["sectors"] = {r["sector"]}

    # Long tail: every other subheading of a sector's chapters, priced like its chapter.
    by_chapter: dict[str, list[dict[str, Any]]] = {}
    for r in cat:
        if V.HOME not in r["origins"]:
            by_chapter.setdefault(r["hs6"][:2], []).append(r)
    seen_texts = {t for r in cat for t in r["texts"]}
    tail_sectors: dict[str, set[str]] = {}
    for key, sector in V.SECTORS.items():
        for ch in sector.chapters:
            tail_sectors.setdefault(ch, set()).add(key)
    sector_mix: dict[str, dict[str, float]] = {}
    for key in V.SECTORS:
        mix: dict[str, float] = {}
        for r in cat:
            if r["sector"] == key and V.HOME not in r["origins"]:
                for c, w in r["origins"].items():
                    mix[c] = mix.get(c, 0.0) + w
        top = sorted(mix.items(), key=lambda kv: (-kv[1], kv[0]))[:K_ORIGINS]
        sector_mix[key] = dict(top) or {"CN": 50.0, "US": 30.0, "MX": 20.0}
    chapter_prices = {
        ch: (float(np.median([p["uv"] for p in peers])),
             float(np.median([p["duty"] for p in peers])),
             float(np.median([p["line_kg"] for p in peers])))
        for ch, peers in by_chapter.items()
    }
    for code, text in subheadings:
        ch = code[:2]
        if code in known or ch not in tail_sectors or text in seen_texts:
            continue
        seen_texts.add(text)
        owner = sorted(tail_sectors[ch])[0]
        uv, duty, line_kg = chapter_prices.get(ch, (4.0, 10.0, 3000.0))
        rows.append({
            "hs6": code, "sector": owner, "sectors": tail_sectors[ch], "uv": uv, "duty": duty,
            "unit": 0, "kgpu": 1.0, "line_kg": line_kg, "air": 0.05,
            "origins": sector_mix[owner], "texts": [text],
        })

    n = len(rows)
    origins = np.zeros((n, K_ORIGINS), dtype=np.int16)
    cum = np.ones((n, K_ORIGINS))
    prob = np.zeros((n, len(countries)))
    texts: list[str] = []
    desc_start = np.zeros(n, dtype=np.int32)
    desc_n = np.zeros(n, dtype=np.int32)
    codes: list[str] = []
    suffixes = ("0000", "1000", "9000", "0010", "1010", "9090", "2000", "0090")
    for i, r in enumerate(rows):
        items = sorted(r["origins"].items(), key=lambda kv: (-kv[1], kv[0]))[:K_ORIGINS]
        w = np.array([x[1] for x in items], dtype=float)
        w /= w.sum()
        for j, (c, p) in enumerate(zip([x[0] for x in items], w, strict=True)):
            origins[i, j] = cidx[c]
            prob[i, cidx[c]] = p
        cum[i, : len(items)] = np.cumsum(w)
        cum[i, len(items) - 1:] = 1.0
        origins[i, len(items):] = origins[i, 0]
        desc_start[i] = len(texts)
        desc_n[i] = len(r["texts"])
        texts.extend(r["texts"])
        export = V.HOME in r["origins"]
        codes.append(r["hs6"] + ("00" if export else suffixes[int(rng.integers(len(suffixes)))]))

    def arr(key: str, dtype: Any = float) -> np.ndarray:
        return np.array([r[key] for r in rows], dtype=dtype)

    export_flags = np.array([V.HOME in r["origins"] for r in rows])
    n_cat = len(cat)
    import_pool: dict[str, np.ndarray] = {}
    export_pool: dict[str, np.ndarray] = {}
    tail_pool: dict[str, np.ndarray] = {}
    for key, sector in V.SECTORS.items():
        own = {key, *sector.borrows}
        import_pool[key] = np.array([i for i, r in enumerate(rows[:n_cat])
                                     if r["sector"] in own and not export_flags[i]], dtype=np.int32)
        export_pool[key] = np.array([i for i, r in enumerate(rows[:n_cat])
                                     if r["sector"] == key and export_flags[i]], dtype=np.int32)
        tail_pool[key] = np.array([i for i in range(n_cat, n) if key in rows[i]["sectors"]],
                                  dtype=np.int32)
        if len(tail_pool[key]) == 0:
            tail_pool[key] = import_pool[key]
    return Products(
        hs6=[r["hs6"] for r in rows], code=codes,
        chapter=np.array([int(r["hs6"][:2]) for r in rows], dtype=np.int16),
        uv=arr("uv"), duty=arr("duty"), unit=arr("unit", np.int8), kgpu=arr("kgpu"),
        line_kg=arr("line_kg"), air=arr("air"), export=export_flags,
        desc_start=desc_start, desc_n=desc_n, origins=origins, cum=cum, prob=prob, texts=texts,
        import_pool=import_pool, export_pool=export_pool, tail_pool=tail_pool,
        index={r["hs6"]: i for i, r in enumerate(rows[:n_cat])},
    )


def _draw_origin(rng: np.random.Generator, prod: Products, p: np.ndarray) -> np.ndarray:
    """One origin per entry of `p` (product indices), from each product's origin mix."""
    out = np.empty(len(p), dtype=np.int16)
    step = 1_000_000
    for s in range(0, len(p), step):
        pp = p[s:s + step]
        u = rng.random(len(pp))
        k = np.minimum((u[:, None] > prod.cum[pp]).sum(axis=1), K_ORIGINS - 1)
        out[s:s + step] = prod.origins[pp, k]
    return out


def _choice(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...], size: int
            ) -> np.ndarray:
    w = np.array([p[1] for p in pairs])
    return rng.choice(len(pairs), size=size, p=w / w.sum())


# --------------------------------------------------------------------------- traders


@dataclass
class Traders:
    ids: list[str]
    names: list[str]
    tins: list[str]
    country: list[str]
    region: list[str | None]
    sector: np.ndarray  # index into SECTOR_KEYS
    aeo: list[str]
    registered: np.ndarray  # datetime64[D]
    weight: np.ndarray
    rank: np.ndarray  # size percentile, 0 small .. 1 largest
    growth: np.ndarray
    price: np.ndarray  # trader price level
    parent: list[str | None]  # parent company country (subsidiaries and foreign traders)
    exporter: np.ndarray
    self_declares: np.ndarray
    broker: np.ndarray  # (n, 2) primary and secondary broker


SECTOR_KEYS = tuple(V.SECTORS)


def _tin(rng: np.random.Generator, country: str) -> str:
    def d(n: int) -> str:
        return "".join(str(int(x)) for x in rng.integers(0, 10, size=n))

    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    match country:
        case "PA":
            return f"{rng.integers(1_000_000, 99_999_999)}-{rng.integers(1, 3)}-{d(6)} DV {d(2)}"
        case "US":
            return f"{d(2)}-{d(7)}"
        case "DE" | "GB" | "NL" | "IT" | "FR":
            return f"{country}{d(9 if country != 'IT' else 11)}"
        case "ES":
            return f"ES{letters[int(rng.integers(len(letters)))]}{d(8)}"
        case "MX":
            return "".join(letters[int(i)] for i in rng.integers(0, len(letters), 3)) + d(6) + "A1"
        case "CO":
            return f"{d(9)}-{d(1)}"
        case "CN":
            return f"91{d(16)}"
        case "KR":
            return f"{d(3)}-{d(2)}-{d(5)}"
        case _:
            return f"{country}{d(10)}"


def _company_name(rng: np.random.Generator, fakers: dict[str, Any], country: str,
                  sector: str, parent: str | None) -> str:
    words = V.SECTORS[sector].words
    word = words[int(rng.integers(len(words)))]
    brand = V.BRANDS[int(rng.integers(len(V.BRANDS)))]
    if country != V.HOME:
        locale, forms = V.FOREIGN[country]
        form = forms[int(rng.integers(len(forms)))]
        if country in V.EAST_ASIAN_NAMES:
            pool = V.EAST_ASIAN_NAMES[country]
            return f"{pool[int(rng.integers(len(pool)))]} {word} {form}"
        last = fakers[locale].last_name()
        return f"{last} {word} {form}" if rng.random() < 0.6 else f"{brand} {word} {form}"
    form = V.DOMESTIC_FORMS[_choice(rng, V.DOMESTIC_FORMS, 1)[0]][0]
    if parent is not None:  # local subsidiary of a foreign group
        if parent in V.EAST_ASIAN_NAMES:
            pool = V.EAST_ASIAN_NAMES[parent]
            last = pool[int(rng.integers(len(pool)))]
        else:
            last = fakers[V.FOREIGN[parent][0]].last_name()
        return f"{last} {word} Panamá, {form}"
    last = fakers["es_ES"].last_name()
    pattern = rng.random()
    if pattern < 0.3:
        return f"{brand} {word} {form}"
    if pattern < 0.55:
        prefix = V.DOMESTIC_PREFIXES[int(rng.integers(len(V.DOMESTIC_PREFIXES)))]
        return f"{prefix} {last}, {form}"
    if pattern < 0.75:
        other = fakers["es_ES"].last_name()
        return f"{last} & {other} {word}, {form}"
    if pattern < 0.9:
        return f"{fakers['en_US'].last_name()} {word} {form}"
    return f"{brand} {last} {form}"


def _make_traders(rng: np.random.Generator, n: int, seed: int, start: date,
                  n_days: int) -> Traders:
    from faker import Faker

    locales = sorted({loc for loc, _ in V.FOREIGN.values()} | {"es_ES", "en_US"})
    fakers: dict[str, Any] = {}
    for i, loc in enumerate(locales):
        fk = Faker(loc)
        fk.seed_instance(seed * 1000 + i)
        fakers[loc] = fk

    sector = rng.choice(len(SECTOR_KEYS), size=n,
                        p=np.array([V.SECTORS[k].share for k in SECTOR_KEYS])
                        / sum(V.SECTORS[k].share for k in SECTOR_KEYS))
    size = np.array([V.SECTORS[k].size for k in SECTOR_KEYS])[sector]
    weight = rng.lognormal(0.0, 1.4, n)
    weight = np.minimum(weight, 40 * np.median(weight)) * size
    rank = np.empty(n)
    rank[np.argsort(weight, kind="stable")] = np.arange(n) / max(n - 1, 1)
    foreign_codes = [c for c, _ in V.FOREIGN_SHARES]
    is_foreign = rng.random(n) < 0.06
    is_subsidiary = ~is_foreign & (rng.random(n) < 0.02 + 0.12 * rank)
    parent_pick = _choice(rng, V.FOREIGN_SHARES, n)
    country = [foreign_codes[parent_pick[i]] if is_foreign[i] else V.HOME for i in range(n)]
    parent: list[str | None] = [
        foreign_codes[parent_pick[i]] if (is_foreign[i] or is_subsidiary[i]) else None
        for i in range(n)
    ]
    region_pick = _choice(rng, V.REGIONS, n)
    region: list[str | None] = [None if is_foreign[i] else V.REGIONS[region_pick[i]][0]
                                for i in range(n)]
    names: list[str] = []
    taken: set[str] = set()
    for i in range(n):
        name = _company_name(rng, fakers, country[i], SECTOR_KEYS[sector[i]],
                             parent[i] if not is_foreign[i] else None)
        base, k = name, 2
        while name in taken:
            name = f"{base} ({k})"
            k += 1
        taken.add(name)
        names.append(name)
    tins = [_tin(rng, c) for c in country]

    aeo_p = 0.01 + 0.3 * rank**4
    has_aeo = rng.random(n) < aeo_p
    aeo_pick = _choice(rng, V.AEO_TYPES, n)
    aeo = [V.AEO_TYPES[aeo_pick[i]][0] if has_aeo[i] else "none" for i in range(n)]

    start64 = np.datetime64(start, "D")
    new = rng.random(n) < 0.1
    age_days = np.minimum(rng.exponential(9 * 365, n), 35 * 365).astype(int) + 60
    registered = np.where(new, start64 + (rng.random(n) * n_days * 0.8).astype(int),
                          start64 - age_days)
    exporter_share = np.array([V.SECTORS[k].exporters for k in SECTOR_KEYS])[sector]
    exporter = ~is_foreign & (rng.random(n) < exporter_share)
    n_brokers = max(5, n // 25)
    brokers = (rng.zipf(1.6, (n, 2)) - 1) % n_brokers
    return Traders(
        ids=[f"T{i + 1:06d}" for i in range(n)], names=names, tins=tins, country=country,
        region=region, sector=sector, aeo=aeo, registered=registered, weight=weight, rank=rank,
        growth=np.clip(rng.normal(0.05, 0.15, n), -0.35, 0.45),
        price=rng.lognormal(0.0, 0.1, n), parent=parent, exporter=exporter,
        self_declares=(rank > 0.97) & (rng.random(n) < 0.8), broker=brokers,
    )


# --------------------------------------------------------------------------- slots


@dataclass
class Slots:
    """Supplier relations: each trader buys (or sells) a few goods from one seller."""

    trader: np.ndarray
    start: np.ndarray  # first slot of each trader
    count: np.ndarray  # slots per trader
    export: np.ndarray  # export flow
    reexport: np.ndarray
    products: np.ndarray  # (n, 4)
    n_products: np.ndarray
    origin: np.ndarray
    seller: np.ndarray  # index into seller_ids, -1 for none
    seller_country: np.ndarray
    related: np.ndarray
    key: np.ndarray  # trader + cumulative weight within trader (for sampling)
    seller_ids: list[str] = field(default_factory=list)
    _seller_pos: dict[str, int] = field(default_factory=dict)

    def seller_index(self, label: str) -> int:
        """The index of a seller id, adding it when new."""
        if not self._seller_pos:
            self._seller_pos = {lab: i for i, lab in enumerate(self.seller_ids)}
        if label not in self._seller_pos:
            self._seller_pos[label] = len(self.seller_ids)
            self.seller_ids.append(label)
        return self._seller_pos[label]


def _make_slots(rng: np.random.Generator, tr: Traders, prod: Products,
                countries: list[str]) -> Slots:
    n_t = len(tr.ids)
    cidx = {c: i for i, c in enumerate(countries)}
    count = (2 + np.floor(tr.rank**2 * 18) + rng.poisson(1.0, n_t)).astype(np.int32)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    trader = np.repeat(np.arange(n_t), count)
    n = len(trader)
    rank_in = np.arange(n) - np.repeat(start, count)
    sector = tr.sector[trader]
    export = tr.exporter[trader] & ((rng.random(n) < 0.3) | (rank_in == 1))
    reexport = np.zeros(n, dtype=bool)
    products = np.zeros((n, 4), dtype=np.int32)
    n_products = (1 + rng.binomial(3, 0.35, n)).astype(np.int32)
    for s, key in enumerate(SECTOR_KEYS):
        idx = np.flatnonzero(sector == s)
        if len(idx) == 0:
            continue
        imp, exp_, tail = prod.import_pool[key], prod.export_pool[key], prod.tail_pool[key]
        ex = export[idx]
        if len(exp_) == 0:
            reexport[idx[ex]] = True
        produce = ex & (len(exp_) > 0)
        main = rng.choice(imp, len(idx))
        is_tail = rng.random(len(idx)) < 0.12
        main = np.where(is_tail, rng.choice(tail, len(idx)), main)
        if len(exp_):
            main = np.where(produce, rng.choice(exp_, len(idx)), main)
            extra = np.where(produce[:, None], rng.choice(exp_, (len(idx), 3)),
                             rng.choice(imp, (len(idx), 3)))
        else:
            extra = rng.choice(imp, (len(idx), 3))
        products[idx, 0] = main
        products[idx, 1:] = extra
    origin = _draw_origin(rng, prod, products[:, 0])

    # Sellers: unrelated suppliers shared between traders, or the trader's foreign parent.
    pool = max(30, n_t // 8)
    seller_num = (rng.zipf(1.4, n) - 1) % pool + 1
    seller_country = origin.copy()
    parent_c = np.array([cidx[p] if p else -1 for p in tr.parent], dtype=np.int16)[trader]
    related = (parent_c >= 0) & ~export & (rng.random(n) < 0.6)
    related |= ~export & (rng.random(n) < 0.01)
    related_country = np.where(parent_c >= 0, parent_c, origin)
    seller_country = np.where(related, related_country, seller_country).astype(np.int16)
    seller_num = np.where(related, 50_000 + trader, seller_num)
    labels = np.char.add(np.array(countries)[seller_country],
                         np.char.zfill(seller_num.astype(str), 5))
    labels = np.char.add("S", labels)
    seller_ids, seller = np.unique(labels, return_inverse=True)
    seller = np.where(export & ~reexport, -1, seller)

    # Relations are used unevenly; an exporter's export relations carry its export share.
    w = (rank_in + 1.0) ** -0.9
    imp_total = np.bincount(trader, weights=np.where(export, 0.0, w), minlength=n_t)
    exp_total = np.bincount(trader, weights=np.where(export, w, 0.0), minlength=n_t)
    share = rng.uniform(0.3, 0.8, n_t)
    scale = share / (1 - share) * imp_total / np.maximum(exp_total, 1e-9)
    w = np.where(export & (imp_total[trader] > 0), w * scale[trader], w)
    cs = np.cumsum(w)
    totals = np.add.reduceat(w, start)
    before = np.repeat(cs[start] - w[start], count)
    key = trader + (cs - before) / np.repeat(totals, count)
    return Slots(trader=trader, start=start, count=count, export=export, reexport=reexport,
                 products=products, n_products=n_products, origin=origin,
                 seller=seller.astype(np.int64), seller_country=seller_country,
                 related=related, key=key, seller_ids=[str(s) for s in seller_ids])


# --------------------------------------------------------------------------- anomalies plan


@dataclass
class Plan:
    """Which traders get which planted anomaly, and with what parameters."""

    kind: dict[int, str] = field(default_factory=dict)  # trader -> anomaly type
    product: dict[int, int] = field(default_factory=dict)  # trader -> product concerned
    declared: dict[int, int] = field(default_factory=dict)  # misclassification: declared product
    switch_to: dict[int, int] = field(default_factory=dict)  # origin switching: new origin
    under_from: dict[int, int] = field(default_factory=dict)  # undervaluation: first day index


def _plan_anomalies(rng: np.random.Generator, tr: Traders, sl: Slots, prod: Products,
                    countries: list[str], start: date, n_days: int, n_items: int) -> Plan:
    n_t = len(tr.ids)
    cidx = {c: i for i, c in enumerate(countries)}
    cn = cidx[V.SAFEGUARD_ORIGIN]
    per_type = int(np.clip(round(n_t / 25), 1, 8 + n_t // 10_000))  # 3 at 80 traders, 8 at 2,000
    start64 = np.datetime64(start, "D")
    expected = tr.weight / tr.weight.sum() * n_items / 2.5  # declarations per trader, roughly
    good = ((expected >= 25) & (tr.rank < 0.985) & (tr.registered <= start64) & ~tr.exporter
            & (tr.sector != SECTOR_KEYS.index("energy")))
    # Traders with enough declarations over the whole period first, then the largest others.
    order = [int(t) for t in rng.permutation(np.flatnonzero(good))]
    rest = np.flatnonzero(~good)
    fallback = [int(t) for t in rest[np.argsort(-expected[rest], kind="stable")]]
    # How many traders buy each product: anomalies concern goods that have peers to compare.
    popularity = np.zeros(len(prod.hs6), dtype=np.int64)
    for k in range(sl.products.shape[1]):
        used = k < sl.n_products
        buyers = np.unique(np.stack([sl.trader[used], sl.products[used, k]]), axis=1)
        np.add.at(popularity, buyers[1], 1)
    # Expected items per supplier relation and per product, to keep planted goods a minority.
    slot_share = np.diff(sl.key, prepend=0.0)
    slot_share = np.where(np.arange(len(sl.key)) == sl.start[sl.trader], sl.key - sl.trader,
                          slot_share)
    slot_items = expected[sl.trader] * slot_share * 2.5
    volume = np.zeros(len(prod.hs6))
    for k in range(sl.products.shape[1]):
        used = k < sl.n_products
        np.add.at(volume, sl.products[used, k], slot_items[used] / sl.n_products[used])
    plan = Plan()

    def sector_of(t: int) -> str:
        return SECTOR_KEYS[tr.sector[t]]

    def take(*prefer: Callable[[int], bool]) -> int:
        """The first trader that fits a preference, busy traders before small ones."""
        for pool in (order, fallback):
            for fits in (*prefer, lambda t: True):
                for t in pool:
                    if fits(t):
                        pool.remove(t)
                        return t
        raise TamgaError("not enough traders to plant the demo anomalies")

    def top(t: int, origin: int | None = None) -> int:
        """The trader's main supplier relation, made an import (from `origin` if given)."""
        s = int(sl.start[t])
        sl.export[s] = False
        sl.reexport[s] = False
        if origin is not None:
            sl.origin[s] = origin
            sl.related[s] = False
            sl.seller_country[s] = origin
            label = f"S{countries[origin]}{int(rng.integers(1, 40)):05d}"
            sl.seller[s] = sl.seller_index(label)
        return s

    def common_product(t: int, s: int, min_uv: float = 0.0) -> int:
        """The slot's main product if many traders buy it, else a popular one of the sector."""
        p = int(sl.products[s, 0])
        if popularity[p] >= 6 and not prod.export[p] and prod.uv[p] >= min_uv:
            return p
        pool = [int(q) for q in prod.import_pool[sector_of(t)] if prod.uv[q] >= min_uv]
        pool.sort(key=lambda q: (-popularity[q], q))
        p = pool[int(rng.integers(min(5, len(pool))))]
        sl.products[s, 0] = p
        sl.origin[s] = _draw_origin(rng, prod, np.array([p]))[0]
        if not sl.related[s]:
            sl.seller_country[s] = sl.origin[s]
            label = f"S{countries[sl.origin[s]]}{int(rng.integers(1, 40)):05d}"
            sl.seller[s] = sl.seller_index(label)
        return p

    def minor_product(t: int) -> int:
        """A good the trader's main relation could carry while staying under 20% of its market."""
        s = int(sl.start[t])
        mine = slot_items[s]
        popular = sorted((int(q) for q in prod.import_pool[sector_of(t)]),
                         key=lambda q: (-volume[q], q))[:8]
        pool = [int(sl.products[s, 0]), *popular]
        taken = set(plan.product.values())  # goods already carrying another anomaly
        for p in pool:
            if not prod.export[p] and p not in taken and mine < 0.2 * (volume[p] + mine):
                return p
        return -1

    # Sectors with many traders, where goods have peers to compare prices with.
    busy_sectors = ("general", "food", "textiles", "electronics", "machinery", "vehicles")
    metal_products = [i for h, i in prod.index.items()
                      if h[:2] in V.SAFEGUARD_CHAPTERS and not prod.export[i]
                      and prod.prob[i, cn] > 0]
    for _ in range(per_type):
        # Origin switching: a steel/aluminium buyer moves from CN to a neighbour after the rise.
        t = take(lambda t: sector_of(t) == "metals",
                 lambda t: sector_of(t) in ("construction", "machinery", "general"))
        s = top(t, cn)
        mine = [int(p) for p in sl.products[s] if p in metal_products]
        p = mine[0] if mine else metal_products[int(rng.integers(len(metal_products)))]
        sl.products[s, 0] = p
        sl.products[s, 1:] = rng.choice(metal_products, 3)
        sl.n_products[s] = 2
        plan.kind[t] = "origin_switching"
        plan.product[t] = p
        plan.switch_to[t] = cidx[V.SWITCH_ORIGINS[int(rng.integers(len(V.SWITCH_ORIGINS)))]]
    for _ in range(per_type):
        # Misclassification: the goods of the main relation declared under a cheaper code.
        t = take(lambda t: sector_of(t) in V.MISCLASSIFICATIONS)
        pairs = V.MISCLASSIFICATIONS.get(sector_of(t), V.MISCLASSIFICATIONS["electronics"])
        true_hs, declared_hs = pairs[int(rng.integers(len(pairs)))]
        p = prod.index[true_hs]
        s = top(t, int(_draw_origin(rng, prod, np.array([p]))[0]))
        sl.products[s, 0] = p
        sl.n_products[s] = 1
        plan.kind[t] = "misclassification"
        plan.product[t] = p
        plan.declared[t] = prod.index[declared_hs]
    for _ in range(per_type):
        # Related-party pricing: the main relation is with the parent company, priced low.
        t = take(lambda t: tr.parent[t] is not None and sector_of(t) in busy_sectors)
        s = top(t)
        parent = tr.parent[t] or "US"
        sl.related[s] = True
        sl.seller_country[s] = cidx[parent]
        sl.seller[s] = sl.seller_index(f"S{parent}{50_000 + t:05d}")
        plan.kind[t] = "related_party_pricing"
        plan.product[t] = common_product(t, s)
        # The group sources the goods where most of the market does, so prices can be compared.
        sl.origin[s] = prod.origins[plan.product[t], 0]
    for _ in range(per_type):
        # Undervaluation: the main goods declared far below the market price, from some date,
        # by a trader whose purchases stay a minority of the market for those goods.
        t = take(lambda t: sector_of(t) in busy_sectors and minor_product(t) >= 0,
                 lambda t: minor_product(t) >= 0)
        s = top(t)
        p = minor_product(t)
        if p < 0:
            p = common_product(t, s)
        elif p != sl.products[s, 0]:
            sl.products[s, 0] = p
            origin = int(_draw_origin(rng, prod, np.array([p]))[0])
            sl.origin[s] = sl.seller_country[s] = origin
            sl.related[s] = False
            sl.seller[s] = sl.seller_index(f"S{countries[origin]}{int(rng.integers(1, 40)):05d}")
        plan.kind[t] = "undervaluation"
        plan.product[t] = p
        plan.under_from[t] = int(rng.integers(0, n_days // 3))
    for _ in range(per_type):
        # Split consignments: small valuable goods cut into declarations under the threshold.
        t = take(lambda t: sector_of(t) in ("general", "electronics", "textiles", "footwear",
                                            "toys", "cosmetics"))
        s = top(t)
        plan.kind[t] = "split_consignment"
        plan.product[t] = common_product(t, s, min_uv=3.0)
    return plan


# --------------------------------------------------------------------------- build


def _days(start: date, end: date) -> np.ndarray:
    return np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)


def _build(path: Path, truth_path: Path, n_items: int, seed: int, end_month: date,
           say: Progress) -> dict[str, Any]:
    import pyarrow as pa

    from tradedata.db import create_database

    rng = np.random.default_rng(seed)
    start = _month_start(end_month, -35)
    end = _month_start(end_month, 1)
    end = date.fromordinal(end.toordinal() - 1)
    days = _days(start, end)
    n_days = len(days)
    rise_day = int((np.datetime64(_month_start(start, 19), "D") - days[0]).astype(int))

    say(f"Creating database and reference tables ({path.name})")
    con = create_database(path)
    con.execute("SET enable_progress_bar = false")
    con.execute("SET memory_limit = '4GB'")  # the machine is shared: spill to disk beyond this
    try:
        subheadings = [(str(c), str(d)) for c, d in con.execute(
            "SELECT code, description FROM hs_nomenclature WHERE level = 6 ORDER BY code"
        ).fetchall()]
        catalogue = _parse_catalogue()
        countries = _countries(catalogue)
        valid = {r[0] for r in con.execute("SELECT iso2 FROM countries").fetchall()}
        missing = sorted(set(countries) - valid)
        if missing:  # pragma: no cover - guarded by tests on the vocabulary
            raise TamgaError(f"demo vocabulary uses unknown country codes: {missing}")
        prod = _build_products(rng, subheadings, countries)

        n_t = max(20, round(n_items / 250))
        say(f"Generating {n_t:,} traders")
        tr = _make_traders(rng, n_t, seed, start, n_days)
        sl = _make_slots(rng, tr, prod, countries)
        plan = _plan_anomalies(rng, tr, sl, prod, countries, start, n_days, n_items)

        data = _generate(rng, tr, sl, prod, plan, countries, days, rise_day, n_items, say)
        say("Writing traders, declarations and items to DuckDB")
        _write(con, pa, tr, sl, prod, countries, days, data, say)
        truth_rows = _write_truth(con, pa, data, truth_path)
        n_audits = _write_audits(con, rng, tr, plan, data, start, end)
        info = {
            "reporting_currency": "USD", "source": "tamga-demo",
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed": str(seed), "items": str(n_items), "date_from": start.isoformat(),
            "date_to": end.isoformat(), "country": V.HOME,
            "vat_pct": f"{V.VAT_PCT:g}",
            "low_value_threshold_usd": f"{V.LOW_VALUE_THRESHOLD_USD:g}",
            "low_value_rule": "Import declarations with a total customs value below the "
                              "threshold are relieved of customs duty (VAT still due).",
            "safeguard_from": str(days[rise_day]),
            "safeguard_rule": f"From {days[rise_day]} an additional {V.SAFEGUARD_EXTRA_PCT:g}% "
                              "duty applies to iron and steel (HS 72-73) and aluminium (HS 76) "
                              f"originating in {V.SAFEGUARD_ORIGIN}.",
            "generator": "tradedata.demo 1",
        }
        con.execute("INSERT INTO dataset_info SELECT unnest($k), unnest($v)",
                    {"k": list(info), "v": list(info.values())})
        con.execute("CHECKPOINT")
        counts = {
            "traders": n_t, "declarations": len(data["d_trader"]),
            "items": len(data["i_decl"]), "audits": n_audits,
            "date_from": start, "date_to": end,
            "anomalies": truth_rows, "anomaly_traders": len(plan.kind),
        }
    finally:
        con.close()
    return counts


def _sample_days(rng: np.random.Generator, trader: np.ndarray, tr: Traders,
                 days: np.ndarray) -> np.ndarray:
    """A day index per declaration: seasonality, weekdays, growth, registration date."""
    n_days = len(days)
    dayint = days.astype("datetime64[D]").astype(np.int64)
    weekday = (dayint + 3) % 7
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    month_day = np.array([s[5:] for s in np.datetime_as_string(days)])
    holiday = np.isin(month_day, ["01-01", "05-01", "11-03", "11-28", "12-08", "12-25"])
    base = np.array([1.0, 1.05, 1.05, 1.0, 0.95, 0.2, 0.05])[weekday]
    base = base * np.where(holiday, 0.1, 1.0) * np.exp(0.06 * np.arange(n_days) / 365.25)
    years = np.arange(n_days) / 365.25
    out = np.empty(len(trader), dtype=np.int64)
    sector = tr.sector[trader]
    for s, key in enumerate(SECTOR_KEYS):
        idx = np.flatnonzero(sector == s)
        if len(idx) == 0:
            continue
        w = base * np.array(V.SECTORS[key].season)[month]
        out[idx] = rng.choice(n_days, size=len(idx), p=w / w.sum())
    reg = np.clip((tr.registered - days[0]).astype(np.int64), 0, n_days - 1)[trader]
    g = tr.growth[trader]
    pending = np.arange(len(trader))
    for _ in range(12):
        t = years[out[pending]]
        gp = g[pending]
        accept = np.where(gp > 0, np.exp(gp * (t - years[-1])), np.exp(gp * t))
        ok = (rng.random(len(pending)) < accept) & (out[pending] >= reg[pending])
        pending = pending[~ok]
        if len(pending) == 0:
            break
        redraw = rng.choice(n_days, size=len(pending), p=base / base.sum())
        out[pending] = redraw
    if len(pending):
        lo = reg[pending]
        out[pending] = lo + (rng.random(len(pending)) * (n_days - lo)).astype(np.int64)
    return out


def _generate(rng: np.random.Generator, tr: Traders, sl: Slots, prod: Products, plan: Plan,
              countries: list[str], days: np.ndarray, rise_day: int, n_items: int,
              say: Progress) -> dict[str, Any]:
    n_t = len(tr.ids)
    n_days = len(days)
    cidx = {c: i for i, c in enumerate(countries)}
    home = cidx[V.HOME]

    # Split consignments: extra one-item declarations just under the low-value threshold.
    split_traders = [t for t, k in plan.kind.items() if k == "split_consignment"]
    sp_trader: list[int] = []
    sp_day: list[int] = []
    registered = np.clip((tr.registered - days[0]).astype(np.int64), 0, n_days - 5)
    for t in split_traders:
        for _ in range(int(rng.integers(3, 7))):
            first = int(rng.integers(registered[t], n_days - 4))
            m = int(rng.integers(5, 12))
            sp_trader.extend([t] * m)
            sp_day.extend(first + int(x) for x in rng.integers(0, 3, m))
    n_split = len(sp_trader)

    # Declarations: every trader at least once, then by size, until the items are reached.
    target = n_items - n_split
    p_w = tr.weight / tr.weight.sum()
    geo_p = np.array([{"general": 0.3, "food": 0.5, "metals": 0.55, "energy": 0.9}.get(k, 0.42)
                      for k in SECTOR_KEYS])
    traders_l: list[np.ndarray] = []
    nitems_l: list[np.ndarray] = []
    total = 0
    first = True
    while total < target:
        est = max(int((target - total) / 2.4) + 10, 10)
        picked = rng.choice(n_t, size=est, p=p_w)
        if first:
            picked[: min(n_t, est)] = rng.permutation(n_t)[: min(n_t, est)]
            first = False
        k = np.minimum(rng.geometric(geo_p[tr.sector[picked]]), 30)
        traders_l.append(picked)
        nitems_l.append(k)
        total += int(k.sum())
    d_trader = np.concatenate(traders_l)
    d_n = np.concatenate(nitems_l)
    cut = int(np.searchsorted(np.cumsum(d_n), target))
    d_trader, d_n = d_trader[: cut + 1], d_n[: cut + 1].copy()
    d_n[-1] -= int(d_n.sum()) - target
    if d_n[-1] <= 0:  # pragma: no cover - searchsorted guarantees a positive remainder
        d_trader, d_n = d_trader[:-1], d_n[:-1]
    n_base = len(d_trader)
    say(f"Generating {n_base + n_split:,} declarations")

    # Supplier relation (slot) of each declaration, then its day.
    u = rng.random(n_base)
    d_slot = np.searchsorted(sl.key, d_trader + u, side="right")
    d_slot = np.minimum(d_slot, sl.start[d_trader] + sl.count[d_trader] - 1)
    d_day = _sample_days(rng, d_trader, tr, days)
    if n_split:
        d_trader = np.concatenate([d_trader, np.array(sp_trader)])
        d_slot = np.concatenate([d_slot, sl.start[np.array(sp_trader)]])
        d_day = np.concatenate([d_day, np.minimum(np.array(sp_day), n_days - 1)])
        d_n = np.concatenate([d_n, np.ones(n_split, dtype=d_n.dtype)])
    n_decl = len(d_trader)
    is_split = np.zeros(n_decl, dtype=bool)
    is_split[n_base:] = True
    d_export = sl.export[d_slot]
    d_reexport = sl.reexport[d_slot]
    main = sl.products[d_slot, 0]
    origin = sl.origin[d_slot]

    # Transport mode, office, procedure.
    modes = ("sea", "air", "road", "rail")
    air = prod.air[main]
    road_ok = np.isin(origin, [cidx[c] for c in V.ROAD_ORIGINS])
    r = rng.random(n_decl)
    mode = np.where(r < air, 1, 0)
    mode = np.where(road_ok & (r < 0.55), 2, np.where(road_ok, np.where(r < 0.55 + 0.45 * air,
                                                                        1, 0), mode))
    exp_road = d_export & (rng.random(n_decl) < 0.08)
    mode = np.where(exp_road, 2, mode)
    mode = np.where((mode == 0) & (rng.random(n_decl) < 0.04), 3, mode)
    mode = np.where(is_split, np.where(rng.random(n_decl) < 0.8, 1, 2), mode)
    office = np.zeros(n_decl, dtype=np.int16)
    for m, name in enumerate(modes):
        offs = [i for i, o in enumerate(V.OFFICES) if name in o.modes]
        w = np.array([V.OFFICES[i].weight for i in offs])
        idx = np.flatnonzero(mode == m)
        office[idx] = np.array(offs)[rng.choice(len(offs), len(idx), p=w / w.sum())]
    cfz = next(i for i, o in enumerate(V.OFFICES) if o.code == "401")
    general = tr.sector[d_trader] == SECTOR_KEYS.index("general")
    to_cfz = general & np.isin(mode, [0, 2]) & ~is_split & (rng.random(n_decl) < 0.45)
    office = np.where(to_cfz, cfz, office)
    air_main = next(i for i, o in enumerate(V.OFFICES) if o.code == "201")
    office = np.where(is_split & (mode == 1), air_main, office)

    proc_names = [p for p, _ in V.IMPORT_PROCEDURES] + [p for p, _ in V.EXPORT_PROCEDURES] + [
        V.REEXPORT_PROCEDURE]
    imp_proc = _choice(rng, V.IMPORT_PROCEDURES, n_decl)
    imp_proc = np.where((office == cfz) & (rng.random(n_decl) < 0.85), 2, imp_proc)
    imp_proc = np.where(is_split, 0, imp_proc)
    exp_proc = len(V.IMPORT_PROCEDURES) + _choice(rng, V.EXPORT_PROCEDURES, n_decl)
    proc = np.where(d_export, np.where(d_reexport, len(proc_names) - 1, exp_proc), imp_proc)
    suspensive = np.isin(proc, [proc_names.index(p) for p in V.SUSPENSIVE_PROCEDURES])

    # Dispatch country, incoterm, currency, declarant, control channel.
    hub = np.zeros(n_decl, dtype=np.int16)
    for m, name in enumerate(modes):
        idx = np.flatnonzero(mode == m)
        hubs = np.array([cidx[c] for c in V.TRANSSHIPMENT_HUBS[name]])
        hub[idx] = hubs[rng.integers(0, len(hubs), len(idx))]
    dispatch = np.where(rng.random(n_decl) < 0.8, origin, hub)
    dispatch = np.where((mode == 2) & ~road_ok, cidx["CR"], dispatch)
    dispatch = np.where(d_export, home, dispatch)
    inco_names: list[str] = []
    incoterm = np.zeros(n_decl, dtype=np.int16)
    for m, name in enumerate(modes):
        pairs = V.INCOTERMS[name]
        ids = []
        for term, _ in pairs:
            if term not in inco_names:
                inco_names.append(term)
            ids.append(inco_names.index(term))
        idx = np.flatnonzero(mode == m)
        incoterm[idx] = np.array(ids)[_choice(rng, pairs, len(idx))]
    fob = inco_names.index("FOB") if "FOB" in inco_names else 0
    incoterm = np.where(d_export & (mode == 0), fob, incoterm)
    seller_c = sl.seller_country[d_slot]
    currency = np.zeros(n_decl, dtype=np.int8)
    eu = np.isin(seller_c, [cidx[c] for c in V.EU if c in cidx])
    r = rng.random(n_decl)
    currency = np.where(eu & (r < 0.85), V.CURRENCIES.index("EUR"), currency)
    for c, (cur, share) in V.LOCAL_CURRENCY.items():
        if c in cidx:
            currency = np.where((seller_c == cidx[c]) & (r < share),
                                V.CURRENCIES.index(cur), currency)
    currency = np.where(d_export, np.where(r < 0.05, V.CURRENCIES.index("EUR"), 0), currency)
    n_brokers = int(tr.broker.max()) + 1
    broker = tr.broker[d_trader, (rng.random(n_decl) < 0.2).astype(int)]
    self_decl = tr.self_declares[d_trader] & (rng.random(n_decl) < 0.7)
    declarant = np.where(self_decl, n_brokers + d_trader, broker)
    aeo = np.array([a != "none" for a in tr.aeo])[d_trader]
    r = rng.random(n_decl)
    channel = np.where(aeo, np.where(r < 0.93, 0, np.where(r < 0.985, 1, 2)),
                       np.where(r < 0.83, 0, np.where(r < 0.94, 1, 2)))

    # Items.
    n_it = int(d_n.sum())
    say(f"Generating {n_it:,} declaration items")
    i_decl = np.repeat(np.arange(n_decl), d_n)
    d_first = np.concatenate([[0], np.cumsum(d_n)[:-1]])
    item_no = (np.arange(n_it) - np.repeat(d_first, d_n) + 1).astype(np.int32)
    slot = d_slot[i_decl]
    k = np.where(item_no == 1, 0, (rng.random(n_it) * sl.n_products[slot]).astype(np.int64))
    p = sl.products[slot, k]
    day = d_day[i_decl]
    i_trader = d_trader[i_decl]
    i_export = d_export[i_decl]
    so = sl.origin[slot]
    fits = prod.prob[p, so] > 0
    keep = (fits & (rng.random(n_it) < 0.96)) | prod.export[p]
    o = so.copy()
    redraw = np.flatnonzero(~keep)
    o[redraw] = _draw_origin(rng, prod, p[redraw])
    o = np.where(prod.export[p], home, o).astype(np.int16)
    seller = sl.seller[slot].copy()
    related = sl.related[slot].copy()

    trader_kind = np.array([ANOMALY_TYPES.index(plan.kind[t]) if t in plan.kind else -1
                            for t in range(n_t)], dtype=np.int8)
    i_kind = trader_kind[i_trader]
    UNDER, MIS, SWITCH, _SPLIT, RELATED = range(len(ANOMALY_TYPES))
    truth_type: list[np.ndarray] = []
    truth_item: list[np.ndarray] = []
    truth_detail: list[list[str]] = []

    # Market reaction to the safeguard, and the planted origin switchers.
    years = day / 365.25
    safeguard_ch = np.isin(prod.chapter[p], [int(c) for c in V.SAFEGUARD_CHAPTERS])
    cn = cidx[V.SAFEGUARD_ORIGIN]
    alt = np.array([cidx[c] for c in ("KR", "TR", "IN", "VN", "MY", "MX")])
    divert = (safeguard_ch & (o == cn) & (day >= rise_day) & (i_kind != SWITCH)
              & ~i_export & (rng.random(n_it) < 0.3))
    o = np.where(divert, alt[rng.integers(0, len(alt), n_it)], o).astype(np.int16)
    switcher = (i_kind == SWITCH) & safeguard_ch & ~i_export
    o = np.where(switcher & (day < rise_day), cn, o).astype(np.int16)
    moved = np.flatnonzero(switcher & (day >= rise_day))
    if len(moved):
        new_origin = np.array([plan.switch_to[int(t)] for t in i_trader[moved]], dtype=np.int16)
        o[moved] = new_origin
        new_seller = {t: sl.seller_index(f"S{countries[plan.switch_to[t]]}"
                                         f"{int(rng.integers(1, 40)):05d}")
                      for t in sorted(plan.switch_to)}
        seller[moved] = [new_seller[int(t)] for t in i_trader[moved]]
        related[moved] = False
        truth_type.append(np.full(len(moved), 2))
        truth_item.append(moved)
        truth_detail.append([
            f"{prod.hs6[p[i]]} from {countries[o[i]]} after the {days[rise_day]} duty rise on "
            f"{V.SAFEGUARD_ORIGIN} steel/aluminium; CN before" for i in moved])
    # A declaration's dispatch country follows the (new) origin of its first item.
    dispatch = np.where(switcher[d_first] & (d_day >= rise_day), o[d_first],
                        dispatch).astype(np.int16)

    # Quantities and values.
    scale = np.clip((tr.weight / np.median(tr.weight)) ** 0.25, 0.3, 4.0)[i_trader]
    mass = prod.line_kg[p] * scale * rng.lognormal(0.0, 0.8, n_it) * d_n[i_decl] ** -0.3
    unit = prod.unit[p]
    kgpu = prod.kgpu[p]
    qty = np.where(unit == 0, mass, np.maximum(1.0, np.round(mass / kgpu)))
    mass = np.where(unit == 0, mass, qty * kgpu * rng.lognormal(0.0, 0.05, n_it))
    origin_price = np.ones(len(countries))
    for c, f in V.ORIGIN_PRICE.items():
        if c in cidx:
            origin_price[cidx[c]] = f
    peer_uv = prod.uv[p] * origin_price[o] * np.exp(0.03 * years)
    uv = peer_uv * tr.price[i_trader] * rng.lognormal(0.0, 0.25, n_it)

    prodsel = p == np.array([plan.product.get(t, -1) for t in range(n_t)])[i_trader]
    under_from = np.array([plan.under_from.get(t, n_days) for t in range(n_t)])
    top_slot = slot == sl.start[i_trader]
    under = np.flatnonzero((i_kind == UNDER) & prodsel & top_slot & ~i_export
                           & (day >= under_from[i_trader]) & (rng.random(n_it) < 0.8))
    f_under = rng.uniform(0.08, 0.2, len(under))
    uv[under] = peer_uv[under] * f_under
    truth_type.append(np.full(len(under), 0))
    truth_item.append(under)
    truth_detail.append([f"{prod.hs6[p[i]]} from {countries[o[i]]} declared at "
                         f"{uv[i]:.2f} USD/kg, about {f:.0%} of the market price"
                         for i, f in zip(under, f_under, strict=True)])
    rel = np.flatnonzero((i_kind == RELATED) & related & top_slot & ~i_export)
    f_rel = rng.uniform(0.35, 0.5, len(rel))
    uv[rel] = peer_uv[rel] * f_rel
    truth_type.append(np.full(len(rel), 4))
    truth_item.append(rel)
    truth_detail.append([f"{prod.hs6[p[i]]} bought from related seller {sl.seller_ids[seller[i]]}"
                         f" at about {f:.0%} of the arm's-length price"
                         for i, f in zip(rel, f_rel, strict=True)])

    # Split consignments: each item just under the threshold.
    sp_items = np.flatnonzero(is_split[i_decl])
    target_v = rng.uniform(0.88, 0.995, len(sp_items)) * V.LOW_VALUE_THRESHOLD_USD
    mass[sp_items] = target_v / uv[sp_items]
    qty[sp_items] = np.where(unit[sp_items] == 0, mass[sp_items],
                             np.maximum(1.0, np.round(mass[sp_items] / kgpu[sp_items])))
    uv[sp_items] = target_v / mass[sp_items]
    truth_type.append(np.full(len(sp_items), 3))
    truth_item.append(sp_items)
    truth_detail.append([f"{prod.hs6[p[i]]} split into many declarations just under "
                         f"USD {V.LOW_VALUE_THRESHOLD_USD:,.0f}" for i in sp_items])

    customs = np.round(mass * uv, 2)
    customs = np.maximum(customs, 1.0)
    mass = np.round(mass, 3)
    qty = np.where(unit == 0, np.round(qty, 3), qty)

    # Declared tariff line: misclassified items carry a lower-duty neighbour's code.
    declared = p.copy()
    mis = np.flatnonzero((i_kind == MIS) & prodsel & ~i_export
                         & (rng.random(n_it) < 0.75))
    declared[mis] = np.array([plan.declared[int(t)] for t in i_trader[mis]], dtype=declared.dtype)
    truth_type.append(np.full(len(mis), 1))
    truth_item.append(mis)
    truth_detail.append([f"'{prod.texts[prod.desc_start[p[i]]]}' ({prod.hs6[p[i]]}, "
                         f"{prod.duty[p[i]]:g}%) declared under {prod.hs6[declared[i]]} "
                         f"({prod.duty[declared[i]]:g}%)" for i in mis])

    # Duty, preferences, VAT.
    rate = prod.duty[declared].copy()
    surcharge = (safeguard_ch & (o == cn) & (day >= rise_day)) & ~i_export
    rate = np.where(surcharge, rate + V.SAFEGUARD_EXTRA_PCT, rate)
    fta = np.isin(o, [cidx[c] for c in V.FTA_PARTNERS if c in cidx])
    claim = fta & ~i_export & (rng.random(n_it) < 0.55)
    agri = prod.chapter[declared] <= 24
    rate = np.where(claim, np.where(agri, np.round(rate * 0.5, 1), 0.0), rate)
    pref = np.where(i_export, -1, np.where(claim, 1, 0))  # 0 = '100' MFN, 1 = '300' FTA
    decl_total = np.bincount(i_decl, weights=customs, minlength=n_decl)
    low_value = (~d_export & (proc == 0) & (decl_total < V.LOW_VALUE_THRESHOLD_USD))[i_decl]
    rate = np.where(low_value | i_export, 0.0, rate)
    no_duty = suspensive[i_decl] | i_export
    duty = np.where(no_duty, 0.0, np.round(customs * rate / 100.0, 2))
    vat_pct = np.where(np.isin(prod.chapter[declared], [int(c) for c in V.VAT_EXEMPT_CHAPTERS]),
                       0.0, np.where(prod.chapter[declared] == 22, V.VAT_ALCOHOL_PCT, V.VAT_PCT))
    vat = np.where(no_duty, 0.0, np.round((customs + duty) * vat_pct / 100.0, 2))

    # Invoice value in the invoice currency, on the incoterm's basis.
    month_idx = days[d_day].astype("datetime64[M]").astype(np.int64)
    month_idx -= month_idx.min()
    n_months = int(month_idx.max()) + 1
    fx = np.ones((len(V.CURRENCIES), n_months))
    for ci, cur in enumerate(V.CURRENCIES):
        if cur != "USD":
            walk = np.cumsum(rng.normal(0.0, 0.015, n_months))
            fx[ci] = V.USD_RATES[cur] * np.exp(walk - walk[0])
    uplift = np.array([V.INCOTERM_UPLIFT[t] for t in inco_names])
    d_rate = fx[currency, month_idx]
    invoice = np.where(i_export, customs,
                       customs / uplift[incoterm[i_decl]]) * d_rate[i_decl]
    invoice = np.round(invoice, 2)
    desc = prod.desc_start[p] + (rng.random(n_it) * prod.desc_n[p]).astype(np.int64)
    seller = np.where(i_export & ~d_reexport[i_decl], -1, seller)
    related = np.where(seller < 0, False, related)

    ttype = np.concatenate(truth_type) if truth_type else np.zeros(0, dtype=int)
    titem = np.concatenate(truth_item) if truth_item else np.zeros(0, dtype=int)
    tdetail = [d for chunk in truth_detail for d in chunk]
    return {
        "d_trader": d_trader, "d_day": d_day, "d_export": d_export, "d_office": office,
        "d_proc": proc, "proc_names": proc_names, "d_mode": mode, "modes": modes,
        "d_dispatch": dispatch, "d_incoterm": incoterm, "inco_names": inco_names,
        "d_currency": currency, "d_declarant": declarant, "n_brokers": n_brokers,
        "d_channel": channel,
        "i_decl": i_decl, "i_no": item_no, "i_declared": declared, "i_desc": desc,
        "i_origin": o, "i_seller": seller, "i_related": related, "i_pref": pref,
        "i_mass": mass, "i_qty": qty, "i_unit": unit, "i_invoice": invoice,
        "i_customs": customs, "i_rate": rate, "i_duty": duty, "i_vat": vat,
        "i_export": i_export, "i_trader": i_trader,
        "t_type": ttype, "t_item": titem, "t_detail": tdetail,
    }


def _dict(pa: Any, indices: np.ndarray, values: list[str], null: np.ndarray | None = None) -> Any:
    """An Arrow dictionary array: small integer codes plus their strings."""
    idx = pa.array(np.asarray(indices).astype(np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(idx, pa.array(values, pa.string()))


def _write(con: Any, pa: Any, tr: Traders, sl: Slots, prod: Products, countries: list[str],
           days: np.ndarray, data: dict[str, Any], say: Progress) -> None:
    traders = pa.table({
        "trader_id": pa.array(tr.ids), "name": pa.array(tr.names), "tin": pa.array(tr.tins),
        "country": pa.array(tr.country), "region": pa.array(tr.region),
        "sector": _dict(pa, tr.sector, [V.SECTORS[k].label for k in SECTOR_KEYS]),
        "aeo_status": pa.array(tr.aeo),
        "registered_on": pa.array(tr.registered.astype("datetime64[D]"), pa.date32()),
    })
    con.register("_traders", traders)
    con.execute("INSERT INTO traders SELECT * FROM _traders ORDER BY trader_id")
    con.unregister("_traders")

    d = data
    n_decl = len(d["d_trader"])
    offices = V.OFFICES
    declarants = [f"BRK{i + 1:04d}" for i in range(d["n_brokers"])] + tr.ids
    decl = pa.table({
        "decl_idx": pa.array(np.arange(n_decl, dtype=np.int64)),
        "declaration_date": pa.array(days[d["d_day"]].astype("datetime64[D]"), pa.date32()),
        "flow": _dict(pa, d["d_export"].astype(np.int8), ["import", "export"]),
        "trader_id": _dict(pa, d["d_trader"], tr.ids),
        "declarant_id": _dict(pa, d["d_declarant"], declarants),
        "office_code": _dict(pa, d["d_office"], [o.code for o in offices]),
        "customs_office": _dict(pa, d["d_office"], [o.name for o in offices]),
        "procedure_code": _dict(pa, d["d_proc"], d["proc_names"]),
        "transport_mode": _dict(pa, d["d_mode"], list(d["modes"])),
        "dispatch_country": _dict(pa, d["d_dispatch"], countries),
        "incoterm": _dict(pa, d["d_incoterm"], d["inco_names"]),
        "currency": _dict(pa, d["d_currency"], list(V.CURRENCIES)),
        "control_channel": _dict(pa, d["d_channel"], ["green", "yellow", "red"]),
    })
    con.register("_decl", decl)
    say(f"Writing {n_decl:,} declarations")
    con.execute("""
        CREATE TEMP TABLE _ids AS
        SELECT decl_idx, declaration_date, trader_id::VARCHAR AS trader_id,
               flow::VARCHAR AS flow,
               printf('%d-%s-%s-%07d', year(declaration_date), office_code::VARCHAR,
                      CASE WHEN flow::VARCHAR = 'import' THEN 'IM' ELSE 'EX' END,
                      row_number() OVER (PARTITION BY year(declaration_date), office_code, flow
                                         ORDER BY declaration_date, trader_id::VARCHAR, decl_idx)
               ) AS declaration_id
        FROM _decl
    """)
    con.execute("""
        INSERT INTO declarations
        SELECT i.declaration_id, d.declaration_date, d.flow, d.trader_id, d.declarant_id,
               d.customs_office, d.procedure_code, d.transport_mode, d.dispatch_country,
               d.incoterm, d.currency, d.control_channel
        FROM _decl d JOIN _ids i USING (decl_idx)
        ORDER BY d.declaration_date, i.trader_id, i.declaration_id
    """)
    con.unregister("_decl")

    n_it = len(d["i_decl"])
    say(f"Writing {n_it:,} declaration items")
    no_seller = d["i_seller"] < 0
    items = pa.table({
        "decl_idx": pa.array(d["i_decl"].astype(np.int64)),
        "item_no": pa.array(d["i_no"]),
        "hs_code": _dict(pa, d["i_declared"], prod.code),
        "goods_description": _dict(pa, d["i_desc"], prod.texts),
        "origin_country": _dict(pa, d["i_origin"], countries),
        "seller_id": _dict(pa, np.where(no_seller, 0, d["i_seller"]), sl.seller_ids, no_seller),
        "related_party": pa.array(d["i_related"].astype(bool), mask=d["i_export"] & no_seller),
        "preference_code": _dict(pa, np.maximum(d["i_pref"], 0), ["100", "300"],
                                 d["i_pref"] < 0),
        "net_mass_kg": pa.array(d["i_mass"]),
        "quantity": pa.array(d["i_qty"]),
        "quantity_unit": _dict(pa, d["i_unit"], list(UNITS)),
        "invoice_value": pa.array(d["i_invoice"]),
        "customs_value": pa.array(d["i_customs"]),
        "duty_rate_pct": pa.array(d["i_rate"]),
        "duty_amount": pa.array(d["i_duty"]),
        "vat_amount": pa.array(d["i_vat"]),
    })
    con.register("_items", items)
    con.execute("""
        INSERT INTO declaration_items
        SELECT i.declaration_id, t.item_no, t.hs_code, t.goods_description, t.origin_country,
               t.seller_id, t.related_party, t.preference_code, t.net_mass_kg, t.quantity,
               t.quantity_unit, t.invoice_value, t.customs_value, t.duty_rate_pct,
               t.duty_amount, t.vat_amount,
               i.trader_id, i.declaration_date, i.flow, left(t.hs_code::VARCHAR, 2)
        FROM _items t JOIN _ids i USING (decl_idx)
        ORDER BY i.trader_id, i.declaration_date, i.declaration_id, t.item_no
    """)
    con.unregister("_items")


def _write_truth(con: Any, pa: Any, data: dict[str, Any], truth_path: Path) -> dict[str, int]:
    """Write the planted anomalies next to the database; returns item rows per type."""
    items = data["t_item"].astype(np.int64)
    table = pa.table({
        "anomaly_type": _dict(pa, data["t_type"], list(ANOMALY_TYPES)),
        "decl_idx": pa.array(data["i_decl"][items].astype(np.int64)),
        "item_no": pa.array(data["i_no"][items]),
        "detail": pa.array(data["t_detail"], pa.string()),
    })
    con.register("_truth", table)
    target = str(truth_path).replace("'", "''")
    con.execute(f"""
        COPY (
            SELECT t.anomaly_type::VARCHAR AS anomaly_type, i.trader_id, i.declaration_id,
                   t.item_no, t.detail
            FROM _truth t JOIN _ids i USING (decl_idx)
            ORDER BY anomaly_type, i.trader_id, i.declaration_date, i.declaration_id, t.item_no
        ) TO '{target}' (HEADER, DELIMITER ',')
    """)
    con.unregister("_truth")
    counts = np.bincount(data["t_type"].astype(np.int64), minlength=len(ANOMALY_TYPES))
    return {name: int(counts[i]) for i, name in enumerate(ANOMALY_TYPES)}


def _write_audits(con: Any, rng: np.random.Generator, tr: Traders, plan: Plan,
                  data: dict[str, Any], start: date, end: date) -> int:
    """An audit history: a few audits for some traders, with outcomes and amounts."""
    n_t = len(tr.ids)
    years = max((end - start).days / 365.25, 1.0)
    yearly_duty = np.bincount(data["i_trader"], weights=data["i_duty"], minlength=n_t) / years
    yearly_value = np.bincount(data["i_trader"], weights=data["i_customs"], minlength=n_t) / years
    planted = np.array([t in plan.kind for t in range(n_t)])
    p = 0.04 + 0.25 * tr.rank + np.where(planted, 0.2, 0.0)
    audited = np.flatnonzero(rng.random(n_t) < p)
    earliest = start.toordinal() - 3 * 365
    rows: list[tuple[Any, ...]] = []
    type_names = [t for t, _ in V.AUDIT_TYPES]
    for t in audited:
        registered = int(tr.registered[t].astype("datetime64[D]").astype(np.int64))
        first = max(earliest, date(1970, 1, 1).toordinal() + registered + 365)
        if first >= end.toordinal() - 60:
            continue
        for _ in range(1 + int(rng.binomial(2, 0.3))):
            opened = date.fromordinal(first + int(rng.integers(0, end.toordinal() - 30 - first)))
            kind = type_names[_choice(rng, V.AUDIT_TYPES, 1)[0]]
            if plan.kind.get(int(t)) == "related_party_pricing" and rng.random() < 0.5:
                kind = "Valuation audit"
            closed_ord = opened.toordinal() + int(rng.integers(30, 300))
            cover = f"{opened.year - 2}-{opened.year - 1}"
            if closed_ord > end.toordinal():
                rows.append((t, opened, None, kind, "In progress", None, None,
                             f"{kind} of declarations {cover}, opened {opened:%B %Y}; "
                             "fieldwork ongoing."))
                continue
            outcome = V.AUDIT_OUTCOMES[_choice(rng, V.AUDIT_OUTCOMES, 1)[0]][0]
            findings = V.AUDIT_FINDINGS[kind]
            finding = findings[int(rng.integers(len(findings)))]
            add = pen = 0.0
            if outcome in ("Additional duty assessed", "Additional duty and penalty",
                           "Referred for investigation"):
                basis = max(yearly_duty[t], yearly_value[t] * 0.002, 2_000.0)
                add = round(float(basis * rng.uniform(0.01, 0.08)), 2)
            if outcome == "Additional duty and penalty":
                pen = round(add * float(rng.uniform(0.2, 1.0)), 2)
            if outcome == "No findings":
                summary = (f"{kind} of declarations {cover} found the declared values, "
                           "classification and origin consistent with the trader's records.")
            elif outcome == "Warning issued":
                summary = (f"{kind} of declarations {cover}: {finding}; "
                           "a written warning was issued.")
            elif outcome == "Referred for investigation":
                summary = (f"{kind} of declarations {cover}: {finding}; USD {add:,.0f} assessed "
                           "and the case referred to the investigations unit.")
            elif pen:
                summary = (f"{kind} of declarations {cover}: {finding}; USD {add:,.0f} "
                           f"additional duty and a USD {pen:,.0f} penalty.")
            else:
                summary = f"{kind} of declarations {cover}: {finding}; USD {add:,.0f} assessed."
            rows.append((t, opened, date.fromordinal(closed_ord), kind, outcome, add, pen,
                         summary))
    rows.sort(key=lambda r: (r[1], r[0]))
    seq: dict[int, int] = {}
    out = []
    for t, opened, closed, kind, outcome, add, pen, summary in rows:
        seq[opened.year] = seq.get(opened.year, 0) + 1
        out.append((f"AUD-{opened.year}-{seq[opened.year]:04d}", tr.ids[int(t)], opened, closed,
                    kind, outcome, add, pen, summary))
    if out:
        import pandas as pd

        frame = pd.DataFrame(out, columns=["audit_id", "trader_id", "opened_on", "closed_on",
                                           "audit_type", "outcome", "additional_duty",
                                           "penalty_amount", "summary"])
        con.register("_audits", frame)
        con.execute("INSERT INTO audits SELECT * FROM _audits ORDER BY audit_id")
        con.unregister("_audits")
    return len(out)
