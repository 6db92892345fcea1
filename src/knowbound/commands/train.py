"""`knowbound train CONFIG`: the loop up to this stage (earlier stages run if missing)."""

from knowbound.commands._loop import stage_command

HELP = "fine-tune a model per method on its data (models/<method>/)"
add_arguments, run = stage_command("train")
