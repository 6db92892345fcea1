import subprocess
import sys

from knowbound.cli import main


def test_help_lists_commands_without_heavy_imports():
    code = (
        "import sys; from knowbound.cli import build_parser; build_parser().format_help();"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'pandas', 'matplotlib') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: knowbound" in capsys.readouterr().out
