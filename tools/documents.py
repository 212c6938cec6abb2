"""Trade documents read and understood: commercial invoices, packing lists, certificates of origin.

Reading turns every format into the same thing, rows of cells that know where they are:

- PDF with a text layer (pypdf): text pieces with their position, grouped into lines by height
  and into cells by their left edge; `where` reads "page 1, line 12";
- DOCX (python-docx): paragraphs and table rows, "paragraph 4" / "table 1, row 3";
- XLSX (openpyxl, cached cell values only: a formula is never evaluated), "sheet 'Invoice',
  cell D14";
- CSV / plain text, "row 5";
- images (PNG, JPEG, TIFF ...) and scanned PDFs through the tesseract OCR engine when it is
  installed; without it they are refused with a message that says so.

Extraction is rule-based: labelled header fields ("Invoice No.: ...", a label cell followed by
its value cell) and the line-items table, found by its header row and read column by column.
Every field keeps where it came from. Nothing in a document is ever executed or obeyed: text is
data, formulas are not evaluated, sizes are capped before anything is unpacked.

    doc = extract(read_document(data, "invoice.pdf"))
    doc.doc_type, doc.header["currency"].value, doc.lines[0].values["quantity"]
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tamga.errors import DocumentRefused

__all__ = [
    "DocumentText",
    "ExtractedDocument",
    "Field",
    "LineItem",
    "extract",
    "load_bytes",
    "ocr_available",
    "read_document",
    "read_path",
]

MAX_BYTES = 25 * 1024 * 1024  # default size limit; callers pass the configured one
MAX_PAGES = 40
MAX_ROWS = 5_000
MAX_COLUMNS = 60
MAX_SHEETS = 20
MAX_TEXT_CHARS = 2_000_000
MAX_ZIP_ENTRIES = 2_000
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of one member
MAX_VALUE_CHARS = 300
OCR_TIMEOUT_S = 60

TYPES = "PDF, DOCX, XLSX, CSV or an image"
DOC_TYPES = ("invoice", "packing_list", "certificate_of_origin")
DOC_TYPE_LABELS = {"invoice": "commercial invoice", "packing_list": "packing list",
                   "certificate_of_origin": "certificate of origin"}


# --------------------------------------------------------------------------- the text


@dataclass(frozen=True)
class Cell:
    """One piece of text: its column position (x in points, or column index) and place."""

    text: str
    col: float
    where: str


@dataclass
class Row:
    """A line of a page, a paragraph, or a table / sheet row."""

    cells: list[Cell]
    where: str
    y: float = 0.0  # height on the page (PDF, OCR), top of the page is largest
    page: int = 0
    table: int = 0  # DOCX tables: which table the row belongs to (0: none)

    @property
    def text(self) -> str:
        """The row's cells joined with two spaces."""
        return "  ".join(c.text for c in self.cells)


@dataclass
class DocumentText:
    """A document as rows of cells. `positional` rows come from a page (PDF, OCR), whose
    columns are found by x position; grid rows (XLSX, CSV, DOCX tables) by column index."""

    name: str
    kind: str  # pdf, docx, xlsx, csv, image
    rows: list[Row]
    positional: bool
    pages: int = 1
    ocr: bool = False

    @property
    def chars(self) -> int:
        """How much text was read."""
        return sum(len(c.text) for r in self.rows for c in r.cells)


def _clean(text: Any) -> str:
    """Text as data: control characters dropped, spaces squeezed, length capped."""
    s = "" if text is None else str(text)
    s = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in s)
    return s.strip()


def _sniff(data: bytes) -> str:
    head = data[:2048]
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if b"\x00" in head:
        return "binary"
    return "text"


IMAGE_KINDS = ("png", "jpeg", "tiff", "gif", "bmp", "webp")


def read_path(path: Path, max_bytes: int = MAX_BYTES) -> DocumentText:
    """Read a document file (DocumentRefused when it cannot or must not be read)."""
    path = Path(path).expanduser()
    return read_document(load_bytes(path, max_bytes), path.name, max_bytes=max_bytes)


def load_bytes(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """A document file's bytes, its size checked before anything is read."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DocumentRefused(f"No such file: {path}")
    if not path.is_file():
        raise DocumentRefused(f"{path} is not a file.")
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentRefused(
            f"{path.name} is {size / 1e6:,.1f} MB; the limit is {max_bytes / 1e6:,.0f} MB. "
            "Send the invoice, packing list or certificate on its own.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentRefused(f"{path} cannot be read ({exc.strerror or exc}).") from exc


def read_document(data: bytes, name: str, max_bytes: int = MAX_BYTES) -> DocumentText:
    """Read a document from its bytes; the type is told by the content, not the file name."""
    if not data:
        raise DocumentRefused(f"{name} is empty (0 bytes).")
    if len(data) > max_bytes:
        raise DocumentRefused(
            f"{name} is {len(data) / 1e6:,.1f} MB; the limit is {max_bytes / 1e6:,.0f} MB. "
            "Send the invoice, packing list or certificate on its own.")
    kind = _sniff(data)
    if kind == "pdf":
        doc = _read_pdf(data, name)
    elif kind == "zip":
        members = _safe_zip(data, name)
        if "word/document.xml" in members:
            doc = _read_docx(data, name)
        elif "xl/workbook.xml" in members:
            doc = _read_xlsx(data, name)
        else:
            raise DocumentRefused(f"{name} is a ZIP archive but not a DOCX or XLSX document; "
                                  f"Tamga reads {TYPES}.")
    elif kind == "ole":
        raise DocumentRefused(
            f"{name} is an encrypted Office file or an old .doc/.xls file; Tamga reads neither. "
            "Save it as an unprotected DOCX, XLSX or PDF.")
    elif kind in IMAGE_KINDS:
        doc = _read_image(data, name, kind)
    elif kind == "text":
        doc = _read_text(data, name)
    else:
        raise DocumentRefused(f"{name} is not a document Tamga can read ({TYPES}).")
    if doc.chars > MAX_TEXT_CHARS:
        raise DocumentRefused(f"{name} holds more than {MAX_TEXT_CHARS:,} characters of text; "
                              "that is not a single trade document.")
    if not any(c.text for r in doc.rows for c in r.cells):
        raise DocumentRefused(f"{name} contains no text.")
    return doc


def _safe_zip(data: bytes, name: str) -> set[str]:
    """The member names of an Office file, after checking it cannot unpack into a bomb."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentRefused(f"{name} is a damaged ZIP/Office file ({exc}).") from exc
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DocumentRefused(f"{name} has {len(infos):,} parts inside; that is not a normal "
                              "Office document.")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise DocumentRefused(f"{name} is encrypted; Tamga does not read protected files.")
        total += info.file_size
        if info.file_size > 1_000_000 and info.file_size > MAX_ZIP_RATIO * max(
                info.compress_size, 1):
            raise DocumentRefused(f"{name} looks like a ZIP bomb (a part expands "
                                  f"{info.file_size / max(info.compress_size, 1):,.0f} times); "
                                  "refused.")
    if total > MAX_UNZIPPED_BYTES:
        raise DocumentRefused(f"{name} would unpack to {total / 1e6:,.0f} MB; refused.")
    return {i.filename for i in infos}


# -- PDF --------------------------------------------------------------------------------------


@dataclass
class _Piece:
    x: float
    y: float
    size: float
    text: str


def _read_pdf(data: bytes, name: str) -> DocumentText:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise DocumentRefused(f"{name} is an encrypted PDF; Tamga does not read protected "
                                  "documents. Ask for an unprotected copy.")
        pages = list(reader.pages)
    except DocumentRefused:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError) as exc:
        raise DocumentRefused(f"{name} is not a readable PDF ({exc}).") from exc
    if not pages:
        raise DocumentRefused(f"{name} is a PDF without pages.")
    if len(pages) > MAX_PAGES:
        raise DocumentRefused(f"{name} has {len(pages)} pages; the limit is {MAX_PAGES}. "
                              "Send the invoice, packing list or certificate on its own.")
    rows: list[Row] = []
    chars = 0
    for number, page in enumerate(pages, 1):
        pieces: list[_Piece] = []

        def visit(text: str, cm: Sequence[float], tm: Sequence[float], _font: Any,
                  size: float, pieces: list[_Piece] = pieces) -> None:
            text = text.replace("\n", " ").replace("\r", " ")
            if not text.strip():
                return
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            scale = abs(tm[0] * cm[0]) or 1.0
            pieces.append(_Piece(float(x), float(y), float(size or 10) * scale, text))

        try:
            page.extract_text(visitor_text=visit)
        except Exception as exc:  # pypdf raises many kinds on hostile pages
            raise DocumentRefused(f"Page {number} of {name} cannot be read ({exc}).") from exc
        chars += sum(len(p.text) for p in pieces)
        if chars > MAX_TEXT_CHARS:
            raise DocumentRefused(f"{name} holds more than {MAX_TEXT_CHARS:,} characters of "
                                  "text; that is not a single trade document.")
        rows.extend(_page_rows(pieces, number))
    if not rows:
        images = [img.data for page in pages[:MAX_PAGES] for img in _page_images(page)]
        if not images:
            raise DocumentRefused(f"{name} is a PDF without text or images.")
        if not ocr_available():
            raise DocumentRefused(_NO_OCR.format(name=name, what="a scanned PDF (no text layer)"))
        for number, image in enumerate(images, 1):
            rows.extend(_ocr_rows(image, number))
        return DocumentText(name, "pdf", rows, positional=True, pages=len(pages), ocr=True)
    return DocumentText(name, "pdf", rows, positional=True, pages=len(pages))


def _page_images(page: Any) -> list[Any]:
    try:
        return list(page.images)
    except Exception:  # an image pypdf cannot decode is simply not read
        return []


def _page_rows(pieces: list[_Piece], page: int) -> list[Row]:
    """Pieces of text into lines (same height) and cells (close pieces joined)."""
    pieces.sort(key=lambda p: (-p.y, p.x))
    lines: list[list[_Piece]] = []
    for p in pieces:
        if lines and abs(lines[-1][0].y - p.y) <= max(1.5, 0.25 * p.size):
            lines[-1].append(p)
        else:
            lines.append([p])
    rows: list[Row] = []
    for n, line in enumerate(lines, 1):
        line.sort(key=lambda p: p.x)
        merged: list[_Piece] = []
        for p in line:
            if merged:
                last = merged[-1]
                # a lower bound of the text's width: pieces that start right after it are
                # words of the same cell (producers that write word by word)
                end = last.x + 0.3 * last.size * len(last.text)
                if 0 <= p.x - end < 0.3 * last.size and not last.text.endswith("  "):
                    merged[-1] = _Piece(last.x, last.y, last.size, last.text + p.text)
                    continue
            merged.append(p)
        where = f"page {page}, line {n}"
        cells = [Cell(part, p.x + 0.5 * p.size * offset, where)
                 for p in merged for offset, part in _split_wide(p.text)]
        if cells:
            rows.append(Row(cells, where, y=line[0].y, page=page))
    return rows


def _split_wide(text: str) -> list[tuple[int, str]]:
    """Parts of a text separated by 3+ spaces (or a tab), with their character offsets."""
    out = []
    for m in re.finditer(r"(?:[^\s]|\s(?!\s\s)(?=\S))+", text.replace("\t", "   ")):
        part = _clean(m.group(0))
        if part:
            out.append((m.start(), part))
    return out


# -- DOCX -------------------------------------------------------------------------------------


def _read_docx(data: bytes, name: str) -> DocumentText:
    try:
        from docx import Document
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = Document(io.BytesIO(data))
        rows: list[Row] = []
        paragraph_no = table_no = 0
        for child in document.element.body.iterchildren():
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "p":
                paragraph_no += 1
                text = _clean(Paragraph(child, document).text)
                where = f"paragraph {paragraph_no}"
                if text:
                    rows.append(Row([Cell(part, float(offset), where)
                                     for offset, part in _split_wide(text)], where))
            elif tag == "tbl":
                table_no += 1
                table = Table(child, document)
                for r, row in enumerate(table.rows, 1):
                    if len(rows) > MAX_ROWS:
                        break
                    where = f"table {table_no}, row {r}"
                    cells, seen = [], set()
                    for c, cell in enumerate(row.cells[:MAX_COLUMNS]):
                        if id(cell._tc) in seen:
                            continue
                        seen.add(id(cell._tc))
                        text = _clean(cell.text)
                        if text:
                            cells.append(Cell(text, float(c), f"{where}, cell {c + 1}"))
                    if cells:
                        rows.append(Row(cells, where, table=table_no))
            if len(rows) > MAX_ROWS:
                raise DocumentRefused(f"{name} has more than {MAX_ROWS:,} paragraphs and rows.")
    except DocumentRefused:
        raise
    except Exception as exc:  # python-docx / lxml raise many kinds on damaged files
        raise DocumentRefused(f"{name} is not a readable DOCX document ({exc}).") from exc
    return DocumentText(name, "docx", rows, positional=False)


# -- XLSX -------------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else \
            value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 6)) if value != int(value) else str(int(value))
    return _clean(value)


def _read_xlsx(data: bytes, name: str) -> DocumentText:
    try:
        from openpyxl import load_workbook
        from openpyxl.utils import get_column_letter

        # data_only: the value Excel last calculated; a formula is never evaluated here.
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows: list[Row] = []
        try:
            for sheet in book.worksheets[:MAX_SHEETS]:
                for r, values in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS,
                                                           values_only=True), 1):
                    if r > MAX_ROWS:
                        raise DocumentRefused(f"Sheet '{sheet.title}' of {name} has more than "
                                              f"{MAX_ROWS:,} rows.")
                    cells = []
                    for c, value in enumerate(values, 1):
                        text = _cell_text(value)
                        if text:
                            where = f"sheet '{sheet.title}', cell {get_column_letter(c)}{r}"
                            cells.append(Cell(text, float(c), where))
                    if cells:
                        rows.append(Row(cells, f"sheet '{sheet.title}', row {r}"))
        finally:
            book.close()
    except DocumentRefused:
        raise
    except Exception as exc:  # openpyxl raises many kinds on damaged files
        raise DocumentRefused(f"{name} is not a readable XLSX workbook ({exc}).") from exc
    return DocumentText(name, "xlsx", rows, positional=False)


# -- CSV and text -----------------------------------------------------------------------------


def _read_text(data: bytes, name: str) -> DocumentText:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - cp1252 decodes nearly everything
        raise DocumentRefused(f"{name} is not text Tamga can decode.")
    lines = text.splitlines()
    if len(lines) > MAX_ROWS:
        raise DocumentRefused(f"{name} has more than {MAX_ROWS:,} lines.")
    delimiter = _delimiter(lines[:200])
    rows: list[Row] = []
    if delimiter is not None:
        for r, values in enumerate(csv.reader(lines, delimiter=delimiter), 1):
            where = f"row {r}"
            cells = [Cell(_clean(v)[:MAX_VALUE_CHARS], float(c), f"{where}, column {c}")
                     for c, v in enumerate(values[:MAX_COLUMNS], 1) if _clean(v)]
            if cells:
                rows.append(Row(cells, where))
        return DocumentText(name, "csv", rows, positional=False)
    for r, line in enumerate(lines, 1):
        where = f"line {r}"
        cells = [Cell(part, float(offset), where) for offset, part in _split_wide(line)]
        if cells:
            rows.append(Row(cells, where))
    return DocumentText(name, "text", rows, positional=False)


def _delimiter(lines: list[str]) -> str | None:
    """The CSV delimiter: the one of tab, ; | , found on most lines (at least half)."""
    filled = [ln for ln in lines if ln.strip()]
    if not filled:
        return None
    best, best_share = None, 0.5
    for candidate in ("\t", ";", "|", ","):
        share = sum(1 for ln in filled if candidate in ln) / len(filled)
        if share > best_share:
            best, best_share = candidate, share
    return best


# -- images (OCR) -----------------------------------------------------------------------------

_NO_OCR = ("{name} is {what}. Reading it needs an OCR engine (tesseract), which is not installed "
           "on this machine. Install the `tesseract-ocr` package, or ask for the document as a "
           "PDF with a text layer, DOCX, XLSX or CSV.")


def ocr_available() -> bool:
    """True when the tesseract OCR engine is installed (images can then be read)."""
    return shutil.which("tesseract") is not None


def _read_image(data: bytes, name: str, kind: str) -> DocumentText:
    if not ocr_available():
        raise DocumentRefused(_NO_OCR.format(name=name, what=f"an image ({kind.upper()})"))
    rows = _ocr_rows(data, 1)
    return DocumentText(name, "image", rows, positional=True, ocr=True)


def _ocr_rows(image: bytes, page: int) -> list[Row]:
    """Words recognised by tesseract (TSV output), grouped into lines and cells."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(image)) as im:
            width, height = im.size
            if width * height > 60_000_000:
                raise DocumentRefused("The image is too large to read (over 60 megapixels).")
            with tempfile.TemporaryDirectory(prefix="tamga-ocr-") as tmp:
                path = Path(tmp) / "page.png"
                im.convert("L").save(path)
                result = subprocess.run(
                    ["tesseract", str(path), "stdout", "--psm", "6", "tsv"],
                    capture_output=True, timeout=OCR_TIMEOUT_S, check=False)
    except DocumentRefused:
        raise
    except subprocess.TimeoutExpired as exc:
        raise DocumentRefused(f"OCR took longer than {OCR_TIMEOUT_S} s; refused.") from exc
    except Exception as exc:
        raise DocumentRefused(f"The image cannot be read ({exc}).") from exc
    if result.returncode != 0:
        raise DocumentRefused("The OCR engine failed on this image: "
                              + result.stderr.decode("utf-8", "replace")[:200])
    pieces: list[_Piece] = []
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    for line in lines[1:]:
        parts = line.split("\t")
        if len(parts) < 12 or not parts[11].strip():
            continue
        try:
            left, top, h = float(parts[6]), float(parts[7]), float(parts[9])
        except ValueError:
            continue
        # pixels to points at an assumed 300 dpi; y grows upwards like a PDF page
        scale = 72.0 / 300.0
        pieces.append(_Piece(left * scale, (height - top - h) * scale, max(h * scale, 4.0),
                             parts[11] + " "))
    rows = _page_rows(pieces, page)
    return [Row([Cell(c.text, c.col, c.where.replace(", line ", " (OCR), line "))
                 for c in r.cells], r.where.replace(", line ", " (OCR), line "), r.y, r.page)
            for r in rows]


# --------------------------------------------------------------------------- values


def parse_number(text: str, decimal: str | None = None) -> float | None:
    """A number as invoices write it: '1,234.56', '1.234,56', '12 500', 'USD 3,100.00'.

    `decimal` is the document's decimal mark when known ('.' or ','); otherwise it is guessed
    from the number itself ('1,234' reads 1234, '0,5' reads 0.5)."""
    if text is None:
        return None
    s = str(text).strip()
    m = re.search(r"[-+]?\(?\d[\d\s.,'\u00a0\u202f]*", s)
    if not m:
        return None
    raw = m.group(0)
    negative = raw.startswith("-") or raw.startswith("(")
    raw = re.sub(r"[^\d.,]", "", raw).rstrip(".,")
    if not raw:
        return None
    if decimal in (".", ","):
        other = "," if decimal == "." else "."
        raw = raw.replace(other, "").replace(decimal, ".")
        if raw.count(".") > 1:
            return None
    elif "," in raw and "." in raw:
        if raw.rfind(",") > raw.rfind("."):
            raw = raw.replace(".", "").replace(",", ".")
        else:
            raw = raw.replace(",", "")
    elif "," in raw:
        head, _, tail = raw.rpartition(",")
        raw = raw.replace(",", "") if len(tail) == 3 and raw.count(",") >= 1 and head else \
            raw.replace(",", ".")
        if raw.count(".") > 1:
            return None
    elif raw.count(".") > 1:
        raw = raw.replace(".", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    return -value if negative else value


_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def parse_date(text: str) -> date | None:
    """A date as documents write it: 2025-03-14, 14/03/2025, 14.03.2025, 14 Mar 2025..."""
    s = str(text or "").strip()
    m = re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", s)
    try:
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        m = re.search(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b", s)
        if m:
            day, month = int(m.group(1)), int(m.group(2))
            if month > 12 >= day:  # 03/14/2025, US order
                day, month = month, day
            return date(int(m.group(3)), month, day)
        m = re.search(r"\b(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?,?\s+(\d{4})\b", s)
        if m and m.group(2).lower() in _MONTHS:
            return date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
        m = re.search(r"\b([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2}),?\s+(\d{4})\b", s)
        if m and m.group(1).lower() in _MONTHS:
            return date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2)))
    except ValueError:
        return None
    return None


INCOTERMS = ("EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP",
             "DAT", "DDU", "DAF", "DES", "DEQ", "C&F", "CNF")


def parse_incoterm(text: str) -> str | None:
    """The Incoterm in a text ('FOB Shanghai (Incoterms 2020)' -> 'FOB')."""
    m = re.search(r"\b(" + "|".join(re.escape(t) for t in INCOTERMS) + r")\b", str(text).upper())
    if not m:
        return None
    return {"C&F": "CFR", "CNF": "CFR"}.get(m.group(1), m.group(1))


_CURRENCY_SIGNS = {"€": "EUR", "£": "GBP", "US$": "USD", "₩": "KRW"}


def _currency_codes() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_3 for c in pycountry.currencies)


_CODES: frozenset[str] | None = None


def parse_currency(text: str) -> str | None:
    """An ISO 4217 currency code in a text ('USD', 'Currency: EUR', '€')."""
    global _CODES
    if _CODES is None:
        _CODES = _currency_codes()
    for token in re.findall(r"\b[A-Z]{3}\b", str(text).upper()):
        if token in _CODES:
            return token
    for sign, code in _CURRENCY_SIGNS.items():
        if sign in str(text):
            return code
    return None


_COUNTRY_ALIASES = {
    "vietnam": "VN", "south korea": "KR", "korea": "KR", "republic of korea": "KR",
    "taiwan": "TW", "usa": "US", "united states of america": "US", "u.s.a.": "US", "uk": "GB",
    "united kingdom": "GB", "great britain": "GB", "england": "GB", "russia": "RU",
    "turkey": "TR", "türkiye": "TR", "turkiye": "TR", "iran": "IR", "holland": "NL",
    "the netherlands": "NL", "czech republic": "CZ", "hong kong": "HK", "macau": "MO",
    "laos": "LA", "bolivia": "BO", "venezuela": "VE", "tanzania": "TZ", "syria": "SY",
    "moldova": "MD", "ivory coast": "CI", "prc": "CN", "people's republic of china": "CN",
}


def parse_country(text: str) -> str | None:
    """An ISO 3166-1 alpha-2 code for a country name or code ('Viet Nam', 'CN', 'CHN')."""
    import pycountry

    s = _clean(text)
    if not s:
        return None
    m = re.search(r"\(([A-Z]{2})\)", s)
    if m and pycountry.countries.get(alpha_2=m.group(1)):
        return m.group(1)
    s = re.sub(r"^(made in|origin:?|country of origin:?)\s+", "", s, flags=re.I).strip(" .")
    alias = _COUNTRY_ALIASES.get(s.lower())
    if alias:
        return alias
    if len(s) in (2, 3) and s.isalpha():
        found = pycountry.countries.get(alpha_2=s.upper()) if len(s) == 2 else \
            pycountry.countries.get(alpha_3=s.upper())
        return found.alpha_2 if found else None
    try:
        return str(pycountry.countries.lookup(s).alpha_2)
    except LookupError:
        return None


def parse_hs(text: str) -> str | None:
    """An HS code's digits ('8528.72.00' -> '85287200'); None unless 6 to 10 digits."""
    digits = re.sub(r"[\s.\-]", "", str(text or ""))
    return digits if re.fullmatch(r"\d{6,10}", digits) else None


_UNITS = {"u": "u", "pcs": "u", "pc": "u", "pce": "u", "piece": "u", "pieces": "u",
          "unit": "u", "units": "u", "ea": "u", "each": "u", "nos": "u", "no": "u", "nmb": "u",
          "pr": "pr", "pair": "pr", "pairs": "pr", "prs": "pr", "kg": "kg", "kgs": "kg",
          "kilogram": "kg", "kilograms": "kg", "l": "l", "lt": "l", "ltr": "l", "litre": "l",
          "litres": "l", "liter": "l", "liters": "l"}


def parse_unit(text: str) -> str | None:
    """A quantity unit in Tamga's codes: u (pieces), pr (pairs), kg, l; else as written."""
    s = _clean(text).lower().strip(".")
    if not s:
        return None
    return _UNITS.get(s, s[:12])


def parse_relationship(text: str) -> bool | None:
    """Whether a document says seller and buyer are related (None when it does not say)."""
    s = _clean(text).lower()
    if not s:
        return None
    if re.search(r"\b(none|no|not related|unrelated|independent|arm'?s[- ]length|n/a)\b", s):
        return False
    if re.search(r"\b(related|yes|affiliated?|parent|subsidiary|same group|group company|"
                 r"shareholder|controls?)\b", s):
        return True
    return None


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class Field:
    """One extracted field: its name, its value (typed), the text and where it was read."""

    name: str
    value: Any
    where: str
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        """`{"name", "value", "where"}` as the `tamga verify --json` contract has it."""
        value = self.value.isoformat() if isinstance(self.value, date) else self.value
        return {"name": self.name, "value": value, "where": self.where}


LINE_FIELDS = ("description", "hs_code", "quantity", "unit", "net_mass_kg", "unit_price",
               "value", "origin")


@dataclass
class LineItem:
    """One line of goods on the document."""

    no: int
    values: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """The value of a line field, None when the document does not give it."""
        return self.values.get(name)


@dataclass
class ExtractedDocument:
    """What was read from a document: its type, header fields and lines of goods."""

    name: str
    kind: str
    doc_type: str | None
    header: dict[str, Field]
    lines: list[LineItem]
    pages: int = 1
    ocr: bool = False
    type_where: str = ""

    def value(self, name: str) -> Any:
        """A header field's value, None when absent."""
        found = self.header.get(name)
        return None if found is None else found.value

    def fields(self) -> list[Field]:
        """Every field, header first, then line by line (`line[2].quantity`)."""
        out = []
        if self.doc_type:
            out.append(Field("document_type", self.doc_type, self.type_where))
        out += list(self.header.values())
        for line in self.lines:
            for name in LINE_FIELDS:
                if name in line.values:
                    out.append(Field(f"line[{line.no}].{name}", line.values[name],
                                     line.where.get(name, "")))
        return out

    @property
    def total_value(self) -> float | None:
        """The sum of the line values, or the document's stated total when lines lack them."""
        values = [ln.get("value") for ln in self.lines]
        if values and all(v is not None for v in values):
            return round(sum(values), 2)
        return self.value("total_value")


# Header labels (normalised: lower case, no punctuation) -> field.
_HEADER_LABELS: dict[str, tuple[str, ...]] = {
    "document_number": ("invoice no", "invoice number", "invoice nr", "invoice", "inv no",
                        "certificate no", "certificate number", "packing list no",
                        "packing list number", "document no", "document number", "reference no",
                        "ref no", "number", "no"),
    "document_date": ("invoice date", "date of invoice", "date", "issue date", "date of issue",
                      "issued on", "dated"),
    "seller": ("seller", "exporter", "shipper", "vendor", "supplier", "consignor", "sold by",
               "exporter name"),
    "seller_address": ("seller address", "exporter address", "shipper address"),
    "buyer": ("buyer", "consignee", "importer", "sold to", "bill to", "customer", "buyer name"),
    "buyer_tin": ("buyer tin", "tin", "tax id", "buyer tax id", "ruc", "consignee tin",
                  "importer tin", "vat no", "tax number", "nit"),
    "buyer_address": ("buyer address", "consignee address", "importer address"),
    "currency": ("currency", "invoice currency", "currency of invoice"),
    "incoterm": ("incoterms", "incoterm", "incoterms 2020", "terms of delivery",
                 "delivery terms", "trade terms", "terms of sale"),
    "relationship": ("relationship", "relationship between seller and buyer",
                     "relationship of seller and buyer", "seller buyer relationship",
                     "related party", "related parties", "relation to buyer"),
    "origin": ("country of origin", "origin", "origin of goods", "country of origin of goods"),
    "total_value": ("total", "total amount", "invoice total", "total value", "grand total",
                    "total invoice value", "amount due"),
    "total_net_mass": ("total net mass", "total net weight", "total net mass kg",
                       "total net weight kg", "net weight total"),
    "declaration_ref": ("customs declaration", "declaration no", "declaration number",
                        "declaration id", "customs entry no"),
}
_LABEL_TO_FIELD = {label: name for name, labels in _HEADER_LABELS.items() for label in labels}

# Column headers (normalised) -> line field.
_COLUMN_LABELS: dict[str, tuple[str, ...]] = {
    "no": ("#", "no", "item", "line", "pos", "item no", "line no", "nr"),
    "description": ("description", "description of goods", "goods description", "goods",
                    "product", "article", "commodity", "item description",
                    "marks numbers and description of goods"),
    "hs_code": ("hs code", "hs", "hs no", "tariff code", "commodity code", "hts", "hts code",
                "customs tariff", "tariff no", "hs heading", "hs subheading"),
    "quantity": ("quantity", "qty", "quantity units", "number of units", "qty units"),
    "unit": ("unit", "uom", "unit of measure", "units"),
    "net_mass_kg": ("net mass kg", "net mass", "net weight", "net weight kg", "net wt",
                    "net wt kg", "nw kg", "nw", "net kg"),
    "gross_mass_kg": ("gross mass kg", "gross mass", "gross weight", "gross weight kg",
                      "gross wt", "gw kg", "gw"),
    "unit_price": ("unit price", "price", "price per unit", "unit value", "rate"),
    "value": ("amount", "value", "total", "line total", "total value", "total price",
              "extended value", "line value", "amount usd"),
    "origin": ("origin", "country of origin", "coo", "made in", "origin country"),
}
_COLUMN_TO_FIELD = {label: name for name, labels in _COLUMN_LABELS.items() for label in labels}
_NUMERIC_COLUMNS = ("quantity", "net_mass_kg", "gross_mass_kg", "unit_price", "value")

_TITLES = (
    ("certificate_of_origin", re.compile(r"certificate\s+of\s+origin", re.I)),
    ("packing_list", re.compile(r"packing\s+list", re.I)),
    ("invoice", re.compile(r"\b(commercial\s+invoice|invoice)\b", re.I)),
)


def _norm(label: str) -> str:
    s = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    s = s.replace("(", " ").replace(")", " ")
    s = re.sub(r"[^a-z0-9#/ ]+", " ", s).replace("/", " ")
    return re.sub(r"\s+", " ", s).strip()


def _column_field(label: str) -> str | None:
    n = _norm(label)
    if n in _COLUMN_TO_FIELD:
        return _COLUMN_TO_FIELD[n]
    n2 = re.sub(r"\b(in |per )?kgs?\b", "", n).strip()
    m = re.fullmatch(r"(.*?)\s*(?:in |per )?([a-z]{3})", n2)
    if m and m.group(1) and parse_currency(m.group(2).upper()):  # 'amount mxn'
        n2 = m.group(1).strip()
    return _COLUMN_TO_FIELD.get(n2) or _COLUMN_TO_FIELD.get(n2.rstrip("s"))


def _mass_factor(label: str) -> float:
    n = _norm(label)
    if re.search(r"\b(lb|lbs|pounds?)\b", n):
        return 0.45359237
    if re.search(r"\b(t|tonnes?|tons?|mt)\b", n):
        return 1000.0
    return 1.0


def _label_value(text: str) -> tuple[str, str] | None:
    """('invoice no', 'INV-1') for 'Invoice No.: INV-1'; ('seller', '') for 'Seller:'."""
    m = re.match(r"^\s*([A-Za-z][A-Za-z0-9 ./#&()'-]{0,60}?)\s*[:#]\s*(.*)$", text)
    if m:
        return _norm(m.group(1)), m.group(2).strip()
    return None


def decimal_mark(doc: DocumentText) -> str | None:
    """The document's decimal mark, from its numbers: ',' when numbers like '240,5' or
    '1.234,56' outnumber those like '240.5' or '1,234.56'; None when nothing tells."""
    comma = dot = 0
    for row in doc.rows:
        for cell in row.cells:
            for m in re.finditer(r"\d([.,])\d+(?:([.,])\d+)*", cell.text):
                text = m.group(0)
                last = max(text.rfind(","), text.rfind("."))
                mark, tail = text[last], len(text) - last - 1
                if ("," in text and "." in text) or tail != 3:
                    if mark == ",":
                        comma += 1
                    else:
                        dot += 1
    if comma == dot:
        return None
    return "," if comma > dot else "."


def extract(doc: DocumentText) -> ExtractedDocument:
    """The fields of a trade document, each with where it was read (rule-based)."""
    decimal = decimal_mark(doc)
    doc_type, type_where = _document_type(doc)
    table = _find_table(doc, decimal)
    header_rows = doc.rows if table is None else [
        r for i, r in enumerate(doc.rows) if i not in table.used]
    header = _header_fields(header_rows, decimal)
    lines = [] if table is None else table.lines
    if doc_type is None and lines:
        has_value = any("value" in ln.values for ln in lines)
        doc_type = "invoice" if has_value else "packing_list"
    if doc_type is None and not header:
        raise DocumentRefused(
            f"{doc.name} does not look like a commercial invoice, packing list or certificate "
            "of origin: no title, labelled fields or table of goods were found.")
    if not lines:
        raise DocumentRefused(
            f"{doc.name}: no table of goods was found (a header row naming at least the "
            "description and quantity, mass or value columns). Tamga cannot compare it.")
    # A header origin (certificates) applies to lines that do not give their own.
    origin = header.get("origin")
    if origin is not None:
        for ln in lines:
            if "origin" not in ln.values:
                ln.values["origin"] = origin.value
                ln.where["origin"] = origin.where
    return ExtractedDocument(doc.name, doc.kind, doc_type, header, lines, doc.pages, doc.ocr,
                             type_where)


def _document_type(doc: DocumentText) -> tuple[str | None, str]:
    for row in doc.rows[:15]:
        for cell in row.cells:
            if len(cell.text) > 60:
                continue
            for kind, pattern in _TITLES:
                if pattern.search(cell.text) and not _label_value(cell.text):
                    return kind, cell.where
    return None, ""


def _typed(name: str, text: str, decimal: str | None = None) -> Any:
    text = text[:MAX_VALUE_CHARS]
    if name == "document_date":
        return parse_date(text)
    if name == "currency":
        return parse_currency(text)
    if name == "incoterm":
        return parse_incoterm(text)
    if name == "relationship":
        return parse_relationship(text)
    if name == "origin":
        return parse_country(text)
    if name in ("total_value", "total_net_mass"):
        return parse_number(text, decimal)
    return text or None


def _label_field(label: str) -> str | None:
    """The header field a normalised label names ('total usd' -> total_value)."""
    if label in _LABEL_TO_FIELD:
        return _LABEL_TO_FIELD[label]
    m = re.fullmatch(r"(.*?)\s*(?:in )?([a-z]{3})", label)
    if m and parse_currency(m.group(2).upper()):
        return _LABEL_TO_FIELD.get(m.group(1).strip())
    return None


def _names_field(text: str) -> bool:
    """True when a cell reads 'Known label: ...' (it is a field of its own, not a value)."""
    pair = _label_value(text)
    return pair is not None and _label_field(pair[0]) is not None


def _header_fields(rows: Iterable[Row], decimal: str | None = None) -> dict[str, Field]:
    found: dict[str, Field] = {}
    for row in rows:
        cells = row.cells
        for i, cell in enumerate(cells):
            pair = _label_value(cell.text)
            if pair is None:
                # a label cell without a colon, followed by its value cell (sheets, tables)
                label = _norm(cell.text)
                if _label_field(label) and i + 1 < len(cells) and not _names_field(
                        cells[i + 1].text):
                    pair = (label, "")
                else:
                    continue
            label, value = pair
            name = _label_field(label)
            if name is None:
                continue
            where = cell.where
            if not value and i + 1 < len(cells) and not _names_field(cells[i + 1].text):
                value, where = cells[i + 1].text, cells[i + 1].where
            if not value or name in found:
                continue
            if name == "total_value" and "currency" not in found:
                code = parse_currency(value)
                if code:
                    found["currency"] = Field("currency", code, where, value)
            typed = _typed(name, value, decimal)
            if typed is None:
                continue
            found[name] = Field(name, typed, where, value[:MAX_VALUE_CHARS])
    return found


@dataclass
class _Table:
    lines: list[LineItem]
    used: set[int]


def _header_band(doc: DocumentText, i: int) -> tuple[list[Cell], list[int]]:
    """The header cells at row i, joined with wrapped header words just above or below it."""
    row = doc.rows[i]
    if not doc.positional:
        return row.cells, [i]
    band = [i]
    for j in (i - 1, i + 1):
        if 0 <= j < len(doc.rows):
            other = doc.rows[j]
            if other.page == row.page and abs(other.y - row.y) <= 14 and all(
                    parse_number(c.text) is None and len(c.text) <= 24 for c in other.cells):
                band.append(j)
    band.sort()
    columns: list[list[Cell]] = []
    for j in band:
        for cell in doc.rows[j].cells:
            for col in columns:
                if abs(col[0].col - cell.col) <= 3:
                    col.append(cell)
                    break
            else:
                columns.append([cell])
    cells = []
    for col in sorted(columns, key=lambda c: c[0].col):
        joined = " ".join(c.text for c in col)
        glued = "".join(c.text for c in col)
        text = joined if _column_field(joined) or not _column_field(glued) else glued
        cells.append(Cell(text, min(c.col for c in col), col[0].where))
    return cells, band


def _find_table(doc: DocumentText, decimal: str | None = None) -> _Table | None:
    best: tuple[int, int, list[tuple[str, Cell]], list[int]] | None = None
    for i, row in enumerate(doc.rows):
        if len(row.cells) < 2:
            continue
        cells, band = _header_band(doc, i)
        mapped = [(f, c) for c in cells if (f := _column_field(c.text))]
        names = {f for f, _ in mapped}
        if len(names) < 3 or not names & {"description", "hs_code"} or not names & {
                "quantity", "net_mass_kg", "value", "origin"}:
            continue
        if best is None or len(names) > best[0]:
            best = (len(names), i, mapped, band)
    if best is None:
        return None
    _, _, mapped, band = best
    columns: list[tuple[str, Cell]] = []
    seen: set[str] = set()
    for name, cell in sorted(mapped, key=lambda m: m[1].col):
        if name not in seen:
            seen.add(name)
            columns.append((name, cell))
    start = max(band) + 1
    if doc.positional:
        lines, used = _positional_lines(doc, start, columns, decimal)
    else:
        lines, used = _grid_lines(doc, start, columns, doc.rows[band[0]].table, decimal)
    return _Table(lines, used | set(band))


def _is_total(row: Row) -> bool:
    first = row.cells[0].text.strip().lower() if row.cells else ""
    return bool(re.match(r"^(sub-?total|total|grand total|totals)\b", first))


def _assign(columns: list[tuple[str, Cell]], cell: Cell, positional: bool) -> str | None:
    if not positional:
        for name, head in columns:
            if head.col == cell.col:
                return name
        return None
    chosen = None
    for name, head in columns:
        if head.col <= cell.col + 4:
            chosen = name
    return chosen


def _line_from(cells: list[tuple[str, Cell]], columns: list[tuple[str, Cell]], no: int,
               decimal: str | None = None) -> LineItem:
    heads = dict(columns)
    line = LineItem(no)
    for name, cell in cells:
        text = cell.text[:MAX_VALUE_CHARS]
        where = cell.where if ("cell" in cell.where or "column" in cell.where) else \
            f"{cell.where}, column '{heads[name].text}'"
        value: Any
        if name == "description":
            prior = line.values.get("description")
            line.values["description"] = f"{prior} {text}".strip() if prior else text
            line.where.setdefault("description", where)
            continue
        if name == "hs_code":
            value = parse_hs(text)
        elif name == "unit":
            value = parse_unit(text)
        elif name == "origin":
            value = parse_country(text)
        elif name in _NUMERIC_COLUMNS:
            value = parse_number(text, decimal)
            if value is not None and name in ("net_mass_kg", "gross_mass_kg"):
                value = round(value * _mass_factor(heads[name].text), 3)
            if name == "quantity" and value is not None and "unit" not in line.values:
                unit = re.sub(r"[\d\s.,'-]+", " ", text).strip()
                if unit:
                    line.values["unit"] = parse_unit(unit)
                    line.where["unit"] = where
        elif name == "no":
            continue
        else:
            value = text
        if value is None:
            continue
        if name == "gross_mass_kg":
            continue
        line.values[name] = value
        line.where[name] = where
    return line


def _has_amount(cells: list[tuple[str, Cell]]) -> bool:
    return any(name in ("quantity", "net_mass_kg", "value") and parse_number(c.text) is not None
               for name, c in cells)


def _attach_wrapped(anchors: list[tuple[int, list[tuple[str, Cell]]]],
                    loose: list[tuple[int, list[tuple[str, Cell]]]]
                    ) -> dict[int, list[tuple[int, list[tuple[str, Cell]]]]]:
    """Which anchor row each wrapped description line belongs to.

    Cells aligned to the top leave no text above the first anchor: every wrapped line then
    belongs to the anchor above it. Vertically centred cells put as many lines above their
    anchor as below it: the lines before the first anchor are its upper half, the same number
    after it its lower half, the rest of that gap the next anchor's upper half, and so on."""
    order = [i for i, _ in anchors]
    gaps: list[list[tuple[int, list[tuple[str, Cell]]]]] = [[] for _ in range(len(order) + 1)]
    for i, cells in loose:
        k = sum(1 for a in order if a < i)  # gap 0 is above the first anchor
        gaps[k].append((i, cells))
    extra: dict[int, list[tuple[int, list[tuple[str, Cell]]]]] = {}
    if not gaps[0]:  # top-aligned
        for k, a in enumerate(order):
            extra[a] = gaps[k + 1]
        return extra
    above = gaps[0]
    for k, a in enumerate(order):
        gap = gaps[k + 1]
        below = gap[:len(above)]
        extra[a] = above + below
        above = gap[len(above):]
    return extra


def _grid_lines(doc: DocumentText, start: int, columns: list[tuple[str, Cell]], table: int,
                decimal: str | None = None) -> tuple[list[LineItem], set[int]]:
    lines: list[LineItem] = []
    used: set[int] = set()
    pending: list[tuple[str, Cell]] = []
    for i in range(start, len(doc.rows)):
        row = doc.rows[i]
        if table and row.table != table:
            break
        if _is_total(row):
            break
        cells = [(name, c) for c in row.cells if (name := _assign(columns, c, False))]
        if not cells:
            if lines:
                break
            continue
        if _has_amount(cells):
            lines.append(_line_from(pending + cells, columns, len(lines) + 1, decimal))
            pending = []
            used.add(i)
        elif all(name == "description" for name, _ in cells):
            if lines:
                extra = _line_from(cells, columns, 0).values.get("description", "")
                lines[-1].values["description"] += " " + extra
            else:
                pending += cells
            used.add(i)
        elif lines:
            break
    return lines, used


def _positional_lines(doc: DocumentText, start: int, columns: list[tuple[str, Cell]],
                      decimal: str | None = None) -> tuple[list[LineItem], set[int]]:
    """Rows of a page table: rows with an amount anchor a line; rows holding only description
    text (wrapped descriptions, above or below the anchor) join the nearest anchor row."""
    first_page = doc.rows[start - 1].page if start else 1
    anchors: list[tuple[int, list[tuple[str, Cell]]]] = []
    loose: list[tuple[int, list[tuple[str, Cell]]]] = []
    left = columns[0][1].col - 6
    for i in range(start, len(doc.rows)):
        row = doc.rows[i]
        if row.page != first_page and not anchors:
            break
        if _is_total(row):
            break
        if row.cells[0].col < left:
            if anchors:
                break
            continue
        cells = [(name, c) for c in row.cells if (name := _assign(columns, c, True))]
        if not cells:
            continue
        if _has_amount(cells):
            anchors.append((i, cells))
        elif all(name in ("description", "no") for name, _ in cells):
            loose.append((i, cells))
        elif anchors:
            break
    if not anchors:
        return [], set()
    extra = _attach_wrapped(anchors, loose)
    used = {i for i, _ in anchors} | {i for parts in extra.values() for i, _ in parts}
    lines = []
    for n, (i, cells) in enumerate(anchors, 1):
        parts = sorted([(i, cells), *extra.get(i, [])],
                       key=lambda p: (doc.rows[p[0]].page, -doc.rows[p[0]].y))
        ordered = [c for _, cs in parts for c in cs if c[0] == "description"]
        others = [c for c in cells if c[0] != "description"]
        line = _line_from(ordered + others, columns, n, decimal)
        if ordered:
            line.where["description"] = f"{ordered[0][1].where}, column 'description'"
        lines.append(line)
    return lines, used

