"""`knowbound world build`: generate the knowledge world and train its tiny chat model (cached)."""

from __future__ import annotations

import argparse
from pathlib import Path



def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="world_command", metavar="ACTION", required=True)
    presets = "v2 (the demo's), v2-wide (v2 with a 6.5M-parameter model), tiny (world v1), small, or micro (tests)"
    seed = "the world's seed: its people, facts, corpus and models (default 0, the demo's)"
    out = "cache directory (default: $KNOWBOUND_CACHE/worlds or ~/.cache/knowbound/worlds)"
    build = sub.add_parser("build", help="generate the world and train its models (cached by config hash)")
    build.add_argument("--preset", default="v2", help=presets)
    build.add_argument("--seed", type=int, default=0, help=seed)
    build.add_argument("--out", type=Path, default=None, help=out)
    build.add_argument("--no-eval", action="store_true", help="skip the check of the chat model")
    path = sub.add_parser("path", help="print where the world for a preset and seed is (or would be)")
    path.add_argument("--preset", default="v2", help=presets)
    path.add_argument("--seed", type=int, default=0, help=seed)
    path.add_argument("--out", type=Path, default=None, help=out)


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
