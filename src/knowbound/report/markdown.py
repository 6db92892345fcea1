"""The report as Markdown, for terminals and GitHub: the same sections as the HTML page, figures
linked as PNG files in a folder next to it (``report_files/<figure id>.png``).

Cells are escaped for Markdown tables (``|``, line breaks) and for the HTML that GitHub would
otherwise render (``<``, ``>``, ``&``): model answers must not turn into markup there either.
"""

from __future__ import annotations

import html
import re

from knowbound.report.document import (
    Code, Document, ExampleGroup, Figure, Gallery, Heading, Note, Section, Table,
)


def _cell(text: str) -> str:
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _text(text: str) -> str:
    return html.escape(text, quote=False)


def render_table(table: Table) -> str:
    lines = [f"**{_text(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join(["---"] + ["---:" if table.numeric else "---"] * (len(table.columns) - 1)) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_figure(fig: Figure, files_dir: str) -> str:
    caption = f"\n\n*{_text(fig.caption)}*" if fig.caption else ""
    return f"![{_cell(fig.title)}]({files_dir}/{fig.filename}){caption}"


def _fence(text: str) -> str:
    # A fence longer than any run of backticks inside, so the block cannot end early.
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_group(group: ExampleGroup) -> str:
    parts = [f"### {_text(group.title)}"]
    confidence = any(t.confidence for c in group.cells for t in c.transcripts)
    columns = ("question", "gold answers", "unaligned answer", "aligned answer") + (("confidence",) if confidence else ())
    for cell in group.cells:
        parts.append(f"**{_text(cell.title)}** ({len(cell.transcripts)} of {cell.total})")
        table = Table(columns, tuple((t.question, t.gold, t.unaligned, t.aligned)
                                     + ((t.confidence or "–",) if confidence else ()) for t in cell.transcripts),
                      numeric=False)
        parts.append(render_table(table))
    return "\n\n".join(parts)


def render_block(block, files_dir: str) -> str:
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        return render_figure(block, files_dir)
    if isinstance(block, Gallery):
        return "\n\n".join(render_figure(f, files_dir) for f in block.figures)
    if isinstance(block, Note):
        return f"> {_text(' '.join(block.text.split()))}"
    if isinstance(block, Code):
        fence = _fence(block.text)
        return f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"
    if isinstance(block, Heading):
        return f"### {_text(block.text)}"
    if isinstance(block, ExampleGroup):
        return render_group(block)
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_section(section: Section, files_dir: str) -> str:
    return "\n\n".join([f"## {_text(section.title)}", *(render_block(b, files_dir) for b in section.blocks)])


def render_markdown(doc: Document, files_dir: str) -> str:
    """The whole report; figures are linked as ``files_dir/<id>.png`` (relative to the .md file)."""
    parts = [f"# {_text(doc.title)}", _text(doc.subtitle), *(render_section(s, files_dir) for s in doc.sections)]
    return "\n\n".join(parts) + "\n"
