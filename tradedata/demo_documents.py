"""Demo trade documents for a demo database: invoices, packing lists and certificates of origin.

For a sample of import declarations the generator writes the documents a trader would hold
(PDF with a text layer, or XLSX), most of them matching their declaration and some with a
planted discrepancy:

| planted        | document                        | what differs from the declaration            |
| ---            | ---                             | ---                                          |
| value          | invoice of an undervaluation    | the planted lines at the real price (3-7x)   |
|                | trader                          |                                              |
| origin         | certificate of origin of an     | origin China where the declaration says VN,  |
|                | origin-switching trader         | MY, TH or ID                                 |
| split          | invoice or packing list of a    | one document for a whole cluster of small    |
|                | split-consignment trader        | declarations: quantity, mass (and value)     |
| hs_code        | invoice of a misclassification  | the HS code of the goods really shipped      |
|                | trader                          |                                              |
| relationship   | invoice of another trader       | "seller controls the buyer" where every item |
|                |                                 | is declared unrelated                        |
| currency       | invoice of another trader       | the same amounts in GBP where the declaration|
|                |                                 | says USD                                     |

Everything goes into `<db stem>.documents/` next to the database (like the truth file of the
data): the documents, `truth.csv` (one row per document: its declaration, what was planted,
the discrepancies that must be found and those that may follow from them) and `fields.json`
(what was printed on each document, to measure field extraction). Deterministic for a seed.

    generate_demo_documents(Path("trade.duckdb"))  # -> DocumentsSummary
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from tamga.errors import TamgaError
from tradedata.demo import truth_path_for

Progress = Callable[[str], None]
PLANTED_KINDS = ("value", "origin", "split", "hs_code", "relationship", "currency")
TRUTH_COLUMNS = ["document", "doc_type", "format", "trader_id", "declaration_id", "accepted",
                 "planted", "fields", "also", "detail"]
# The anomaly type of the demo data each planted kind comes from ("" for document-only plants).
FROM_ANOMALY = {"value": "undervaluation", "origin": "origin_switching",
                "split": "split_consignment", "hs_code": "misclassification"}
MAX_ITEMS = 14  # declarations with more lines are not sampled (documents stay 1-2 pages)


def documents_dir_for(db_path: Path) -> Path:
    """Where the demo documents of a demo database live: next to it, `<stem>.documents/`."""
    db_path = Path(db_path)
    return db_path.with_name(f"{db_path.stem}.documents")


@dataclass
class DemoDocument:
    """One generated document and its ground truth."""

    document: str
    doc_type: str
    fmt: str
    trader_id: str
    declaration_id: str
    accepted: list[str]  # declarations the document may be matched to (a split cluster)
    planted: str  # "" for a clean document
    fields: list[str]  # discrepancies a verifier must report
    also: list[str]  # discrepancies that may follow from the planted one
    detail: str
    printed: dict[str, Any]

    def truth_row(self) -> dict[str, str]:
        """The document's row of truth.csv."""
        return {"document": self.document, "doc_type": self.doc_type, "format": self.fmt,
                "trader_id": self.trader_id, "declaration_id": self.declaration_id,
                "accepted": ";".join(self.accepted), "planted": self.planted,
                "fields": ";".join(self.fields), "also": ";".join(self.also),
                "detail": self.detail}


@dataclass
class DocumentsSummary:
    """What `generate_demo_documents` wrote."""

    folder: Path
    documents: int
    planted: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def describe(self) -> str:
        """A line or two for a person."""
        planted = ", ".join(f"{k} {v}" for k, v in self.planted.items() if v)
        clean = self.documents - sum(self.planted.values())
        return (f"Wrote {self.documents} demo documents to {self.folder} in "
                f"{self.elapsed_s:,.1f} s ({clean} matching their declaration; planted "
                f"discrepancies: {planted or 'none'}); truth in {self.folder / 'truth.csv'}")


def read_truth(folder: Path) -> list[dict[str, str]]:
    """The rows of a documents folder's truth.csv."""
    with (Path(folder) / "truth.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- the data


_ITEM_SQL = """
SELECT d.declaration_id, d.declaration_date, d.trader_id, d.incoterm, d.currency,
       d.dispatch_country, t.name, t.tin, t.region, t.country,
       i.item_no, i.hs_code, i.goods_description, i.origin_country, i.seller_id,
       i.related_party, i.net_mass_kg, i.quantity, i.quantity_unit, i.invoice_value
FROM declarations d JOIN declaration_items i USING (declaration_id)
JOIN traders t ON t.trader_id = d.trader_id
WHERE d.declaration_id IN (SELECT unnest($ids)) ORDER BY d.declaration_id, i.item_no
"""


def _declarations(con: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not ids:
        return out
    for row in con.execute(_ITEM_SQL, {"ids": ids}).fetchall():
        (did, day, trader, inco, cur, dispatch, name, tin, region, country, no, hs, desc,
         origin, seller, related, mass, qty, unit, inv) = row
        decl = out.setdefault(did, {
            "declaration_id": did, "date": day, "trader_id": trader, "incoterm": inco,
            "currency": cur, "dispatch": dispatch, "buyer": name, "tin": tin,
            "region": region, "country": country, "items": []})
        decl["items"].append({"item_no": no, "hs_code": hs, "description": desc,
                              "origin": origin, "seller": seller, "related": bool(related),
                              "mass": float(mass or 0), "qty": float(qty or 0), "unit": unit,
                              "value": float(inv or 0)})
    return out


# --------------------------------------------------------------------------- names


_SELLER_WORDS = ("Meridian", "Pacific", "Golden Bridge", "Summit", "Evergreen", "Harbor",
                 "Northstar", "Silverline", "Orient", "Atlas", "Crescent", "Vanguard", "Keystone",
                 "Bluewater", "Redwood", "Sunrise", "Continental", "Horizon", "Pioneer", "Zenith")
_SELLER_TRADES = ("Trading", "Industries", "Manufacturing", "Export", "Supply", "Products",
                  "International", "Works", "Commerce", "Materials")
_FORMS = {"CN": "Co., Ltd.", "VN": "Co., Ltd.", "TH": "Co., Ltd.", "KR": "Co., Ltd.",
          "JP": "K.K.", "DE": "GmbH", "AT": "GmbH", "CH": "AG", "IT": "S.r.l.", "ES": "S.L.",
          "FR": "S.A.S.", "NL": "B.V.", "BE": "N.V.", "GB": "Ltd", "US": "Inc.",
          "MX": "S.A. de C.V.", "CO": "S.A.S.", "IN": "Pvt. Ltd.", "MY": "Sdn. Bhd.", "ID": "PT",
          "TR": "A.Ş."}
_CITIES = {"CN": "Shanghai", "VN": "Ho Chi Minh City", "TH": "Bangkok", "KR": "Busan",
           "JP": "Osaka", "DE": "Hamburg", "IT": "Milan", "ES": "Valencia", "FR": "Lyon",
           "NL": "Rotterdam", "GB": "Manchester", "US": "Miami", "MX": "Monterrey",
           "CO": "Medellín", "IN": "Chennai", "MY": "Port Klang", "ID": "Surabaya",
           "TR": "Istanbul", "CR": "San José", "BR": "São Paulo", "CL": "Santiago",
           "TW": "Kaohsiung", "BD": "Chittagong", "CH": "Basel", "PA": "Panamá"}


def country_name(code: str | None) -> str:
    """A country's common name ('VN' -> 'Viet Nam'), the code itself when unknown."""
    import pycountry

    found = pycountry.countries.get(alpha_2=str(code or ""))
    if found is None:
        return str(code or "")
    return str(getattr(found, "common_name", None) or found.name)


def seller_name(seller_id: str | None) -> str:
    """An invented, stable company name for a demo seller ID ('SCN00012')."""
    if not seller_id:
        return "Unknown supplier"
    h = zlib.crc32(seller_id.encode())
    country = seller_id[1:3]
    word = _SELLER_WORDS[h % len(_SELLER_WORDS)]
    trade = _SELLER_TRADES[(h // 31) % len(_SELLER_TRADES)]
    form = _FORMS.get(country, "Ltd.")
    return f"PT {word} {trade}" if form == "PT" else f"{word} {trade} {form}"


def seller_address(seller_id: str | None) -> str:
    """A city and country for a demo seller."""
    country = (seller_id or "S??")[1:3]
    city = _CITIES.get(country)
    return f"{city}, {country_name(country)}" if city else country_name(country)


# --------------------------------------------------------------------------- selection


def _truth(db_path: Path) -> list[dict[str, str]]:
    path = truth_path_for(db_path)
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _spread(rng: np.random.Generator, by_trader: dict[str, list[str]], n: int) -> list[str]:
    """Up to n declarations, taken round-robin over traders (each trader's list shuffled)."""
    pools = {t: list(rng.permutation(sorted(ids))) for t, ids in sorted(by_trader.items())}
    out: list[str] = []
    while len(out) < n and any(pools.values()):
        for t in sorted(pools):
            if pools[t] and len(out) < n:
                out.append(str(pools[t].pop()))
    return out


def _split_clusters(con: Any, rows: list[dict[str, str]]) -> list[list[str]]:
    """Clusters of split declarations: same trader and subheading, within three days."""
    ids = sorted({r["declaration_id"] for r in rows})
    if not ids:
        return []
    found = con.execute("""
        SELECT d.trader_id, left(i.hs_code, 6), d.declaration_date, d.declaration_id
        FROM declarations d JOIN declaration_items i USING (declaration_id)
        WHERE d.declaration_id IN (SELECT unnest($ids)) ORDER BY 1, 2, 3, 4""",
                        {"ids": ids}).fetchall()
    clusters: list[list[str]] = []
    key, first = None, None
    for trader, hs6, day, did in found:
        if (trader, hs6) != key or first is None or (day - first).days > 3:
            clusters.append([])
            key, first = (trader, hs6), day
        if did not in clusters[-1]:
            clusters[-1].append(did)
    return [c for c in clusters if len(c) >= 3]


def _true_hs(detail: str) -> str | None:
    m = re.search(r"\((\d{6}),", detail)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- the generator


def generate_demo_documents(
    db_path: Path, out_dir: Path | None = None, *, seed: int = 7, clean: int = 40,
    per_kind: int = 4, progress: Progress | None = None,
) -> DocumentsSummary:
    """Write demo documents for a sample of the declarations of a demo database.

    `clean` documents match their declaration; up to `per_kind` carry each planted kind of
    discrepancy. The folder (default `<db stem>.documents/` next to the database) is replaced.
    """
    from tradedata.db import connect

    say = progress or (lambda _m: None)
    started = time.perf_counter()
    db_path = Path(db_path).expanduser().resolve()
    folder = Path(out_dir) if out_dir else documents_dir_for(db_path)
    rng = np.random.default_rng(seed)
    truth = _truth(db_path)
    con = connect(db_path, read_only=True)
    try:
        plan = _plan(con, rng, truth, clean, per_kind)
        decls = _declarations(con, sorted({d for p in plan for d in p["decls"]}))
    finally:
        con.close()
    say(f"Writing {len(plan)} demo documents to {folder}")
    tmp = folder.with_name(f".{folder.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    docs: list[DemoDocument] = []
    counters: dict[str, int] = {}
    try:
        for n, item in enumerate(plan, 1):
            doc = _make(item, decls, rng, n, counters)
            layout = _layout(doc)
            path = tmp / doc.document
            if doc.fmt == "pdf":
                path.write_bytes(_pdf(layout))
            else:
                _xlsx(layout, path)
            docs.append(doc)
        with (tmp / "truth.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS)
            writer.writeheader()
            for doc in docs:
                writer.writerow(doc.truth_row())
        (tmp / "fields.json").write_text(
            json.dumps({d.document: d.printed for d in docs}, indent=1, default=str,
                       ensure_ascii=False), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except OSError as exc:
        raise TamgaError(f"Could not write the demo documents to {folder}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    planted = {k: sum(1 for d in docs if d.planted == k) for k in PLANTED_KINDS}
    return DocumentsSummary(folder, len(docs), planted, time.perf_counter() - started)


def _plan(con: Any, rng: np.random.Generator, truth: list[dict[str, str]], clean: int,
          per_kind: int) -> list[dict[str, Any]]:
    """Which declarations get which document: planted kinds first, then clean ones."""
    small = {r[0] for r in con.execute(
        "SELECT declaration_id FROM declaration_items WHERE flow = 'import' "
        f"GROUP BY 1 HAVING count(*) <= {MAX_ITEMS}").fetchall()}
    planted_decls = {r["declaration_id"] for r in truth}
    anomaly_traders = {r["trader_id"] for r in truth}
    plan: list[dict[str, Any]] = []
    used: set[str] = set()

    def by_trader(kind: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in truth:
            if r["anomaly_type"] == kind and r["declaration_id"] in small:
                out.setdefault(r["trader_id"], [])
                if r["declaration_id"] not in out[r["trader_id"]]:
                    out[r["trader_id"]].append(r["declaration_id"])
        return out

    for kind in ("value", "origin", "hs_code"):
        anomaly = FROM_ANOMALY[kind]
        items = {(r["declaration_id"], int(r["item_no"])): r["detail"]
                 for r in truth if r["anomaly_type"] == anomaly}
        for did in _spread(rng, by_trader(anomaly), per_kind):
            plan.append({"kind": kind, "decls": [did], "items": items})
            used.add(did)
    split_rows = [r for r in truth if r["anomaly_type"] == "split_consignment"]
    clusters = _split_clusters(con, split_rows)
    chosen: list[int] = [int(i) for i in rng.permutation(len(clusters))[:per_kind]]
    for k, idx in enumerate(sorted(int(i) for i in chosen)):
        plan.append({"kind": "split", "decls": clusters[idx], "items": {},
                     "doc_type": "invoice" if k % 2 == 0 else "packing_list"})
        used.update(clusters[idx])

    others = [r for r in con.execute("""
        SELECT declaration_id, trader_id, any_value(currency), bool_or(related_party),
               count(seller_id)
        FROM declaration_items JOIN declarations USING (declaration_id, trader_id)
        WHERE declaration_items.flow = 'import' GROUP BY 1, 2 ORDER BY 1""").fetchall()
        if r[0] in small and r[0] not in planted_decls and r[1] not in anomaly_traders
        and r[4] > 0]
    order = [others[int(i)] for i in rng.permutation(len(others))]
    relationship = [r for r in order if not r[3]][:per_kind]
    for r in relationship:
        plan.append({"kind": "relationship", "decls": [r[0]], "items": {}})
        used.add(r[0])
    currency = [r for r in order if r[2] == "USD" and r[0] not in used][:per_kind]
    for r in currency:
        plan.append({"kind": "currency", "decls": [r[0]], "items": {}})
        used.add(r[0])
    # Clean documents: declarations without any planted item, of any trader.
    pool = sorted(d for d in small if d not in planted_decls and d not in used)
    picks = [pool[int(i)] for i in rng.permutation(len(pool))[:clean]]
    kinds = ("invoice", "invoice", "packing_list", "certificate_of_origin")
    for k, did in enumerate(picks):
        plan.append({"kind": "", "decls": [did], "items": {}, "doc_type": kinds[k % 4]})
    return plan


def _fmt_qty(qty: float, unit: str) -> str:
    return f"{qty:,.3f}" if unit in ("kg", "l") else f"{qty:,.0f}"


def _make(item: dict[str, Any], decls: dict[str, dict[str, Any]], rng: np.random.Generator,
          n: int, counters: dict[str, int]) -> DemoDocument:
    kind = item["kind"]
    decl = decls[item["decls"][0]]
    doc_type = item.get("doc_type") or {"origin": "certificate_of_origin"}.get(kind, "invoice")
    fmt = "pdf" if n % 3 else "xlsx"
    currency = decl["currency"] or "USD"
    lines: list[dict[str, Any]] = []
    detail = ""
    fields_: list[str] = []
    also: list[str] = []
    for it in decl["items"]:
        lines.append({"description": it["description"], "hs_code": it["hs_code"][:6],
                      "quantity": it["qty"], "unit": it["unit"], "net_mass_kg": it["mass"],
                      "value": it["value"], "origin": it["origin"]})
    related = any(it["related"] for it in decl["items"])
    planted_items = [k[1] for k in item["items"] if k[0] == decl["declaration_id"]]
    if kind == "value":
        factors = []
        for no in planted_items:
            f = float(rng.uniform(3.0, 7.0))
            lines[no - 1]["value"] = round(lines[no - 1]["value"] * f, 2)
            factors.append(f)
        fields_ = ["invoice_value", "customs_value"]
        detail = (f"lines {', '.join(map(str, planted_items))} invoiced at "
                  f"{min(factors):.1f}-{max(factors):.1f} times the declared value")
    elif kind == "origin":
        for no in planted_items:
            lines[no - 1]["origin"] = "CN"
        fields_ = ["origin"]
        declared = sorted({decl["items"][no - 1]["origin"] for no in planted_items})
        detail = (f"certificate says China for lines {', '.join(map(str, planted_items))}; "
                  f"declared {', '.join(declared)}")
    elif kind == "hs_code":
        for no in planted_items:
            true = _true_hs(item["items"][(decl["declaration_id"], no)])
            if true:
                lines[no - 1]["hs_code"] = true
        fields_ = ["hs_code"]
        detail = (f"invoice gives the real subheading for lines "
                  f"{', '.join(map(str, planted_items))}: {lines[planted_items[0] - 1]['hs_code']}"
                  f", declared {decl['items'][planted_items[0] - 1]['hs_code'][:6]}")
    elif kind == "relationship":
        related = True
        fields_ = ["relationship"]
        detail = "invoice states the seller controls the buyer; every item declared unrelated"
    elif kind == "currency":
        currency = "GBP"
        fields_ = ["currency"]
        also = ["invoice_value", "customs_value"]
        detail = f"invoice in GBP with the amounts declared in {decl['currency']}"
    elif kind == "split":
        parts = [decls[d] for d in item["decls"]]
        items = [p["items"][0] for p in parts]
        first = items[0]
        lines = [{"description": first["description"], "hs_code": first["hs_code"][:6],
                  "quantity": round(sum(i["qty"] for i in items), 3), "unit": first["unit"],
                  "net_mass_kg": round(sum(i["mass"] for i in items), 3),
                  "value": round(sum(i["value"] for i in items), 2),
                  "origin": first["origin"]}]
        decl = min(parts, key=lambda p: (p["date"], p["declaration_id"]))
        fields_ = ["quantity", "net_mass_kg"] + (
            ["invoice_value", "customs_value"] if doc_type == "invoice" else [])
        detail = (f"one {doc_type.replace('_', ' ')} for {len(parts)} declarations of "
                  f"{first['hs_code'][:6]} within three days")
    doc_date = decl["date"] - timedelta(days=int(rng.integers(3, 21)))
    counters[doc_type] = counters.get(doc_type, 0) + 1
    prefix = {"invoice": "INV", "packing_list": "PL", "certificate_of_origin": "CO"}[doc_type]
    number = f"{prefix}-{doc_date.year}-{counters[doc_type] * 37 + 1000:05d}"
    seller = decl["items"][0]["seller"]
    printed = {
        "document_type": doc_type, "document_number": number, "document_date": doc_date,
        "seller": seller_name(seller), "buyer": decl["buyer"], "buyer_tin": decl["tin"],
        "lines": lines,
    }
    if doc_type == "invoice":
        printed.update(currency=currency, incoterm=decl["incoterm"], relationship=related,
                       total_value=round(sum(ln["value"] for ln in lines), 2))
    ext = "pdf" if fmt == "pdf" else "xlsx"
    return DemoDocument(
        document=f"{doc_type.replace('_', '-')}-{n:03d}.{ext}", doc_type=doc_type, fmt=fmt,
        trader_id=decl["trader_id"], declaration_id=decl["declaration_id"],
        accepted=list(item["decls"]), planted=kind, fields=fields_, also=also,
        detail=detail, printed=printed | {"_seller_id": seller, "_decl": decl})


# --------------------------------------------------------------------------- layout


@dataclass
class Layout:
    """A document as titled header pairs, one table and closing lines."""

    title: str
    header: list[tuple[str, str]]
    columns: list[str]
    rows: list[list[str]]
    totals: list[tuple[str, str]]
    footer: list[str]
    widths: list[float]


def _date_text(d: date, n: int) -> str:
    return (d.isoformat(), d.strftime("%d %b %Y"), d.strftime("%d/%m/%Y"))[n % 3]


def _layout(doc: DemoDocument) -> Layout:
    p = doc.printed
    decl = p.pop("_decl")
    seller_id = p.pop("_seller_id")
    n = int(re.sub(r"\D", "", doc.document) or 0)
    buyer_where = f"{decl['region'] or 'Panamá'}, {country_name(decl['country'])}"
    when = _date_text(p["document_date"], n)
    lines = p["lines"]
    if doc.doc_type == "invoice":
        cur = p["currency"]
        header = [("Invoice No.", p["document_number"]), ("Invoice date", when),
                  ("Seller", p["seller"]), ("Seller address", seller_address(seller_id)),
                  ("Supplier ref.", seller_id or ""),
                  ("Buyer", p["buyer"]), ("Buyer TIN", p["buyer_tin"] or ""),
                  ("Buyer address", buyer_where), ("Currency", cur),
                  ("Incoterms", f"{p['incoterm']} (Incoterms 2020)"),
                  ("Relationship between seller and buyer",
                   "related: the seller controls the buyer" if p["relationship"]
                   else "none (independent parties)")]
        columns = ["No.", "Description of goods", "HS code", "Quantity", "Unit",
                   "Net mass (kg)", "Unit price", f"Amount ({cur})", "Origin"]
        widths = [10, 84, 20, 24, 12, 26, 24, 30, 32]
        rows = [[str(k), ln["description"], f"{ln['hs_code'][:4]}.{ln['hs_code'][4:6]}",
                 _fmt_qty(ln["quantity"], ln["unit"]), ln["unit"], f"{ln['net_mass_kg']:,.3f}",
                 f"{ln['value'] / max(ln['quantity'], 1e-9):,.4f}", f"{ln['value']:,.2f}",
                 country_name(ln["origin"])] for k, ln in enumerate(lines, 1)]
        totals = [(f"Total ({cur})", f"{p['total_value']:,.2f}"),
                  ("Total net mass (kg)", f"{sum(ln['net_mass_kg'] for ln in lines):,.3f}")]
        footer = ["We certify that this invoice is true and correct and shows the price "
                  "actually paid or payable for the goods described."]
        title = "COMMERCIAL INVOICE"
    elif doc.doc_type == "packing_list":
        header = [("Packing list No.", p["document_number"]), ("Date", when),
                  ("Shipper", p["seller"]), ("Shipper address", seller_address(seller_id)),
                  ("Consignee", p["buyer"]), ("Consignee TIN", p["buyer_tin"] or ""),
                  ("Consignee address", buyer_where)]
        columns = ["No.", "Description of goods", "Quantity", "Unit", "Net mass (kg)",
                   "Gross mass (kg)", "Packages"]
        widths = [10, 110, 28, 14, 30, 30, 40]
        rows = [[str(k), ln["description"], _fmt_qty(ln["quantity"], ln["unit"]), ln["unit"],
                 f"{ln['net_mass_kg']:,.3f}", f"{ln['net_mass_kg'] * 1.06 + 2:,.3f}",
                 f"{max(1, round(ln['net_mass_kg'] / 400))} pallets"]
                for k, ln in enumerate(lines, 1)]
        totals = [("Total net mass (kg)", f"{sum(ln['net_mass_kg'] for ln in lines):,.3f}")]
        footer = ["Marks and numbers as per commercial invoice."]
        title = "PACKING LIST"
    else:
        header = [("Certificate No.", p["document_number"]), ("Date of issue", when),
                  ("Exporter", p["seller"]), ("Exporter address", seller_address(seller_id)),
                  ("Consignee", p["buyer"]), ("Consignee TIN", p["buyer_tin"] or ""),
                  ("Consignee address", buyer_where)]
        columns = ["No.", "Description of goods", "HS code", "Quantity", "Unit",
                   "Net mass (kg)", "Country of origin"]
        widths = [10, 110, 22, 28, 14, 30, 48]
        rows = [[str(k), ln["description"], f"{ln['hs_code'][:4]}.{ln['hs_code'][4:6]}",
                 _fmt_qty(ln["quantity"], ln["unit"]), ln["unit"], f"{ln['net_mass_kg']:,.3f}",
                 country_name(ln["origin"])] for k, ln in enumerate(lines, 1)]
        totals = []
        footer = ["The undersigned authority certifies that the goods described above "
                  "originate in the country shown for each line.",
                  "Chamber of Commerce and Industry, certifying officer."]
        title = "CERTIFICATE OF ORIGIN"
    return Layout(title, header, columns, rows, totals, footer, [float(w) for w in widths])


def _pdf(layout: Layout) -> bytes:
    from tamga.pdf import PdfDocument

    doc = PdfDocument(orientation="L", mono=False)
    pdf = doc.pdf
    pdf.add_page()
    doc.para(layout.title, 14, "B")
    pdf.set_font(doc.body, "", 9)
    for label, value in layout.header:
        pdf.cell(0, 5, doc.clean(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(doc.body, "", 8)
    with pdf.table(text_align="LEFT", col_widths=tuple(layout.widths), line_height=4.2,
                   first_row_as_headings=True) as table:
        table.row([doc.clean(c) for c in layout.columns])
        for row in layout.rows:
            table.row([doc.clean(c) for c in row])
    pdf.ln(2)
    pdf.set_font(doc.body, "", 9)
    for label, value in layout.totals:
        pdf.cell(0, 5, doc.clean(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for line in layout.footer:
        doc.para(line, 8)
    return doc.output()


def _xlsx(layout: Layout, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = layout.title.title()[:31]
    sheet.append([layout.title])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([])
    for label, value in layout.header:
        sheet.append([label, value])
    sheet.append([])
    sheet.append(layout.columns)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in layout.rows:
        sheet.append([_xlsx_value(v) for v in row])
    sheet.append([])
    for label, value in layout.totals:
        sheet.append([label, _xlsx_value(value)])
    for line in layout.footer:
        sheet.append([line])
    for letter, width in zip("ABCDEFGHI", (8, 50, 12, 12, 8, 14, 12, 14, 16), strict=False):
        sheet.column_dimensions[letter].width = width
    book.save(path)


def _xlsx_value(text: str) -> Any:
    """Numbers as numbers (as a trader's spreadsheet would hold them), text as text."""
    if re.fullmatch(r"-?[\d,]+(\.\d+)?", text) and not re.fullmatch(r"\d{4}\.\d{2}", text):
        return float(text.replace(",", ""))
    return text
