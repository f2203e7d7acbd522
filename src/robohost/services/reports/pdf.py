"""Render a report ``Document`` as a PDF with reportlab's platypus: the same sections, tables and charts.

Text is set in DejaVu Sans (the TrueType font matplotlib ships), embedded in the file, so every character
of the report prints and the PDF needs nothing outside itself; Helvetica is the fallback. Must not import
``robohost.cli`` or ``robohost.bootstrap``.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import BaseDocTemplate

from robohost.services.reports import document as d

MARGIN = 15 * mm
PAGE_WIDTH, PAGE_HEIGHT = A4
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
WRAP_AT = 28
"""Cells longer than this wrap inside their column."""
HEADER_BG = colors.HexColor("#eef3f8")
RULE = colors.HexColor("#d5dde6")
ACCENT = colors.HexColor("#1f4e79")


def _fonts() -> tuple[str, str]:
    """Register DejaVu Sans (regular, bold) from matplotlib's fonts; fall back to Helvetica."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
    if not (regular.is_file() and bold.is_file()):
        return "Helvetica", "Helvetica-Bold"
    if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
    return "DejaVuSans", "DejaVuSans-Bold"


class _Styles:
    def __init__(self) -> None:
        self.font, self.bold = _fonts()
        base = {"fontName": self.font, "alignment": TA_LEFT}
        self.title = ParagraphStyle("title", fontName=self.bold, fontSize=18, leading=22, spaceAfter=4)
        self.subtitle = ParagraphStyle("subtitle", **base, fontSize=9, leading=12, textColor=colors.HexColor("#4a5868"))
        self.h2 = ParagraphStyle(
            "h2",
            fontName=self.bold,
            fontSize=13,
            leading=16,
            spaceBefore=12,
            spaceAfter=6,
            textColor=ACCENT,
            keepWithNext=1,
        )
        self.h3 = ParagraphStyle(
            "h3", fontName=self.bold, fontSize=10, leading=13, spaceBefore=6, spaceAfter=3, keepWithNext=1
        )
        self.body = ParagraphStyle("body", **base, fontSize=9, leading=12, spaceAfter=4)
        self.note = ParagraphStyle("note", **base, fontSize=7.5, leading=10, spaceAfter=4, textColor=colors.grey)
        self.verdict = ParagraphStyle(
            "verdict",
            fontName=self.bold,
            fontSize=12,
            leading=16,
            spaceBefore=4,
            spaceAfter=6,
            backColor=HEADER_BG,
            borderPadding=4,
        )
        self.cell = ParagraphStyle("cell", **base, fontSize=7.5, leading=9)
        self.cell_right = ParagraphStyle("cell_right", parent=self.cell, alignment=TA_RIGHT)


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _chart(block: d.Chart, styles: _Styles) -> Flowable:
    width, height = _png_size(block.png)
    draw_width = FRAME_WIDTH
    draw_height = draw_width * height / width
    limit = PAGE_HEIGHT - 2 * MARGIN - 30 * mm
    if draw_height > limit:
        draw_width, draw_height = draw_width * limit / draw_height, limit
    image = Image(io.BytesIO(block.png), width=draw_width, height=draw_height)
    return KeepTogether([Paragraph(escape(block.title), styles.h3), image, Spacer(1, 4)])


def _table(block: d.Table, styles: _Styles) -> list[Flowable]:
    numeric = [i < len(block.numeric) and block.numeric[i] for i in range(len(block.header))]

    def cell(text: str, col: int) -> Any:
        if len(text) <= WRAP_AT:
            return text
        return Paragraph(escape(text), styles.cell_right if numeric[col] else styles.cell)

    rows = [[cell(c, i) for i, c in enumerate(row)] for row in (block.header, *block.rows)]
    table = Table(rows, repeatRows=1, hAlign="LEFT", colWidths=_widths(block))
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), styles.font, 7.5),
        ("FONT", (0, 0), (-1, 0), styles.bold, 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    for col, right in enumerate(numeric):
        if right:
            commands.append(("ALIGN", (col, 0), (col, -1), "RIGHT"))
    table.setStyle(TableStyle(commands))
    heading: list[Flowable] = [Paragraph(escape(block.title), styles.h3)] if block.title else []
    return [*heading, table, Spacer(1, 6)]


def _widths(block: d.Table) -> list[float] | None:
    """Share the frame's width by the longest text of each column, for tables that would not fit."""
    columns = len(block.header)
    longest = [max([len(block.header[c]), *(len(row[c]) for row in block.rows)]) for c in range(columns)]
    if sum(longest) * 4.3 < FRAME_WIDTH:  # about 4.3 points a character at 7.5 pt: it fits as it is
        return None
    capped = [min(n, 60) + 2 for n in longest]
    return [FRAME_WIDTH * n / sum(capped) for n in capped]


def _flowables(doc: d.Document, styles: _Styles) -> list[Flowable]:
    story: list[Flowable] = [
        Paragraph(escape(doc.title), styles.title),
        Paragraph(escape(doc.subtitle), styles.subtitle),
    ]
    for section in doc.sections:
        story.append(Paragraph(escape(section.title), styles.h2))
        for block in section.blocks:
            if isinstance(block, d.Paragraph):
                style = {"note": styles.note, "verdict": styles.verdict}.get(block.style, styles.body)
                story.append(Paragraph(escape(block.text), style))
            elif isinstance(block, d.Table):
                story.extend(_table(block, styles))
            else:
                story.append(_chart(block, styles))
    return story


def render_pdf(doc: d.Document) -> bytes:
    """The report as PDF bytes (A4)."""
    styles = _Styles()
    buffer = io.BytesIO()

    def footer(canvas: Any, template: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(styles.font, 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(MARGIN, MARGIN / 2, doc.footer)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN / 2, f"page {template.page}")
        canvas.restoreState()

    pdf = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=doc.title,
        author="robohost",
        subject=doc.subtitle,
        creator="robohost",
        invariant=True,
    )
    pdf.build(_flowables(doc, styles), onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
