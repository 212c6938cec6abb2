"""Reading trade documents: every format, field extraction with places, and bad documents."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tamga.errors import DocumentRefused
from tools.documents import (
    extract,
    ocr_available,
    parse_country,
    parse_date,
    parse_number,
    read_document,
    read_path,
)


def _printed(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "fields.json").read_text(encoding="utf-8"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 0.0015
    return str(a) == str(b)


# --------------------------------------------------------------------------- values


def test_numbers_as_documents_write_them() -> None:
    assert parse_number("1,234.56") == 1234.56
    assert parse_number("1.234,56") == 1234.56
    assert parse_number("USD 3,100.00") == 3100.0
    assert parse_number("12 500") == 12500.0
    assert parse_number("0,5") == 0.5
    assert parse_number("1,234") == 1234.0
    assert parse_number("(250.00)") == -250.0
    assert parse_number("n/a") is None


def test_dates_and_countries() -> None:
    assert parse_date("2025-03-14") == date(2025, 3, 14)
    assert parse_date("14/03/2025") == date(2025, 3, 14)
    assert parse_date("14 Mar 2025") == date(2025, 3, 14)
    assert parse_date("March 14, 2025") == date(2025, 3, 14)
    assert parse_date("someday") is None
    assert parse_country("Viet Nam") == "VN"
    assert parse_country("China") == "CN"
    assert parse_country("Korea, Republic of") == "KR"
    assert parse_country("CHN") == "CN"
    assert parse_country("Atlantis") is None


# --------------------------------------------------------------------------- demo documents


def test_every_field_of_the_demo_documents_is_read_with_its_place(demo_documents: Path) -> None:
    """PDF and XLSX demo documents: each printed field comes back, and says where it was."""
    printed = _printed(demo_documents)
    wrong: list[str] = []
    checked = 0
    for name, want in printed.items():
        doc = extract(read_path(demo_documents / name))
        assert doc.doc_type == want["document_type"], name
        for key in ("document_number", "document_date", "seller", "buyer", "buyer_tin",
                    "currency", "incoterm", "relationship", "total_value"):
            if key in want:
                checked += 1
                got = doc.value(key)
                if key == "document_date":
                    got = got.isoformat() if got else None
                if not _same(got, want[key]):
                    wrong.append(f"{name} {key}: {got!r} != {want[key]!r}")
                elif not doc.header[key].where:
                    wrong.append(f"{name} {key}: no place")
        assert len(doc.lines) == len(want["lines"]), name
        for line, expected in zip(doc.lines, want["lines"], strict=True):
            for key in ("description", "quantity", "unit", "net_mass_kg", "value", "origin",
                        "hs_code"):
                if key == "value" and want["document_type"] != "invoice":
                    continue
                if key in ("hs_code", "origin") and want["document_type"] == "packing_list":
                    continue
                checked += 1
                if not _same(line.get(key), expected[key]):
                    wrong.append(f"{name} line {line.no} {key}: {line.get(key)!r} != "
                                 f"{expected[key]!r}")
                elif not line.where.get(key):
                    wrong.append(f"{name} line {line.no} {key}: no place")
    assert checked > 1000
    assert wrong == []


def test_places_name_the_page_line_and_column_or_the_cell(demo_documents: Path) -> None:
    pdf = next(p for p in sorted(demo_documents.glob("invoice-*.pdf")))
    doc = extract(read_path(pdf))
    assert doc.header["currency"].where.startswith("page 1, line ")
    assert "column 'Quantity'" in doc.lines[0].where["quantity"]
    xlsx = next(p for p in sorted(demo_documents.glob("invoice-*.xlsx")))
    doc = extract(read_path(xlsx))
    assert doc.header["currency"].where == "sheet 'Commercial Invoice', cell B11"
    assert doc.lines[0].where["quantity"].startswith("sheet 'Commercial Invoice', cell D")


# --------------------------------------------------------------------------- other formats


def _docx_invoice() -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("Commercial Invoice", 1)
    document.add_paragraph("Invoice No.: DX-2025-0007")
    document.add_paragraph("Date: 14 Mar 2025")
    document.add_paragraph("Seller: Harbor Trading Co., Ltd.")
    document.add_paragraph("Buyer: Example Imports S.A.")
    document.add_paragraph("Currency: EUR")
    document.add_paragraph("Terms of delivery: FOB Ningbo")
    table = document.add_table(rows=3, cols=6)
    header = ["Description", "HS code", "Qty", "Net weight (kg)", "Amount (MXN)", "Origin"]
    rows = [["Steel bolts, zinc plated", "7318.15", "2,000", "1,250.5", "4,100.00", "China"],
            ["Steel nuts", "7318.16", "1,500", "400", "1,050.50", "China"]]
    for r, values in enumerate([header, *rows]):
        for c, value in enumerate(values):
            table.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_invoice() -> None:
    doc = extract(read_document(_docx_invoice(), "invoice.docx"))
    assert doc.kind == "docx" and doc.doc_type == "invoice"
    assert doc.value("document_number") == "DX-2025-0007"
    assert doc.value("document_date") == date(2025, 3, 14)
    assert doc.value("currency") == "EUR" and doc.value("incoterm") == "FOB"
    assert doc.header["currency"].where == "paragraph 6"
    assert [ln.get("net_mass_kg") for ln in doc.lines] == [1250.5, 400.0]
    assert [ln.get("hs_code") for ln in doc.lines] == ["731815", "731816"]
    assert doc.lines[1].where["value"] == "table 1, row 3, cell 5"
    assert doc.total_value == 5150.5


def test_csv_packing_list() -> None:
    text = ("Packing list No.;PL-77\nConsignee;Example Imports S.A.\n\n"
            "Description;Quantity;Unit;Net mass (kg);Country of origin\n"
            "Cotton T-shirts;1.200;pcs;240,5;Bangladesh\n"
            "Denim jeans;300;pcs;180;Viet Nam\n")
    doc = extract(read_document(text.encode("utf-8"), "packing.csv"))
    assert doc.kind == "csv" and doc.doc_type == "packing_list"
    assert doc.value("document_number") == "PL-77"
    assert [(ln.get("quantity"), ln.get("unit"), ln.get("net_mass_kg"), ln.get("origin"))
            for ln in doc.lines] == [(1200.0, "u", 240.5, "BD"), (300.0, "u", 180.0, "VN")]
    assert doc.lines[0].where["origin"] == "row 5, column 5"


def test_xlsx_formulas_are_never_evaluated(tmp_path: Path) -> None:
    """A formula cell gives only the value Excel saved with it (none here); its text is not
    read as a value and nothing is run."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Invoice"
    sheet.append(["COMMERCIAL INVOICE"])
    sheet.append(["Invoice No.", "=HYPERLINK(\"http://attacker.example/\", \"INV-1\")"])
    sheet.append(["Currency", "USD"])
    sheet.append(["Description", "Quantity", "Amount"])
    sheet.append(["Laptops", 10, "=cmd|' /C calc'!A0"])
    sheet.append(["Phones", "=2*1000", 500])
    path = tmp_path / "formulas.xlsx"
    book.save(path)
    doc = extract(read_path(path))
    assert doc.value("document_number") is None
    assert doc.lines[0].get("quantity") == 10 and doc.lines[0].get("value") is None
    assert doc.lines[1].get("quantity") is None and doc.lines[1].get("value") == 500
    text = json.dumps([f.to_json() for f in doc.fields()], default=str)
    assert "calc" not in text and "attacker" not in text


# --------------------------------------------------------------------------- bad documents


def test_empty_document_is_refused() -> None:
    with pytest.raises(DocumentRefused, match="empty"):
        read_document(b"", "nothing.pdf")


def test_too_large_document_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * 3_000_000)
    with pytest.raises(DocumentRefused, match="limit is 2 MB"):
        read_path(big, max_bytes=2_000_000)


def test_encrypted_pdf_is_refused(demo_documents: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(next(iter(sorted(demo_documents.glob("*.pdf"))))).pages:
        writer.add_page(page)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentRefused, match="encrypted PDF"):
        read_document(out.getvalue(), "locked.pdf")


def test_wrong_types_are_refused() -> None:
    with pytest.raises(DocumentRefused, match="not a document Tamga can read"):
        read_document(b"\x7fELF\x02\x01\x01" + bytes(200), "invoice.pdf")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DocumentRefused, match="not a DOCX or XLSX"):
        read_document(archive.getvalue(), "invoice.xlsx")
    with pytest.raises(DocumentRefused, match="encrypted Office file or an old"):
        read_document(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "invoice.xls")
    with pytest.raises(DocumentRefused, match=r"not a readable PDF|without pages"):
        read_document(b"%PDF-1.7\nthis is not really a pdf", "broken.pdf")


def test_zip_bomb_is_refused_without_unpacking() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * 200_000_000)
    assert len(archive.getvalue()) < 1_000_000
    with pytest.raises(DocumentRefused, match="ZIP bomb"):
        read_document(archive.getvalue(), "bomb.xlsx")


def test_a_document_without_goods_is_refused() -> None:
    with pytest.raises(DocumentRefused, match="does not look like"):
        extract(read_document(b"Dear customs officer,\nplease find attached.\n", "letter.txt"))
    text = b"COMMERCIAL INVOICE\nInvoice No.: 12\nCurrency: USD\n"
    with pytest.raises(DocumentRefused, match="no table of goods"):
        extract(read_document(text, "header-only.txt"))


def test_pdf_without_text_is_refused() -> None:
    from tamga.pdf import PdfDocument

    doc = PdfDocument()
    doc.pdf.add_page()
    doc.pdf.rect(20, 20, 50, 30, style="F")
    with pytest.raises(DocumentRefused, match="without text or images"):
        read_document(doc.output(), "blank.pdf")


def _png_invoice() -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1800, 700), "white")
    draw = ImageDraw.Draw(image)
    font: Any
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 34)
    except OSError:
        font = ImageFont.load_default()
    lines = ["COMMERCIAL INVOICE", "Invoice No.: SCAN-55", "Currency: USD"]
    for n, text in enumerate(lines):
        draw.text((60, 40 + n * 60), text, fill="black", font=font)
    for x, text in ((60, "Description"), (700, "Quantity"), (1100, "Amount")):
        draw.text((x, 300), text, fill="black", font=font)
    for x, text in ((60, "Steel bolts"), (700, "2000"), (1100, "4100.00")):
        draw.text((x, 370), text, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.skipif(ocr_available(), reason="tesseract is installed: images are read instead")
def test_image_without_ocr_engine_is_refused_clearly() -> None:
    with pytest.raises(DocumentRefused, match=r"an image \(PNG\).*OCR engine \(tesseract\)"):
        read_document(_png_invoice(), "scan.png")


def _scanned_pdf() -> bytes:
    from tamga.pdf import PdfDocument

    doc = PdfDocument(orientation="L")
    doc.pdf.add_page()
    doc.pdf.image(io.BytesIO(_png_invoice()), x=10, y=10, w=270)
    return doc.output()


@pytest.mark.skipif(ocr_available(), reason="tesseract is installed: scans are read instead")
def test_scanned_pdf_without_ocr_engine_is_refused_clearly() -> None:
    with pytest.raises(DocumentRefused, match=r"a scanned PDF \(no text layer\).*tesseract"):
        read_document(_scanned_pdf(), "scan.pdf")


@pytest.mark.skipif(not ocr_available(), reason="no OCR engine (tesseract) on this machine")
def test_image_and_scanned_pdf_are_read_with_ocr() -> None:
    for data, name in ((_png_invoice(), "scan.png"), (_scanned_pdf(), "scan.pdf")):
        doc = extract(read_document(data, name))
        assert doc.value("document_number") == "SCAN-55", name
        assert doc.lines[0].get("quantity") == 2000 and doc.lines[0].get("value") == 4100
        assert doc.lines[0].where["quantity"].startswith("page 1 (OCR), line "), name
