"""The report: a run directory -> ``report.html`` (one self-contained page) and ``report.md``.

``data`` loads the run into plain records, ``summary`` and ``analysis`` compute the tables and
the numbers behind each figure, ``plots`` draws them (matplotlib, imported lazily), ``sections``
assembles the document, and ``html`` / ``markdown`` write it. ``write_report`` does it all.
"""

from __future__ import annotations

from pathlib import Path

from knowbound.io import atomic_write_text
from knowbound.report.data import load_run
from knowbound.report.html import render_html
from knowbound.report.markdown import render_markdown
from knowbound.report.sections import build_document

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
FILES_DIR = "report_files"  # the Markdown report's PNGs, linked relatively


def write_report(run_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` (with its PNGs in ``report_files/``) into ``run_dir``.

    Returns the two paths. Missing optional files become notes in the report; only a
    ``run_dir`` that is not a directory raises (``KnowboundError``).
    """
    run_dir = Path(run_dir)
    doc = build_document(load_run(run_dir))
    files = run_dir / FILES_DIR
    figures = doc.figures()
    if figures:
        files.mkdir(exist_ok=True)
    # A re-run may draw fewer figures (a model removed): old PNGs would be stale, not linked.
    keep = {f.filename for f in figures}
    for old in files.glob("fig-*.png"):
        if old.name not in keep:
            old.unlink()
    for fig in figures:
        (files / fig.filename).write_bytes(fig.png)
    html_path, md_path = run_dir / HTML_NAME, run_dir / MARKDOWN_NAME
    atomic_write_text(html_path, render_html(doc))
    atomic_write_text(md_path, render_markdown(doc, FILES_DIR))
    return html_path, md_path


__all__ = ["write_report"]
