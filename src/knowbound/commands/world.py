"""`knowbound world build`: generate the knowledge world and train its tiny chat model (cached)."""

from __future__ import annotations

import argparse
from pathlib import Path



def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="world_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="generate the world and train its models (cached by config hash)")
    build.add_argument("--preset", default="v2",
                       help="v2 (the demo's), v2-wide (v2 with a 6.5M-parameter model), tiny (world v1), small, "
                            "or micro (tests)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--out", type=Path, default=None,
                       help="cache directory (default: $KNOWBOUND_CACHE/worlds or ~/.cache/knowbound/worlds)")
    build.add_argument("--no-eval", action="store_true", help="skip the check of the chat model")
    path = sub.add_parser("path", help="print where the world for a preset and seed is (or would be)")
    path.add_argument("--preset", default="v2")
    path.add_argument("--seed", type=int, default=0)
    path.add_argument("--out", type=Path, default=None)


def run(args: argparse.Namespace) -> int:
    from knowbound.output import message
    from knowbound.world.build import build_world, world_dir
    from knowbound.world.config import preset

    cfg = preset(args.preset, seed=args.seed)
    if args.world_command == "path":
        message(str(world_dir(cfg, args.out).root))
        return 0
    build_world(cfg, args.out, evaluate=not args.no_eval)
    return 0
