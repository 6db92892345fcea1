"""`knowbound build CONFIG`: the loop up to this stage (earlier stages run if missing)."""

from knowbound.commands._loop import stage_command

HELP = "build honesty training data for every method (data/<method>.jsonl)"
add_arguments, run = stage_command("build")
