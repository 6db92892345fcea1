"""Question sets: load them from files, local datasets or the Hub, in any of the published formats.

``load_questions(source, adapter=None, ...)`` is the entry point; ``read_questions`` and
``write_questions`` handle the normalised JSONL kept in run directories. Formats are adapters
registered by name in ``ADAPTERS`` and detected from the columns when not named.
"""

from knowbound.datasets.adapters import ADAPTERS, RowError, detect_adapter
from knowbound.datasets.loader import LoadResult, load_questions, read_questions, write_questions
from knowbound.datasets.sources import RowSource, open_rows

__all__ = [
    "ADAPTERS",
    "LoadResult",
    "RowError",
    "RowSource",
    "detect_adapter",
    "load_questions",
    "open_rows",
    "read_questions",
    "write_questions",
]
