"""`knowbound probe CONFIG`: the loop up to this stage (earlier stages run if missing)."""

from knowbound.commands._loop import stage_command

HELP = "probe the unaligned model's knowledge: sample, grade, label (knowledge.jsonl)"
add_arguments, run = stage_command("label")
