"""PDF documents with Tamga's fonts (fpdf2, imported when a document is made)."""

from __future__ import annotations

from pathlib import Path

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DEJAVU_BOLD = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
DEJAVU_MONO = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


class PdfDocument:
    """An A4 fpdf2 document with Tamga's fonts (DejaVu when installed, else the core fonts)."""

    def __init__(self, orientation: str = "P", mono: bool = True) -> None:
        """Start a document (portrait "P" or landscape "L"); `body` and `mono` name the fonts
        (without `mono` the monospaced font is not loaded and `mono` is the body font)."""
        from fpdf import FPDF

        self.pdf = FPDF(orientation=orientation, format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.unicode_ok = DEJAVU.exists() and DEJAVU_BOLD.exists() and DEJAVU_MONO.exists()
        if self.unicode_ok:
            self.pdf.add_font("body", "", str(DEJAVU))
            self.pdf.add_font("body", "B", str(DEJAVU_BOLD))
            if mono:
                self.pdf.add_font("mono", "", str(DEJAVU_MONO))
            self.body, self.mono = "body", "mono" if mono else "body"
        else:
            self.body, self.mono = "Helvetica", "Courier"

    def clean(self, text: str) -> str:
        """`text` as the fonts can print it (Latin-1 with the core fonts)."""
        if self.unicode_ok:
            return text
        return text.replace("—", "-").encode("latin-1", "replace").decode("latin-1")

    def para(self, text: str, size: float = 10, style: str = "", font: str | None = None,
             gap: float = 1.0) -> None:
        """A paragraph across the page width."""
        self.pdf.set_font(font or self.body, style, size)
        self.pdf.multi_cell(0, size * 0.5, self.clean(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(gap)

    def output(self) -> bytes:
        """The finished PDF file."""
        return bytes(self.pdf.output())
