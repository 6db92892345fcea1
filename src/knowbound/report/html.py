"""The report as one self-contained HTML page: inline styles, PNGs as data URIs, no script.

Every text that reaches the page goes through ``html.escape`` (answers are model output). The
Content-Security-Policy forbids any network request and any script, so even a slip in escaping
could not run code or fetch anything.
"""

from __future__ import annotations

import base64
import html
import re
from string import Template

from knowbound.report.document import (
    Code, Document, ExampleGroup, Examples, Figure, Gallery, Heading, Note, Section, Table,
)
from knowbound.report.plots import DISPLAY_DPI, RENDER_DPI

VALUE_WITH_INTERVAL = re.compile(r"(-?[0-9.]+) (\[-?[0-9.]+, -?[0-9.]+\])")  # summary.format_value's form
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# string.Template ($name), because the CSS is full of braces.
PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
$style
</style>
</head>
<body>
<header>
<h1>$title</h1>
<p class="subtitle">$subtitle</p>
<nav>$nav</nav>
</header>
<main>
$body
</main>
</body>
</html>
""")
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1360px; padding: 0 24px 48px; color: #1d1d1f; background: #ffffff; line-height: 1.45; }
header { border-bottom: 1px solid #ddd; margin-bottom: 8px; }
h1 { font-size: 1.6em; margin: 20px 0 4px; }
h2 { font-size: 1.3em; margin: 32px 0 8px; border-bottom: 1px solid #eee; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
h4 { font-size: 0.95em; margin: 14px 0 4px; }
.subtitle { color: #555; margin: 0 0 8px; }
nav { margin: 0 0 12px; }
nav a { margin-right: 16px; color: #0b57d0; text-decoration: none; }
.table-wrap { overflow-x: auto; margin: 8px 0; }
table { border-collapse: collapse; font-size: 0.88em; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }
thead th { background: #f3f4f6; text-align: center; }
tbody th { text-align: left; background: #fafafa; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.ci { color: #666; font-size: 0.85em; }
tbody tr:nth-child(even) td { background: #fbfbfc; }
figure { margin: 12px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #444; max-width: 900px; }
.gallery { display: flex; flex-wrap: wrap; gap: 8px 16px; }
.gallery figure { margin: 4px 0; }
.note { color: #555; font-size: 0.9em; background: #f7f7f9; border-left: 3px solid #c8c8d0;
        padding: 4px 10px; max-width: 1000px; }
pre { background: #f6f8fa; padding: 10px 12px; overflow-x: auto; font-size: 0.85em; border-radius: 4px; }
details { margin: 8px 0; border: 1px solid #e4e4e7; border-radius: 4px; padding: 4px 10px; }
summary { cursor: pointer; font-weight: 600; }
table.transcripts { width: 100%; table-layout: fixed; }
table.transcripts td { overflow-wrap: anywhere; }
table.transcripts th:nth-child(1) { width: 30%; }
table.transcripts th:nth-child(2) { width: 12%; }
table.transcripts th:nth-child(5) { width: 7em; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height in CSS pixels (from the PNG header, scaled to the display density)."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return round(width * DISPLAY_DPI / RENDER_DPI), round(height * DISPLAY_DPI / RENDER_DPI)


def _value_cell(text: str) -> str:
    """A metric cell; an interval ("0.812 [0.79, 0.83]") goes on a second, smaller line so wide
    tables fit the page."""
    match = VALUE_WITH_INTERVAL.fullmatch(text)
    if match is None:
        return f"<td class=\"num\">{_e(text)}</td>"
    value, interval = match.groups()
    return f"<td class=\"num\">{_e(value)}<br><span class=\"ci\">{_e(interval)}</span></td>"


def render_table(table: Table) -> str:
    head = "".join(f"<th scope=\"col\">{_e(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        first, *rest = row
        cells = "".join(_value_cell(c) if table.numeric else f"<td>{_e(c)}</td>" for c in rest)
        body.append(f"<tr><th scope=\"row\">{_e(first)}</th>{cells}</tr>")
    ident = f" id=\"{_e(table.id)}\"" if table.id else ""
    caption = f"<caption>{_e(table.title)}</caption>" if table.title else ""
    return (f"<div class=\"table-wrap\"><table{ident}>{caption}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def render_figure(fig: Figure) -> str:
    width, height = _png_size(fig.png)
    data = base64.b64encode(fig.png).decode("ascii")
    caption = _e(fig.title) + (f": {_e(fig.caption)}" if fig.caption else "")
    return (f"<figure id=\"{_e(fig.id)}\"><img src=\"data:image/png;base64,{data}\" alt=\"{_e(fig.title)}\" "
            f"width=\"{width}\" height=\"{height}\"><figcaption>{caption}</figcaption></figure>")


def render_examples(cell: Examples, confidence: bool) -> str:
    """One transition cell's transcripts; the confidence column only for a method that states one."""
    shown = f"{len(cell.transcripts)} of {cell.total}"
    columns = ["question", "gold answers", "unaligned answer", "aligned answer"] + (["confidence"] if confidence else [])
    head = "".join(f"<th scope=\"col\">{c}</th>" for c in columns)
    rows = "".join(
        f"<tr><td>{_e(t.question)}</td><td>{_e(t.gold)}</td><td>{_e(t.unaligned)}</td><td>{_e(t.aligned)}</td>"
        + (f"<td class=\"num\">{_e(t.confidence) or '–'}</td>" if confidence else "") + "</tr>"
        for t in cell.transcripts
    )
    return (f"<h4 id=\"{_e(cell.id)}\">{_e(cell.title)} <small>({shown})</small></h4>"
            f"<div class=\"table-wrap\"><table class=\"transcripts\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def render_block(block) -> str:
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        return render_figure(block)
    if isinstance(block, Gallery):
        return "<div class=\"gallery\">" + "".join(render_figure(f) for f in block.figures) + "</div>"
    if isinstance(block, Note):
        return f"<p class=\"note\">{_e(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre><code>{_e(block.text)}</code></pre>"
    if isinstance(block, Heading):
        return f"<h3>{_e(block.text)}</h3>"
    if isinstance(block, ExampleGroup):
        confidence = any(t.confidence for c in block.cells for t in c.transcripts)
        cells = "".join(render_examples(c, confidence) for c in block.cells)
        expanded = " open" if block.open else ""
        return f"<details id=\"{_e(block.id)}\"{expanded}><summary>{_e(block.title)}</summary>{cells}</details>"
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_section(section: Section) -> str:
    body = "\n".join(render_block(b) for b in section.blocks)
    return f"<section id=\"{_e(section.id)}\">\n<h2>{_e(section.title)}</h2>\n{body}\n</section>"


def render_html(doc: Document) -> str:
    """The whole page."""
    nav = "".join(f"<a href=\"#{_e(s.id)}\">{_e(s.title)}</a>" for s in doc.sections)
    body = "\n".join(render_section(s) for s in doc.sections)
    return PAGE.substitute(csp=CSP, title=_e(doc.title), subtitle=_e(doc.subtitle), nav=nav, style=STYLE.strip(),
                           body=body)
