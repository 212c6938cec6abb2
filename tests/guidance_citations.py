"""Checks the guidance notes: structure, and that every cited provision exists in the shared texts.

Imported by tests/test_guidance_notes.py (it reads ../shared/data/regulations at import).
"""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTES = REPO / "retrieval" / "guidance"
DATA = REPO.parent / "shared" / "data" / "regulations"
VERBOSE = False


def read(p: Path) -> str:
    return p.read_text(encoding="utf-8").replace("\u202f", " ")


CV = read(DATA / "wto/wto_customs_valuation_agreement.md")
RO = read(DATA / "wto/wto_rules_of_origin_agreement.md")
PSI = read(DATA / "wto/wto_preshipment_inspection_agreement.md")
IL = read(DATA / "wto/wto_import_licensing_agreement.md")
RKC_ALL = read(DATA / "wco/revised_kyoto_convention.md")
RKC = RKC_ALL.split("####Internationale overeenkomst")[0]  # English part only
HS = read(DATA / "wco/hs_convention.md")
USC: dict[str, list[str]] = {}
for f in (DATA / "us-19-usc").glob("chunck-*.md"):
    t = read(f)
    m = re.search(r"^#### § (\S+?)\. ", t, re.M)
    if m:
        USC.setdefault(m.group(1), []).append(t)


def article_block(text: str, num: str) -> str | None:
    """Body of '### Article N' up to the next '### ' heading at article/part/annex level."""
    m = re.search(rf"^### ?Article\s+{re.escape(num)}\s*$", text, re.M)
    if not m:
        return None
    rest = text[m.end():]
    n = re.search(r"^### ?(Article|PART|Annex|CHAPTER|HOOFDSTUK)\b", rest, re.M)
    return rest[: n.start()] if n else rest


def annex_block(text: str, roman: str) -> str | None:
    m = re.search(rf"^### ?Annex\s+{roman}\s*$", text, re.M)
    if not m:
        return None
    rest = text[m.end():]
    n = re.search(r"^### ?Annex\s+\w+\s*$", rest, re.M)
    return rest[: n.start()] if n else rest


def has_para(block: str, para: str) -> bool:
    return re.search(rf"(^|\n)\s*{re.escape(para)}\s*\.(\s|[A-Z])", block) is not None


def has_letter(block: str, letter: str) -> bool:
    return re.search(rf"(^|\n)\s*\(?{re.escape(letter)}\)\s", block) is not None


errors: list[str] = []
checked = 0


def ok(cond: bool, msg: str) -> None:
    global checked
    checked += 1
    if not cond:
        errors.append(msg)
    elif VERBOSE:
        print("  ok:", msg)


def check_wto(doc: str, text: str, cite: str, where: str) -> None:
    # Annex I notes
    for m in re.finditer(r"Note to Article (\d+)", cite):
        ok(f"####Note to Article {m.group(1)}" in text, f"{where}: {doc} Note to Article {m.group(1)}")
    for m in re.finditer(r"Note to Article (\d+), Paragraph (\d)\(([a-z])\)(?:\(([ivx]+)\))?", cite):
        _a, p, l, r = m.groups()
        head = f"####Paragraph {p}{l})" + (f"{r})" if r else "")
        ok(head in text, f"{where}: {doc} heading {head}")
    for m in re.finditer(r"Annex (I{1,3})\b, paragraphs? ([\d, and-]+)", cite):
        block = annex_block(text, m.group(1))
        nums = re.findall(r"\d+", m.group(2))
        for n in nums:
            ok(block is not None and has_para(block, n), f"{where}: {doc} Annex {m.group(1)} para {n}")
    # Articles: strip note references first
    plain = re.sub(r"Note to Article \d+[^;]*", "", cite)
    plain = re.sub(r"Annex I{1,3}\b[^;]*", "", plain)
    for m in re.finditer(r"Articles? ([\d.()a-z, \-–and]+)", plain):
        for part in re.split(r",|\band\b", m.group(1)):
            part = part.strip()
            mm = re.match(r"(\d+)(?:\.(\d+))?(?:\(([a-z])\))?", part)
            if not mm:
                continue
            art, para, letter = mm.groups()
            block = article_block(text, art)
            ok(block is not None, f"{where}: {doc} Article {art}")
            if block is None:
                continue
            if para:
                ok(has_para(block, para), f"{where}: {doc} Article {art}.{para}")
                if letter:
                    # letter within paragraph
                    pm = re.search(rf"(^|\n)\s*{para}\s*\.\s", block)
                    sub = block[pm.start():] if pm else block
                    nxt = re.search(r"\n\s*%d\s*\.\s" % (int(para) + 1), sub)
                    sub = sub[: nxt.start()] if nxt else sub
                    ok(has_letter(sub, letter), f"{where}: {doc} Article {art}.{para}({letter})")
            elif letter:
                ok(has_letter(block, letter), f"{where}: {doc} Article {art}({letter})")


def rkc_standard(num: str) -> tuple[bool, str]:
    m = re.search(rf"^### ?{re.escape(num)}\s*$\s*####(Transitional Standard|Standard)", RKC, re.M)
    return (m is not None, m.group(1) if m else "")


def check_rkc(cite: str, where: str) -> None:
    if "Specific Annex" in cite:
        return
    for m in re.finditer(r"(Transitional )?Standards? ([\d.,\s\-–and()a-z]+)", cite):
        trans = bool(m.group(1))
        nums = re.findall(r"\d+\.\d+", m.group(2))
        for ch, lo, hi in re.findall(r"(\d+)\.(\d+)\s*[-–]\s*\d+\.(\d+)", m.group(2)):
            nums += [f"{ch}.{i}" for i in range(int(lo), int(hi) + 1)]
        for n in sorted(set(nums)):
            exists, kind = rkc_standard(n)
            ok(exists, f"{where}: RKC Standard {n} exists")
            if exists and trans:
                ok(kind == "Transitional Standard", f"{where}: RKC {n} is transitional (found {kind})")
    for m in re.finditer(r"definitions? ((?:E\d+[^;]*?)+)(?:$|;)", cite):
        for e in re.findall(r"E(\d+)", m.group(1)):
            ok(f"E{e}./" in RKC, f"{where}: RKC definition E{e}")
    for m in re.finditer(r"Revised Kyoto Convention, Article (\d+)\.(\d+)", cite):
        block = article_block(RKC, m.group(1))
        ok(block is not None and has_para(block, m.group(2)), f"{where}: RKC Article {m.group(1)}.{m.group(2)}")


def check_hs(cite: str, where: str) -> None:
    gir = HS.split("###GENERAL RULES FOR THE INTERPRETATION OF THE HARMONIZED SYSTEM")[1].split("###Section I")[0]
    for m in re.finditer(r"Rules? ([\d(a-c), and]+)", cite):
        for r in re.findall(r"(\d)(?:\(([a-c])\))?", m.group(1)):
            num, letter = r
            ok(re.search(rf"(^|\n){num}\.", gir) is not None, f"{where}: GIR {num}")
            if letter:
                ok(f"({letter})" in gir, f"{where}: GIR {num}({letter})")
    for m in re.finditer(r"HS Convention, Article (\d+)\.?(\d+)?", cite):
        block = article_block(HS, m.group(1))
        ok(block is not None, f"{where}: HS Convention Article {m.group(1)}")
        if block is not None and m.group(2):
            ok(re.search(rf"(^|\n)\s*{m.group(2)}\.\s", block) is not None, f"{where}: HS Art {m.group(1)}.{m.group(2)}")


def check_usc(cite: str, where: str) -> None:
    for m in re.finditer(r"§ (\d+[a-z]?)((?:\([a-z0-9A-Z]+\))*)", cite):
        sec, subs = m.group(1), m.group(2)
        if sec == "1905" or "18 U.S.C." in cite[max(0, m.start() - 12): m.start()]:
            continue
        chunks = USC.get(sec)
        ok(chunks is not None, f"{where}: 19 U.S.C. § {sec} exists")
        if not chunks or not subs:
            continue
        first = re.match(r"\(([a-z])\)", subs)
        if first:
            sub = [c for c in chunks if re.search(rf"^##### \({first.group(1)}\)", c, re.M)]
            ok(bool(sub), f"{where}: § {sec}({first.group(1)})")
            rest = re.findall(r"\(([^)]+)\)", subs)[1:]
            if sub and rest:
                body = "\n".join(sub)
                ok(f"({rest[0]})" in body, f"{where}: § {sec}({first.group(1)})({rest[0]})")


def run_checks() -> tuple[int, int, list[str]]:
    """Check every note; returns (notes, checks, problems)."""
    files = sorted(NOTES.glob("*.md"))
    for f in files:
        t = f.read_text(encoding="utf-8")
        name = f.name
        lines = t.splitlines()
        ok(lines[0].startswith("# "), f"{name}: H1 title first")
        ok(re.match(r"\*Tamga guidance note GN-\d\d · Last reviewed 2026-11 · Not legal advice: the cited texts prevail\.\*", lines[2] or "") is not None, f"{name}: header line")
        ok("## In short" in t, f"{name}: In short")
        ok("## Legal basis" in t, f"{name}: Legal basis")
        lb = t.split("## Legal basis", 1)[1] if "## Legal basis" in t else ""
        bullets = [line[2:] for line in lb.splitlines() if line.startswith("- ")]
        ok(len(bullets) >= 1, f"{name}: at least one citation")
        for b in bullets:
            if "not in Tamga's shared data" in b:
                if VERBOSE:
                    print("  skip (not in data):", name, b)
                continue
            where = f"{name} [{b[:70]}]"
            if "Customs Valuation" in b:
                check_wto("CV", CV, b.split("Customs Valuation", 1)[1], where)
            elif "Rules of Origin" in b:
                check_wto("RO", RO, b.split("Rules of Origin", 1)[1], where)
            elif "Preshipment" in b:
                check_wto("PSI", PSI, b.split("Inspection", 1)[1], where)
            elif "Import Licensing" in b:
                check_wto("IL", IL, b.split("Procedures", 1)[1], where)
            elif "Kyoto" in b:
                check_rkc(b, where)
            elif b.startswith("HS "):
                check_hs(b, where)
            elif "U.S.C." in b:
                check_usc(b, where)
            else:
                errors.append(f"{where}: unrecognised citation")
        # Body mentions of RKC standards and US sections
        body = t.split("## Legal basis", 1)[0]
        for m in re.finditer(r"(?:Standards?|Standard) (\d+\.\d+)", body):
            ok(rkc_standard(m.group(1))[0], f"{name}: body mentions RKC Standard {m.group(1)}")
        for m in re.finditer(r"(?<!18 U\.S\.C\. )§ (\d+[a-z]?)", body):
            if m.group(1) != "1905":
                ok(m.group(1) in USC, f"{name}: body mentions § {m.group(1)}")

    return len(files), checked, list(errors)
