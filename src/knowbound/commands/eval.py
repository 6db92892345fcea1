"""`knowbound eval CONFIG`: the loop up to this stage (earlier stages run if missing)."""

from knowbound.commands._loop import stage_command

HELP = "answer every eval set with every model and score them (predictions/, metrics.json)"
add_arguments, run = stage_command("metrics")
