"""Where the loop used to live; it is now the package ``knowbound.loop`` (one module per stage).

Kept as an alias so that existing callers of ``knowbound.pipeline.run_loop`` keep working.
"""

from knowbound.loop import prepare, run_loop  # noqa: F401
from knowbound.loop.rundir import stage_digests  # noqa: F401
