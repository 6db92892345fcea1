"""The report as data: sections of tables, figures, notes, code and transcripts.

The sections are built once (``sections.py``) and written twice, as HTML (``html.py``) and as
Markdown (``markdown.py``), so both files always say the same thing. All text here is plain
text; each writer escapes it for its format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Table:
    """A table of preformatted cells; ``id`` is the element id in the HTML page."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""
    id: str = ""
    numeric: bool = True  # right-align every column but the first


@dataclass(frozen=True)
class Figure:
    """One plot as PNG bytes, with a stable ``id`` (``fig-...``), a caption and alt text."""

    id: str
    title: str
    png: bytes
    caption: str = ""

    @property
    def filename(self) -> str:
        return f"{self.id}.png"


@dataclass(frozen=True)
class Gallery:
    """Several small figures shown side by side (one per method)."""

    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class Note:
    """A short remark: what is missing and why, or how to read a figure."""

    text: str


@dataclass(frozen=True)
class Code:
    """A verbatim block (the run's config)."""

    text: str
    language: str = ""


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Transcript:
    """One question answered by the unaligned and an aligned model."""

    question: str
    gold: str
    unaligned: str
    aligned: str
    confidence: str = ""  # the aligned answer's confidence, formatted, or ""


@dataclass(frozen=True)
class Examples:
    """Example transcripts of one transition cell (unaligned label -> aligned label)."""

    id: str
    title: str
    transcripts: tuple[Transcript, ...]
    total: int  # answers in the cell; ``transcripts`` shows the first few


@dataclass(frozen=True)
class ExampleGroup:
    """All example cells of one method, shown collapsed in the HTML page."""

    id: str
    title: str
    cells: tuple[Examples, ...]
    open: bool = False  # shown expanded (the first method's, so a reader sees what a transcript is)


Block = Union[Table, Figure, Gallery, Note, Code, Heading, ExampleGroup]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: tuple[Section, ...]

    def figures(self) -> list[Figure]:
        """Every figure in page order (galleries flattened)."""
        out: list[Figure] = []
        for section in self.sections:
            for block in section.blocks:
                if isinstance(block, Figure):
                    out.append(block)
                elif isinstance(block, Gallery):
                    out.extend(block.figures)
        return out


def slug(text: str) -> str:
    """``text`` as an HTML id / file name part: lower case, runs of other characters -> '-'."""
    out = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in out.split("-") if part) or "x"
