"""Structure-aware chunking: split a document on its own structure, then by size.

Three readers turn a `LoadedDocument` into *regions* (a run of text under one heading path):

- US Code sections (`# Title 19— ...` / `#### § 1592. ...` / `##### (c) ...`): locators such as
  `19 U.S.C. § 1592(c)(4)`;
- treaties (WTO agreements, the Revised Kyoto Convention, the HS Convention): articles, annexes,
  standards, interpretative notes, General Interpretative Rules, section and chapter notes, with
  locators such as `Agreement on Customs Valuation > Article 1 > 2(a)`;
- everything else (guidance notes, PDFs, DOCX, HTML): the heading path, plus `p. N` for PDFs.

A region is then cut at its numbered paragraphs (1., a), (i) ... or (1), (A), (i) in the US Code)
only when it is too long, small neighbours are merged back together up to a target size, and
anything still too long is cut into overlapping windows of sentences. Each chunk carries the
clean passage text (returned to people) and an index text with the title, locator and headings
prepended (what is embedded and keyword-indexed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from retrieval.loaders import Block, LoadedDocument, looks_dutch, normalize_space


@dataclass(frozen=True)
class ChunkingConfig:
    """Size limits, in words."""

    target_words: int = 150  # pieces are merged up to about this size
    max_words: int = 200  # hard cap: longer pieces are split (structure first, then size)
    min_words: int = 40  # a region below this may be merged with its small siblings
    overlap_words: int = 30  # overlap between size-based windows
    region_merge_words: int = 150  # merged small sibling regions stay below this


DEFAULT_CONFIG = ChunkingConfig()


@dataclass
class Chunk:
    """One passage to index: clean text, where it is in the document, and the text to index."""

    text: str
    locator: str
    title: str
    index_text: str
    ordinal: int = 0
    embed_text: str = ""  # text given to the embedding model when not index_text

    @property
    def words(self) -> int:
        """Number of words in the passage text."""
        return len(self.text.split())


# ---------------------------------------------------------------- regions and pieces


@dataclass
class Region:
    """Text under one heading path, before size handling."""

    cite: list[str]  # locator parts below the document name
    context: list[str]  # headings and captions that describe it (for the index text)
    lines: list[str] = field(default_factory=list)
    scheme: str = "none"  # enumeration scheme: "treaty", "usc", "usc-alpha", "hs-table", "none"
    label_prefix: str = ""  # prepended to first-level paragraph labels ("Rule ", "Note ")
    whole_label: str | None = None  # appended to the cite when the region stays in one chunk
    attach: bool = False  # labels are glued to the last cite part (US Code: § 1592(c)(4))
    merge_key: tuple[str, ...] | None = None  # small regions with equal keys may be merged
    range_ok: bool = True  # merged regions get a range locator ("6.1-6.5")
    label_whole: bool = False  # show paragraph numbers even when the region is one chunk
    heading: str = ""  # shown before the text when merged with neighbours
    page: int | None = None

    @property
    def words(self) -> int:
        return sum(len(line.split()) for line in self.lines)


@dataclass
class Piece:
    """A run of lines with its paragraph labels, e.g. ["2", "(a)"]; `intro` for a chapeau."""

    labels: list[str]
    lines: list[str]
    intro: bool = False

    @property
    def words(self) -> int:
        return sum(len(line.split()) for line in self.lines)


@dataclass
class Draft:
    """A chunk before its locator is formatted: the paths of its first and last parts."""

    region: Region
    start: list[str]  # label components of the first piece
    end: list[str]
    text: str
    whole: bool  # the whole region in one chunk
    cite_start: list[str] = field(default_factory=list)
    cite_end: list[str] = field(default_factory=list)
    pages: tuple[int, int] | None = None
    context: list[str] = field(default_factory=list)

    @property
    def words(self) -> int:
        return len(self.text.split())


# ---------------------------------------------------------------- public entry point


def chunk_document(
    doc: LoadedDocument, source: str = "", config: ChunkingConfig = DEFAULT_CONFIG
) -> list[Chunk]:
    """Cut a loaded document into chunks with locators (see the module docstring)."""
    treaty = False
    if doc.format == "markdown" and _is_us_code(doc.blocks):
        name, title, regions = _read_us_code(doc)
    elif doc.format in {"markdown", "text", "html", "docx"} and _is_treaty(doc.blocks):
        name, title, regions = _read_treaty(doc)
        treaty = True
    else:
        name, title, regions = _read_generic(doc)
    drafts: list[Draft] = []
    for region in regions:
        if region.words == 0:
            continue
        drafts.extend(_region_drafts(region, config))
    drafts = _absorb_fragments(_merge_small_regions(drafts, config), config)
    chunks: list[Chunk] = []
    for draft in drafts:
        locator = _format_locator(name, draft)
        text = draft.text.strip()
        if not text:
            continue
        header = [title] if title != name else [name]
        header.append(locator)
        header.extend(c for c in draft.context if c and c not in header)
        index_text = " | ".join(header) + "\n\n" + text
        # Treaty provisions are embedded without the header: the instrument's long title and
        # the annex/chapter captions are shared by hundreds of chunks, and for a one-sentence
        # Kyoto standard they outweigh the provision itself, so every standard looked alike
        # to the encoder. Keyword search still sees the header (index_text).
        embed_text = text if treaty else ""
        chunks.append(Chunk(text=text, locator=locator, title=title, index_text=index_text,
                            embed_text=embed_text))
    for n, chunk in enumerate(chunks):
        chunk.ordinal = n
    return chunks


# ---------------------------------------------------------------- sizing


def _split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?;:])\s+(?=[\"“(\[A-Z0-9§])", text)
    return [p for p in (s.strip() for s in parts) if p]


def size_windows(lines: Sequence[str], target: int, overlap: int) -> list[list[str]]:
    """Cut lines into windows of about `target` words, each starting with some overlap.

    Lines are cut at sentence ends (or, for a run-on sentence, every `target` words); the
    sentences of one line stay on one line in the window.
    """
    units: list[tuple[int, str]] = []
    for n, line in enumerate(lines):
        for sentence in _split_sentences(line) or [line]:
            words = sentence.split()
            while len(words) > target:
                units.append((n, " ".join(words[:target])))
                words = words[target - overlap :] if target > overlap else words[target:]
            if words:
                units.append((n, " ".join(words)))
    windows: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    count = 0
    for unit in units:
        size = len(unit[1].split())
        if current and count + size > target:
            windows.append(current)
            carry: list[tuple[int, str]] = []
            carried = 0
            for prev in reversed(current):
                if carried >= overlap:
                    break
                carry.insert(0, prev)
                carried += len(prev[1].split())
            if carried >= count:  # never repeat a whole window
                carry, carried = [], 0
            current, count = carry, carried
        current.append(unit)
        count += size
    if current:
        windows.append(current)
    rendered: list[list[str]] = []
    for window in windows:
        out: list[str] = []
        last_line = -1
        for line_no, text in window:
            if out and line_no == last_line:
                out[-1] += " " + text
            else:
                out.append(text)
            last_line = line_no
        rendered.append(out)
    return rendered


# ---------------------------------------------------------------- enumeration (numbered paragraphs)

_ROMAN = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii",
          "xiv", "xv", "xvi", "xvii", "xviii", "xix", "xx"]


def _next_alpha(prev: str) -> str:
    if prev and all(c == prev[0] for c in prev) and prev[0] in "zZ":
        return ("a" if prev[0] == "z" else "A") * (len(prev) + 1)
    if prev and all(c == prev[0] for c in prev):
        return chr(ord(prev[0]) + 1) * len(prev)
    return ""


def _sequence_ok(kind: str, prev: str | None, cur: str) -> bool:
    """Does marker `cur` follow `prev` in a numbering of this kind?"""
    if kind == "num":
        if prev is None:
            return True
        return 0 < int(cur) - int(prev) <= 3
    if kind in {"alpha", "ALPHA"}:
        first = "a" if kind == "alpha" else "A"
        if prev is None:
            return cur == first
        return cur == _next_alpha(prev)
    if kind in {"roman", "ROMAN"}:
        seq = _ROMAN if kind == "roman" else [r.upper() for r in _ROMAN]
        if prev is None:
            return cur == seq[0]
        return prev in seq and seq.index(prev) + 1 < len(seq) and seq[seq.index(prev) + 1] == cur
    return True  # "free": any label (e.g. Kyoto definition rows E1, E2...)


@dataclass(frozen=True)
class Level:
    """One level of paragraph numbering: patterns for its markers and how to label them."""

    kind: str
    patterns: tuple[re.Pattern[str], ...]
    fmt: Callable[[str], str]

    def match(self, line: str) -> str | None:
        for pattern in self.patterns:
            m = pattern.match(line)
            if m:
                return m.group(1)
        return None


def _paren(label: str) -> str:
    return f"({label})"


_TREATY_LEVELS = (
    Level("num", (re.compile(r"^(\d{1,3})\s?\.(?![\d.])\s*(?:-\s*)?"),), str),
    Level("alpha", (re.compile(r"^\(?([a-z]{1,2})\)\s*"), re.compile(r"^([a-z])\.\s+")), _paren),
    Level("roman", (re.compile(r"^\(?((?:x{0,2})(?:ix|iv|v?i{0,3}))\)\s*"),), _paren),
)
_KYOTO_DEFINITIONS = Level("free", (re.compile(r"^(E\d{1,3})\s?\./\s?F\d{1,3}\.\s*"),), str)
_USC_LEVELS = (
    Level("num", (re.compile(r"^\(\s*(\d{1,3})\s*\)"),), _paren),
    Level("ALPHA", (re.compile(r"^\(\s*([A-Z]{1,2})\s*\)"),), _paren),
    Level("roman", (re.compile(r"^\(\s*((?:x{0,2})(?:ix|iv|v?i{0,3}))\s*\)"),), _paren),
    Level("ROMAN", (re.compile(r"^\(\s*((?:X{0,2})(?:IX|IV|V?I{0,3}))\s*\)"),), _paren),
)
_USC_ALPHA = Level("alpha", (re.compile(r"^\(\s*([a-z]{1,2})\s*\)"),), _paren)


def _levels_for(region: Region) -> tuple[Level, ...]:
    if region.scheme == "treaty":
        if any(_KYOTO_DEFINITIONS.match(line) for line in region.lines[:12]):
            return (_KYOTO_DEFINITIONS,)
        return _TREATY_LEVELS
    if region.scheme == "usc":
        return _USC_LEVELS
    if region.scheme == "usc-alpha":
        return (_USC_ALPHA, *_USC_LEVELS)
    return ()


def _split_levels(
    lines: list[str],
    levels: Sequence[Level],
    labels: list[str],
    prefix: str,
    config: ChunkingConfig,
) -> list[Piece]:
    """Split lines at the first numbering level that has markers, recursing into long parts."""
    total = sum(len(line.split()) for line in lines)
    if total <= config.max_words:
        return [Piece(labels, lines)]
    for depth, level in enumerate(levels):
        starts: list[tuple[int, str]] = []
        prev: str | None = None
        for i, line in enumerate(lines):
            label = level.match(line)
            if label is None or not label:
                continue
            if _sequence_ok(level.kind, prev, label):
                starts.append((i, label))
                prev = label
        if not starts:
            continue
        pieces: list[Piece] = []
        if starts[0][0] > 0:
            intro = lines[: starts[0][0]]
            if sum(len(line.split()) for line in intro) > config.max_words:
                windows = size_windows(intro, config.target_words, config.overlap_words)
                pieces.extend(Piece(labels, w) for w in windows)
            else:
                pieces.append(Piece(labels, intro, intro=True))
        for n, (i, label) in enumerate(starts):
            stop = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
            shown = level.fmt(label)
            if not labels and prefix and level.kind in {"num", "free"}:
                shown = prefix + shown
            sub = _split_levels(
                lines[i:stop], levels[depth + 1 :], [*labels, shown], prefix, config
            )
            pieces.extend(sub)
        return pieces
    # no numbering left: windows of sentences with overlap
    return [
        Piece(labels, window)
        for window in size_windows(lines, config.target_words, config.overlap_words)
    ]


def _marker_range(
    lines: list[str], levels: Sequence[Level], prefix: str
) -> tuple[list[str], list[str]] | None:
    """Labels of the first and last top-level numbered paragraphs in `lines`, if any."""
    for level in levels:
        found: list[str] = []
        for line in lines:
            label = level.match(line)
            if label and _sequence_ok(level.kind, found[-1] if found else None, label):
                found.append(label)
        if found:
            shown = [level.fmt(f) for f in (found[0], found[-1])]
            if prefix and level.kind in {"num", "free"}:
                shown = [prefix + s for s in shown]
            return [shown[0]], [shown[1]]
    return None


def _label_range(first: list[str], last: list[str]) -> str:
    """'2(a)' .. '2(c)' -> '2(a)-(c)'; 'Rule 1' .. 'Rule 3' -> 'Rule 1-3'."""
    if first == last:
        return "".join(first)
    common = 0
    while common < min(len(first), len(last)) - 1 and first[common] == last[common]:
        common += 1
    a, b = "".join(first), "".join(last[common:])
    return f"{a}-{_strip_shared_words(a, b)}"


def _strip_shared_words(a: str, b: str) -> str:
    shared = os.path.commonprefix([a, b])  # noqa: RUF071 - character prefix wanted
    cut = shared.rfind(" ")
    if cut > 0 and not b[: cut + 1].strip().isdigit():
        return b[cut + 1 :]
    return b


def _region_drafts(region: Region, config: ChunkingConfig) -> list[Draft]:
    """The chunks of one region: whole if it fits, else pieces merged up to the target size."""
    lines = [line for line in region.lines if line.strip()]
    if region.scheme == "hs-table":
        pieces = _hs_table_pieces(lines, config)
    elif region.scheme == "none":
        pieces = []
        for line in lines:
            if len(line.split()) > config.max_words:
                windows = size_windows([line], config.target_words, config.overlap_words)
                pieces.extend(Piece([], w) for w in windows)
            else:
                pieces.append(Piece([], [line]))
    else:
        pieces = _split_levels(lines, _levels_for(region), [], region.label_prefix, config)
    total = sum(p.words for p in pieces)
    page_pair = (region.page, region.page) if region.page is not None else None
    if total <= config.max_words and len(pieces) >= 1 and region.scheme != "hs-table":
        whole_text = "\n".join(line for p in pieces for line in p.lines)
        marks = _marker_range(lines, _levels_for(region), region.label_prefix)
        if region.label_whole and marks:  # e.g. "Article 2 > 9-10" under an unnumbered topic
            return [Draft(region, marks[0], marks[1], whole_text, False, region.cite,
                          region.cite, page_pair, region.context)]
        return [Draft(region, [], [], whole_text, True, region.cite, region.cite, page_pair,
                      region.context)]
    groups: list[list[Piece]] = []
    current: list[Piece] = []
    count = 0
    for n, piece in enumerate(pieces):
        only_intro = all(p.intro for p in current)
        size = piece.words
        if piece.intro and n + 1 < len(pieces):
            size += pieces[n + 1].words  # a chapeau goes where its first item goes
        if current and not only_intro and count + size > config.target_words:
            groups.append(current)
            current, count = [], 0
        current.append(piece)
        count += piece.words
    if current:
        if (groups and count < config.min_words
                and sum(p.words for p in groups[-1]) + count <= config.max_words):
            groups[-1].extend(current)
        else:
            groups.append(current)
    drafts: list[Draft] = []
    for group in groups:
        labelled = [p for p in group if not p.intro] or group
        group_lines = [line for p in group for line in p.lines]
        whole = len(groups) == 1 and region.scheme != "hs-table"
        if sum(len(line.split()) for line in group_lines) > config.max_words:  # hard cap
            windows = size_windows(group_lines, config.target_words, config.overlap_words)
        else:
            windows = [group_lines]
        for window in windows:
            drafts.append(Draft(region, labelled[0].labels, labelled[-1].labels,
                                "\n".join(window), whole and len(windows) == 1,
                                region.cite, region.cite, page_pair, region.context))
    return drafts


def _merge_small_regions(drafts: list[Draft], config: ChunkingConfig) -> list[Draft]:
    """Merge runs of small whole-region chunks that share a parent (e.g. one-line standards)."""
    out: list[Draft] = []
    run: list[Draft] = []

    def close() -> None:
        if not run:
            return
        if len(run) == 1:
            out.append(run[0])
        else:
            first, last = run[0], run[-1]
            parts = []
            for d in run:
                head = d.region.heading
                parts.append(f"{head}\n{d.text}" if head else d.text)
            pages = None
            if first.pages and last.pages:
                pages = (first.pages[0], last.pages[1])
            merged_context = list(dict.fromkeys(c for d in run for c in d.context))
            out.append(Draft(first.region, [], [], "\n\n".join(parts), False,
                             first.cite_start, last.cite_end, pages, merged_context))
        run.clear()

    for draft in drafts:
        key = draft.region.merge_key
        small = draft.whole and key is not None and draft.words < config.min_words
        if small and run and run[-1].region.merge_key == key and (
            sum(d.words for d in run) + draft.words <= config.region_merge_words
        ):
            run.append(draft)
            continue
        close()
        if small:
            run.append(draft)
        else:
            out.append(draft)
    close()
    return out


def _absorb_fragments(drafts: list[Draft], config: ChunkingConfig) -> list[Draft]:
    """In generic documents, a lone small section joins the next one under the same parent
    (e.g. a one-line header before the first section), keeping the next one's locator."""
    out: list[Draft] = []
    carry: Draft | None = None
    for draft in drafts:
        if carry is not None:
            fits = carry.words + draft.words <= config.max_words
            if fits and draft.region.merge_key == carry.region.merge_key and draft.whole:
                draft = replace(draft, text=f"{carry.text}\n\n{draft.text}")
            else:
                out.append(carry)
            carry = None
        lone = draft.whole and not draft.region.range_ok and draft.words < config.min_words
        if lone and draft.region.merge_key is not None:
            carry = draft
        else:
            out.append(draft)
    if carry is not None:
        out.append(carry)
    return out


def _format_locator(name: str, draft: Draft) -> str:
    region = draft.region
    pages = ""
    if draft.pages:
        first_page, last_page = draft.pages
        pages = f"p. {first_page}" if first_page == last_page else f"p. {first_page}-{last_page}"
    if draft.cite_start != draft.cite_end:  # merged regions
        common = 0
        a_cite, b_cite = draft.cite_start, draft.cite_end
        while common < min(len(a_cite), len(b_cite)) and a_cite[common] == b_cite[common]:
            common += 1
        parts = [name, *a_cite[:common]]
        if region.range_ok:
            a = " > ".join(a_cite[common:])
            b = " > ".join(b_cite[common:])
            if a and b:
                rng = f"{a}-{_strip_shared_words(a, b)}"
                if region.attach and len(parts) > 1:
                    parts[-1] += rng
                else:
                    parts.append(rng)
        if pages:
            parts.append(pages)
        return " > ".join(p for p in parts if p)
    parts = [name, *region.cite]
    if draft.whole:
        if region.whole_label:
            parts.append(region.whole_label)
    else:
        label = _label_range(draft.start, draft.end)
        if label:
            if region.attach and len(parts) > 1:
                parts[-1] += label
            else:
                parts.append(label)
    if pages:
        parts.append(pages)
    return " > ".join(p for p in parts if p)


# ---------------------------------------------------------------- US Code

_USC_TITLE = re.compile(r"^Title\s+(\d+)\s*[—–-]+\s*(.*)$", re.I)
_USC_SECTION = re.compile(
    r"^(§§?)\s*(\d+[A-Za-z0-9\-–]*(?:\s+(?:to|and|through)\s+\d+[A-Za-z0-9\-–]*)?)\.?\s*(.*)$"
)
_USC_SUBSECTION = re.compile(r"^\(\s*([a-z]{1,3})\s*\)\s*(.*)$")
_USC_DIVISION = re.compile(r"^(SUBTITLE|CHAPTER|SUBCHAPTER|PART)\s+([\w.]+)\s*[—–-]+\s*(.*)$", re.I)


def _is_us_code(blocks: list[Block]) -> bool:
    first = next((b for b in blocks if b.kind == "heading"), None)
    return bool(first and first.level == 1 and _USC_TITLE.match(first.text))


def _titlecase(text: str) -> str:
    if text.isupper():
        small = {"and", "or", "of", "the", "for", "to", "in", "on", "by", "a", "an"}
        words = text.lower().split()
        return " ".join(w if (i and w in small) else w[:1].upper() + w[1:]
                        for i, w in enumerate(words))
    return text


def _read_us_code(doc: LoadedDocument) -> tuple[str, str, list[Region]]:
    title_no = "19"
    chapter = ""
    subtitle = ""
    section_sign, section_no, section_caption = "", "", ""
    sub_id, sub_caption = "", ""
    lines: list[str] = []
    for block in doc.blocks:
        if block.kind != "heading":
            lines.extend(block.text.split("\n"))
            continue
        text = block.text
        if block.level == 1 and _USC_TITLE.match(text):
            title_no = _USC_TITLE.match(text).group(1)  # type: ignore[union-attr]
            continue
        division = _USC_DIVISION.match(text)
        if block.level <= 3 and division:
            label = f"{division.group(1).title()} {division.group(2)}"
            caption = _titlecase(division.group(3).strip())
            if division.group(1).upper() == "SUBTITLE":
                subtitle = label
            else:
                chapter = f"{label} — {caption}" if caption else label
            continue
        section = _USC_SECTION.match(text)
        if block.level == 4 and section:
            section_sign, section_no, section_caption = section.groups()
            continue
        sub = _USC_SUBSECTION.match(text)
        if block.level == 5 and sub and not sub_id:
            sub_id, sub_caption = sub.group(1), sub.group(2).strip()
            continue
        if block.level >= 6 and sub and not sub_id and not lines and section_no:
            sub_id = sub.group(1)
            if sub.group(2).strip():
                lines.append(sub.group(2).strip())
            continue
        lines.append(text)  # deeper "headings" in this data are paragraphs of the text
    body_words = sum(len(line.split()) for line in lines)
    if not section_no and body_words < 20:
        return "", f"{title_no} U.S.C.", []  # only division headings: nothing to cite
    if section_no:
        cite = f"{title_no} U.S.C. {section_sign} {section_no}"
        title = f"{cite}. {section_caption}".rstrip(". ") if section_caption else cite
    else:
        where = chapter.split(" — ")[0] if chapter else subtitle
        cite = f"{title_no} U.S.C. {where}".strip()
        title = f"{title_no} U.S.C. {chapter or subtitle}".strip()
    if sub_id:
        cite += f"({sub_id})"
    context = [c for c in (section_caption, sub_caption, chapter) if c]
    region = Region(
        cite=[cite],
        context=context,
        lines=[normalize_space(line) for line in lines if line.strip()],
        scheme="usc" if sub_id else "usc-alpha",
        attach=True,
    )
    return "", title, [region]


# ---------------------------------------------------------------- treaties

SHORT_NAMES: tuple[tuple[str, str], ...] = (
    (r"implementation of article vii of the general agreement on tariffs and trade",
     "Agreement on Customs Valuation"),
    (r"^agreement on import licensing", "Agreement on Import Licensing Procedures"),
    (r"^agreement on preshipment inspection", "Agreement on Preshipment Inspection"),
    (r"^agreement on rules of origin", "Agreement on Rules of Origin"),
    (r"simplification and harmoni[sz]ation of customs procedures", "Revised Kyoto Convention"),
    (r"harmoni[sz]ed commodity description and coding system", "HS Convention"),
    (r"^agreement on trade facilitation", "Trade Facilitation Agreement"),
)


def short_name(title: str) -> str:
    """The name a person cites a known instrument by; otherwise the title itself."""
    for pattern, name in SHORT_NAMES:
        if re.search(pattern, title, re.I):
            return name
    return title


_ARTICLE = re.compile(r"^article\s+(\d+[a-z]?)\.?$", re.I)
_STANDARD = re.compile(r"^(\d{1,2})\.(\d{1,2})\.?$")


def _is_treaty(blocks: list[Block]) -> bool:
    marks = sum(
        1
        for b in blocks
        if b.kind == "heading" and (_ARTICLE.match(b.text) or _STANDARD.match(b.text))
    )
    return marks >= 3


@dataclass
class _Entry:
    rank: float
    kind: str
    label: str
    cite: bool
    caption: str = ""


_TREATY_HEADINGS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("annex", re.compile(r"^(general|specific)\s+annex\b\s*([a-z0-9]*)\.?$", re.I)),
    ("annex", re.compile(r"^annex\s*([ivxlc]+|\d+|[a-z])?\.?$", re.I)),
    ("part", re.compile(r"^part\s+([ivxlc]+|\d+)\.?$", re.I)),
    ("section", re.compile(r"^section\s+([ivxlc]+)\.?$", re.I)),
    ("chapter", re.compile(r"^chapter\s+([ivxlc]+|\d+)\.?$", re.I)),
    ("group", re.compile(r"^([A-Z])\.?$")),
    ("subgroup", re.compile(r"^([a-z])\)$")),
    ("article", _ARTICLE),
    ("standard", _STANDARD),
    ("note", re.compile(r"^(note to article\s+\d+|general note)\.?$", re.I)),
    ("notepara", re.compile(r"^paragraph\s+(\S.*)$", re.I)),
    ("gir", re.compile(r"^general rules for the interpretation\b", re.I)),
    ("provision",
     re.compile(r"^(transitional standard|standard|recommended practice)s?\.?$", re.I)),
    ("hsnotes", re.compile(r"^(sub-?heading\s+)?notes?\.?$", re.I)),
    ("toc", re.compile(r"^table of contents$", re.I)),
)
_RANKS = {"annex": 1, "part": 2, "section": 3, "chapter": 4, "group": 5, "subgroup": 5.7,
          "article": 6, "standard": 6, "note": 6, "gir": 6, "notepara": 7}


def _classify(text: str) -> tuple[str, str] | None:
    for kind, pattern in _TREATY_HEADINGS:
        m = pattern.match(text.strip())
        if not m:
            continue
        if kind == "annex":
            if m.re.pattern.startswith("^(general|specific)"):
                number = f" {m.group(2).upper()}" if m.group(2) else ""
                label = f"{m.group(1).title()} Annex{number}"
            else:
                label = f"Annex {m.group(1).upper()}" if m.group(1) else "Annex"
            return kind, label
        if kind in {"part", "section", "chapter"}:
            number = m.group(1) if m.group(1).isdigit() else m.group(1).upper()
            return kind, f"{kind.title()} {number}"
        if kind == "article":
            return kind, f"Article {m.group(1)}"
        if kind == "standard":
            return kind, f"{int(m.group(1))}.{int(m.group(2))}"
        if kind == "note":
            label = m.group(1)
            return kind, label[:1].upper() + label[1:].lower() if label.lower() == "general note" \
                else "Note to Article " + label.split()[-1]
        if kind == "notepara":
            return kind, f"Paragraph {m.group(1).strip()}"
        if kind == "gir":
            return kind, "General Interpretative Rules"
        if kind == "provision":
            return kind, m.group(1).title()
        if kind == "hsnotes":
            return kind, "Subheading Notes" if m.group(1) else "Notes"
        return kind, m.group(0)
    return None


_HS_INLINE = (
    (re.compile(r"\s*\b((?:Sub-?heading\s+)?Notes?\.)\s*(?=\d)", re.I), r"\n\1\n"),
    (re.compile(r"(?<=[^\s\d.])\s*(?=\b\d{1,2}\.\s?-)"), "\n"),
    (re.compile(r"(?<=[.;:)])\s*(?=\b\d{1,2}\.\s?-)"), "\n"),
    (re.compile(r"(?<=[a-z)\]\"”%]\.)\s*(?=\d{1,2}\.\s+[A-Z])"), "\n"),
    (re.compile(r"(?<=[:;])\s*(?=\([a-z]\)\s?\S)"), "\n"),
)


def _split_hs_line(line: str) -> list[str]:
    for pattern, repl in _HS_INLINE:
        line = pattern.sub(repl, line)
    return [normalize_space(part) for part in line.split("\n") if part.strip()]


def _read_treaty(doc: LoadedDocument) -> tuple[str, str, list[Region]]:
    blocks = doc.blocks
    title = doc.title
    name = short_name(title)
    is_hs = name == "HS Convention"
    dutch_titles = [
        b.text.lower()[:40] for b in blocks[:4] if b.kind == "heading" and looks_dutch(b.text)
    ]
    title_index = next(
        (i for i, b in enumerate(blocks) if b.kind == "heading" and b.text == title), -1
    )
    end = len(blocks)
    for i, block in enumerate(blocks):
        if i <= max(title_index, 3) or block.kind != "heading":
            continue
        if any(block.text.lower().startswith(t) for t in dutch_titles) or (
            looks_dutch(block.text)
            and re.match(r"^(artikel|hoofdstuk|bijlage)\b", block.text, re.I)
        ):
            end = i  # the Dutch translation follows the English text in these files
            break

    regions: list[Region] = []
    stack: list[_Entry] = []
    lines: list[str] = []
    prev_entry: _Entry | None = None
    skipping_toc = False
    preamble_label = ""

    def in_annex() -> bool:
        return any(e.kind == "annex" for e in stack)

    def in_note() -> bool:
        return any(e.kind == "note" for e in stack)

    def flush() -> None:
        nonlocal preamble_label
        body = [line for line in lines if line.strip()]
        lines.clear()
        if not body:
            return
        cite = [e.label for e in stack if e.cite]
        context = []
        for e in stack:
            context.append(f"{e.label} {e.caption}".strip() if e.caption else e.label)
        if not stack:
            first = body[0]
            label = first if len(first.split()) <= 6 and not first.endswith(".") else "Preamble"
            if first.lower().startswith("preamble"):
                label = "Preamble"
            cite = [preamble_label or label]
            preamble_label = cite[0]
        top = stack[-1] if stack else None
        parent = tuple(e.label for e in stack[:-1])
        head = ""
        if top is not None:
            head = f"{top.label} ({top.caption})" if top.kind == "standard" and top.caption else (
                f"{top.label} {top.caption}".strip() if top.kind in {"article"} else top.label
            )
        if is_hs and top is not None and top.kind in {"section", "chapter"}:
            regions.extend(_hs_regions(body, cite, context, parent))
            return
        regions.append(Region(
            cite=cite,
            context=context,
            lines=body,
            scheme="treaty",
            label_prefix="Rule " if top is not None and top.kind == "gir" else "",
            # a numbered provision is cited on its own; only unnumbered parts may be merged
            merge_key=parent if top is not None and top.kind == "topic" else None,
            label_whole=top is not None and top.kind == "topic" and not top.cite,
            heading=head,
        ))

    def push(entry: _Entry) -> None:
        while stack and stack[-1].rank >= entry.rank:
            stack.pop()
        stack.append(entry)

    for i in range(end):
        block = blocks[i]
        if block.kind != "heading":
            if skipping_toc:
                continue
            if len(block.text.split()) >= 8 and looks_dutch(block.text):
                continue
            parts = block.text.split("\n")
            if is_hs:
                parts = [p for line in parts for p in _split_hs_line(line)]
            lines.extend(parts if block.kind == "text" else [block.text])
            prev_entry = None
            continue
        if i == title_index or block.text.lower()[:40] in dutch_titles:
            continue
        found = _classify(block.text)
        kind = found[0] if found else ""
        if skipping_toc:
            nxt = blocks[i + 1] if i + 1 < end else None
            if kind == "gir" and nxt is not None and nxt.kind == "text":
                skipping_toc = False
            else:
                continue
        if kind == "toc":
            flush()
            skipping_toc = True
            continue
        if kind == "provision" and stack and stack[-1].kind == "standard":
            stack[-1].caption = found[1] if found else ""
            continue
        if kind == "hsnotes" and is_hs:
            lines.append(block.text)
            continue
        if found is None or kind in {"provision", "hsnotes"}:
            text = block.text
            if (prev_entry is not None and not prev_entry.caption
                    and prev_entry.kind not in {"note", "topic", "notepara"}):
                prev_entry.caption = text
                continue
            flush()
            if block.emphasis:
                entry = _Entry(7, "topic", text, cite=False)
            elif in_note():
                entry = _Entry(7, "topic", text, cite=True)
            else:
                entry = _Entry(5.5, "topic", text, cite=False)
            push(entry)
            prev_entry = entry
            continue
        flush()
        kind, label = found
        cite = True
        if kind == "part" or kind in {"group", "subgroup"}:
            cite = False
        elif kind == "chapter":
            cite = in_annex() or any(e.kind == "section" for e in stack)
        elif kind == "annex":
            cite = label != "Annex"
        entry = _Entry(_RANKS.get(kind, 6), kind, label, cite)
        push(entry)
        prev_entry = entry
    flush()
    return name, title, regions


_HS_HEADING_ROW = re.compile(r"^(\d{2})\.\s?(\d{2})\b")


def _hs_regions(
    body: list[str], cite: list[str], context: list[str], parent: tuple[str, ...]
) -> list[Region]:
    """An HS section or chapter: its notes, subheading notes and table of headings."""
    out: list[Region] = []
    mode = "text"
    current: list[str] = []

    def close() -> None:
        if not current:
            return
        if mode == "table":
            out.append(Region(cite, context, list(current), scheme="hs-table", merge_key=None))
        elif mode in {"notes", "subnotes"}:
            prefix = "Subheading Note " if mode == "subnotes" else "Note "
            label = "Subheading Notes" if mode == "subnotes" else "Notes"
            out.append(Region(cite, context, list(current), scheme="treaty",
                              label_prefix=prefix, whole_label=label))
        else:
            out.append(Region(cite, context, list(current), scheme="treaty"))
        current.clear()

    for line in body:
        stripped = line.strip().strip("*").strip()
        marker = re.fullmatch(r"(sub-?heading\s+)?notes?\.?", stripped, re.I)
        if marker:
            close()
            mode = "subnotes" if marker.group(1) else "notes"
            continue
        if re.match(r"^Heading No\.?\s*H\.?\s?S\.? Code", stripped, re.I):
            continue
        is_row = bool(_HS_HEADING_ROW.match(stripped) or re.match(r"^\d{4}\.\d{1,2}\b", stripped))
        if is_row and mode != "table":
            close()
            mode = "table"
        elif not is_row and mode == "table" and len(stripped.split()) > 40:
            # continuations ("- Mammals:", sub-chapter titles) stay in the table; prose ends it
            close()
            mode = "text"
        current.append(line)
    close()
    return out


def _hs_table_pieces(lines: list[str], config: ChunkingConfig) -> list[Piece]:
    pieces: list[Piece] = []
    for line in lines:
        m = _HS_HEADING_ROW.match(line.strip())
        if pieces and not m and pieces[-1].words + len(line.split()) > config.target_words:
            pieces.append(Piece(list(pieces[-1].labels), [line]))  # a very long heading
            continue
        if m or not pieces:
            label = f"Heading {m.group(1)}.{m.group(2)}" if m else "Headings"
            pieces.append(Piece([label], [line]))
        else:
            pieces[-1].lines.append(line)
    return pieces


# ---------------------------------------------------------------- generic documents


def _read_generic(doc: LoadedDocument) -> tuple[str, str, list[Region]]:
    title = doc.title
    regions: list[Region] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []
    page: int | None = None
    title_used = False

    def flush() -> None:
        body = [line for line in lines if line.strip()]
        lines.clear()
        if not body:
            return
        cite = [text for _, text in stack]
        regions.append(Region(
            cite=cite,
            context=list(cite),
            lines=body,
            scheme="none",
            merge_key=tuple(cite[:-1]) if cite else (),
            range_ok=False,
            heading=cite[-1] if cite else "",
            page=page,
        ))

    for block in doc.blocks:
        if block.page is not None and block.page != page:
            flush()
            page = block.page
        if block.kind == "heading":
            flush()
            if not title_used and block.text == title:
                title_used = True
                continue
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
            continue
        lines.extend(block.text.split("\n") if block.kind == "text" else [block.text])
    flush()
    return title, title, regions
