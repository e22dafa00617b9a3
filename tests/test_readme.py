"""The README's commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    return re.findall(r"```bash\n(python3 -m venv .*?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_a_main_job_command_and_a_test_command():
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("-m autograder demo") and commands[1].endswith("-m pytest")


def test_ci_runs_the_readme_test_command_in_a_fresh_virtual_environment():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = readme_commands()[1]
    venv_step, rest = test_command.split(" && ", 1)
    assert "rm -rf .venv" in ci and venv_step in ci
    assert rest in ci
