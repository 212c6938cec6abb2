"""Read a document file into a title and a flat list of blocks (headings, paragraphs, table rows).

Supported: Markdown (.md, .markdown), plain text (.txt), HTML (.html, .htm), PDF (.pdf) and
Word (.docx). Every loader returns the same `LoadedDocument`, so the chunker never needs to know
the file format. A file that cannot be read raises `IngestError` with a reason a person can act on.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tamga.errors import IngestError

FORMATS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}

BlockKind = Literal["heading", "text", "row"]


@dataclass
class Block:
    """One structural element: a heading (with level), a paragraph or a table row."""

    kind: BlockKind
    text: str
    level: int = 0
    page: int | None = None
    emphasis: bool = False  # heading written in italics, e.g. `### *Transparency*`


@dataclass
class LoadedDocument:
    """A document as text blocks in reading order, with its title and format."""

    path: Path
    format: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def word_count(self) -> int:
        """Number of words in all blocks."""
        return sum(len(b.text.split()) for b in self.blocks)


def is_supported(path: Path) -> bool:
    """True when the file extension is one Tamga can index."""
    return path.suffix.lower() in FORMATS


def load_document(path: Path, data: bytes | None = None) -> LoadedDocument:
    """Read `path` (or the bytes already read from it) into a `LoadedDocument`.

    Raises IngestError for unsupported, empty, binary or corrupt files.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(f"unsupported file type '{path.suffix or '(none)'}'")
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data.strip():
        raise IngestError("empty file")
    if fmt == "markdown":
        doc = _load_markdown(path, _decode_text(data))
    elif fmt == "text":
        doc = _load_text(path, _decode_text(data))
    elif fmt == "html":
        doc = _load_html(path, _decode_text(data))
    elif fmt == "pdf":
        doc = _load_pdf(path, data)
    else:
        doc = _load_docx(path, data)
    doc.blocks = [b for b in doc.blocks if b.text]
    if not any(b.kind != "heading" for b in doc.blocks):
        hint = " (a scanned PDF? run OCR on it first)" if fmt == "pdf" else ""
        raise IngestError(f"no text found{hint}")
    return doc


# ---------------------------------------------------------------- text helpers

_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_ZERO_WIDTH = re.compile(r"[\u200b-\u200d\ufeff\u00ad]")


def normalize_space(text: str) -> str:
    """Unicode spaces (no-break, narrow no-break...) to plain spaces, runs collapsed, trimmed."""
    text = _ZERO_WIDTH.sub("", _SPACES.sub(" ", text))
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def _decode_text(data: bytes) -> str:
    """Decode a text file, refusing binary data that merely has a text extension."""
    head = data[:65536]
    if b"\x00" in head:
        raise IngestError("looks like binary data, not text")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    if sample and controls / len(sample) > 0.01:
        raise IngestError("looks like binary data, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_DUTCH = frozenset({
    "de", "het", "een", "van", "en", "voor", "zijn", "wordt", "worden", "bij", "deze", "die",
    "dat", "op", "met", "niet", "aan", "als", "ook", "overeenkomst", "verdrag", "douane",
    "inzake", "betreffende", "internationale", "internationaal",
})
_ENGLISH = frozenset({
    "the", "of", "and", "to", "in", "for", "is", "be", "shall", "by", "or", "on", "with", "any",
    "this", "that", "as", "are", "which",
})


def looks_dutch(text: str) -> bool:
    """Rough language check: more Dutch than English function words (for the NL treaty files)."""
    words = re.findall(r"[a-zà-ÿ]+", text.lower())
    dutch = sum(w in _DUTCH for w in words)
    english = sum(w in _ENGLISH for w in words)
    return dutch >= 2 and dutch > english


# ---------------------------------------------------------------- Markdown

_MD_HEADING = re.compile(r"^(#{1,9})\s*(.*?)\s*#*\s*$")
_MD_SEPARATOR_CELL = re.compile(r"^:?-{2,}:?$")
_MD_LIST_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]|\(?[a-zA-Z0-9]{1,4}\)|\|)")
_SUP = re.compile(r"<sup>(.*?)</sup>", re.I | re.S)


def _clean_inline(text: str) -> str:
    """Markdown/HTML inline markup to plain text: links keep their words, emphasis goes."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]{1,200}>", "", text)
    text = html.unescape(text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)\s*\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<![\w_])_(?!\s)([^_\n]+?)_(?![\w_])", r"\1", text)
    text = text.replace("`", "")
    return normalize_space(text)


def _markdown_blocks(source: str) -> list[Block]:
    """Headings, paragraphs and table rows of a Markdown text, in order."""
    blocks: list[Block] = []
    para: list[str] = []
    in_fence = False

    def flush() -> None:
        if not para:
            return
        out = para[0]
        for line in para[1:]:
            out += ("\n" if _MD_LIST_START.match(line) else " ") + line
        text = "\n".join(_clean_inline(part) for part in out.split("\n"))
        if text.strip():
            blocks.append(Block("text", text.strip()))
        para.clear()

    for raw in source.split("\n"):
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
            flush()
            continue
        if in_fence:
            if stripped:
                blocks.append(Block("text", normalize_space(stripped)))
            continue
        if not stripped:
            flush()
            continue
        if stripped.lower().startswith("<meta") or stripped.startswith("<!--"):
            continue
        heading = _MD_HEADING.match(stripped)
        if heading and (heading.group(2) or "").strip():
            flush()
            body = heading.group(2)
            notes = [normalize_space(_clean_inline(n)) for n in _SUP.findall(body)]
            body = _SUP.sub("", body)
            emphasis = bool(re.fullmatch(r"[*_]+.*[*_]+", body.strip()))
            text = _clean_inline(body)
            if text:
                level = len(heading.group(1))
                blocks.append(Block("heading", text, level=level, emphasis=emphasis))
            for note in notes:
                if note:
                    blocks.append(Block("text", f"Note: {note}"))
            continue
        if stripped.startswith("|"):
            flush()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            cells = [c for c in cells if c and not _MD_SEPARATOR_CELL.match(c)]
            text = _clean_inline(" ".join(cells))
            if text:
                blocks.append(Block("row", text))
            continue
        if re.fullmatch(r"=+", stripped) and len(para) == 1:
            blocks.append(Block("heading", _clean_inline(para.pop()), level=1))
            continue
        if re.fullmatch(r"-{3,}|\*{3,}|_{3,}", stripped):
            if len(para) == 1 and stripped.startswith("-"):
                blocks.append(Block("heading", _clean_inline(para.pop()), level=2))
            else:
                flush()
            continue
        para.append(stripped)
    flush()
    return blocks


def _first_title(blocks: list[Block], fallback: str) -> str:
    """The first heading that is not a Dutch title line; else the first H1; else `fallback`."""
    for block in blocks[:6]:
        if block.kind == "heading" and not looks_dutch(block.text):
            return block.text
    return fallback


def _title_from_stem(path: Path) -> str:
    stem = re.sub(r"[_-]+", " ", path.stem).strip()
    return stem[:1].upper() + stem[1:] if stem else path.name


def _load_markdown(path: Path, text: str) -> LoadedDocument:
    blocks = _markdown_blocks(text)
    return LoadedDocument(path, "markdown", _first_title(blocks, _title_from_stem(path)), blocks)


# ---------------------------------------------------------------- plain text and PDF lines

_NUMBERED_HEADING = re.compile(
    r"^(?:(?:article|chapter|section|part|annex|schedule|appendix)\s+[\divxlc]+\b"
    r"|\d+(?:\.\d+)*\.?\s+[A-Z])",
    re.I,
)


def _looks_like_heading(line: str) -> bool:
    """Cheap heading test for plain text and PDF lines: short, no end punctuation, titled."""
    line = line.strip()
    if not line or len(line) > 90 or len(line.split()) > 12:
        return False
    if line[-1] in ".,;:" and not re.match(r"^(article|chapter|section)\s", line, re.I):
        return False
    if _NUMBERED_HEADING.match(line):
        return True
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)


def _text_blocks(text: str, page: int | None = None) -> list[Block]:
    """Paragraphs split on blank lines; single short titled lines become headings."""
    blocks: list[Block] = []
    for para in re.split(r"\n\s*\n", text):
        lines = [normalize_space(ln) for ln in para.split("\n")]
        lines = [ln for ln in lines if ln]
        if not lines:
            continue
        if len(lines) == 1 and _looks_like_heading(lines[0]):
            blocks.append(Block("heading", lines[0], level=2, page=page))
            continue
        if len(lines) > 1 and _looks_like_heading(lines[0]) and not lines[0].endswith("-"):
            blocks.append(Block("heading", lines[0], level=2, page=page))
            lines = lines[1:]
        joined = lines[0]
        for ln in lines[1:]:
            if joined.endswith("-") and not joined.endswith(" -"):
                joined = joined[:-1] + ln
            elif _MD_LIST_START.match(ln):
                joined += "\n" + ln
            else:
                joined += " " + ln
        blocks.append(Block("text", joined, page=page))
    return blocks


def _pdf_blocks(text: str, page: int) -> list[Block]:
    """Lines of one PDF page: titled short lines become headings, the rest paragraphs."""
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.extend(_text_blocks("\n".join(para), page=page))
            para.clear()

    for raw in text.split("\n"):
        line = normalize_space(raw)
        if not line:
            flush()
        elif _looks_like_heading(line) and not (para and para[-1].endswith("-")):
            flush()
            blocks.append(Block("heading", line, level=2, page=page))
        else:
            para.append(line)
    flush()
    return blocks


def _load_text(path: Path, text: str) -> LoadedDocument:
    blocks = _text_blocks(text)
    title = _title_from_stem(path)
    first = text.strip().split("\n", 1)[0].strip()
    if first and len(first) <= 120 and blocks:
        title = normalize_space(first)
        if blocks[0].text == title and len(blocks) > 1:  # a one-line note stays its own body
            blocks[0] = Block("heading", title, level=1)
    return LoadedDocument(path, "text", title, blocks)


def _load_pdf(path: Path, data: bytes) -> LoadedDocument:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("PDF is password-protected")
        pages = list(reader.pages)
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
        raise IngestError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    blocks: list[Block] = []
    for number, page in enumerate(pages, 1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # pypdf raises many types on damaged content streams
            raise IngestError(f"cannot extract text from PDF page {number} ({exc})") from exc
        blocks.extend(_pdf_blocks(text, page=number))
    title = ""
    try:
        metadata: Any = reader.metadata or {}
        meta_title = metadata.get("/Title")
        title = normalize_space(str(meta_title)) if meta_title else ""
    except Exception:
        title = ""
    if not title or title.lower() in {"untitled", "microsoft word"}:
        first_heading = next((b.text for b in blocks[:5] if b.kind == "heading"), "")
        title = first_heading or _title_from_stem(path)
    return LoadedDocument(path, "pdf", title, blocks)


# ---------------------------------------------------------------- HTML

_HTML_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_HTML_BLOCKS = {"p", "li", "pre", "blockquote", "dt", "dd", "caption", "figcaption", "address"}
_HTML_SKIP = {"script", "style", "noscript", "nav", "header", "footer", "aside", "form",
              "button", "svg", "template", "iframe", "head"}


def _load_html(path: Path, text: str) -> LoadedDocument:
    from bs4 import BeautifulSoup, NavigableString, Tag

    try:
        soup = BeautifulSoup(text, "lxml")
    except Exception as exc:
        raise IngestError(f"not readable HTML ({exc})") from exc
    blocks: list[Block] = []
    pending: list[str] = []

    def flush() -> None:
        joined = normalize_space(" ".join(pending))
        if joined:
            blocks.append(Block("text", joined))
        pending.clear()

    def walk(node: Any) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child).__name__ in {"Comment", "Doctype", "ProcessingInstruction", "CData"}:
                    continue
                pending.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name.lower()
            if name in _HTML_SKIP:
                continue
            if name in _HTML_HEADINGS:
                flush()
                heading = normalize_space(child.get_text(" "))
                if heading:
                    blocks.append(Block("heading", heading, level=_HTML_HEADINGS[name]))
            elif name in _HTML_BLOCKS:
                flush()
                para = normalize_space(child.get_text(" "))
                if para:
                    blocks.append(Block("text", para))
            elif name == "tr":
                flush()
                cells = [normalize_space(c.get_text(" ")) for c in child.find_all(["td", "th"])]
                row = " | ".join(c for c in cells if c)
                if row:
                    blocks.append(Block("row", row))
            elif name == "br":
                pending.append(" ")
            elif name in {"div", "section", "article", "main", "body", "ul", "ol", "dl",
                          "table", "thead", "tbody", "tfoot", "html", "center", "details",
                          "summary", "fieldset", "figure", "hr"}:
                flush()
                walk(child)
                flush()
            else:
                walk(child)

    root = soup.find("main") or soup.find("article") or soup.body or soup
    walk(root)
    flush()
    title = ""
    if soup.title and soup.title.string:
        title = normalize_space(soup.title.string)
    if not title:
        title = next((b.text for b in blocks if b.kind == "heading"), "") or _title_from_stem(path)
    return LoadedDocument(path, "html", title, blocks)


# ---------------------------------------------------------------- DOCX


def _load_docx(path: Path, data: bytes) -> LoadedDocument:
    import zipfile

    try:
        import docx
        from docx.document import Document as DocxDocument
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document: DocxDocument = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise IngestError(f"not a readable DOCX file ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # python-docx raises its own PackageNotFoundError and lxml errors
        raise IngestError(f"not a readable DOCX file ({type(exc).__name__}: {exc})") from exc

    blocks: list[Block] = []
    title = normalize_space(document.core_properties.title or "")
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            text = normalize_space(para.text)
            if not text:
                continue
            style = (para.style.name if para.style is not None else "") or ""
            match = re.match(r"heading\s*(\d)", style, re.I)
            if style.lower() == "title":
                title = title or text
                blocks.append(Block("heading", text, level=1))
            elif match:
                blocks.append(Block("heading", text, level=int(match.group(1)) + 1))
            else:
                blocks.append(Block("text", text))
        elif tag == "tbl":
            table = Table(child, document)
            for row in table.rows:
                cells: list[str] = []
                for cell in row.cells:
                    cell_text = normalize_space(cell.text)
                    if cell_text and (not cells or cells[-1] != cell_text):
                        cells.append(cell_text)
                if cells:
                    blocks.append(Block("row", " | ".join(cells)))
    if not title:
        title = next((b.text for b in blocks if b.kind == "heading"), "") or _title_from_stem(path)
    return LoadedDocument(path, "docx", title, blocks)
