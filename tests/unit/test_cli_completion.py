"""Shell completion of ``model-safety`` (argcomplete): ``model-safety completion SHELL`` prints
the hook, a real bash sources it and completes subcommands and the options of the CLI's own,
the monitor's and the dataset's sub-parsers through the real program; without argcomplete the
CLI imports and runs as before."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_safety import cli

_console = Path(sys.executable).with_name("model-safety")
CLI_DIR = str(_console.parent)
BASH = shutil.which("bash")


def completion_script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    assert cli.main(["completion", shell]) == 0
    out, _ = capsys.readouterr()
    return out


def bash_completes(line: str) -> list[str]:
    """COMPREPLY of a real bash that sourced `model-safety completion bash` for ``line``."""
    assert BASH and _console.exists()
    words = line.split(" ")
    script = (
        'eval "$(model-safety completion bash)"\n'
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$LINE"; COMP_POINT=${#LINE}\n'
        '_python_argcomplete model-safety "${@: -1}" "${@: -2:1}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{CLI_DIR}:{os.environ['PATH']}", "LINE": line}
    done = subprocess.run(
        [BASH, "-c", script, "bash", *words], capture_output=True, text=True, env=env,
        timeout=60, check=True,
    )  # fmt: skip
    return sorted(done.stdout.split())


def test_bash_hook_is_valid_bash_and_registers_model_safety(capsys) -> None:
    script = completion_script(capsys, "bash")
    assert "complete -o nospace -o default -o bashdefault -F _python_argcomplete model-safety" in (
        script
    )
    subprocess.run([BASH or "bash", "-n"], input=script, text=True, check=True, timeout=30)


def test_zsh_hook_is_a_compdef_of_model_safety(capsys) -> None:
    assert completion_script(capsys, "zsh").startswith("#compdef model-safety\n")


def test_an_unknown_shell_is_a_usage_error(capsys) -> None:
    assert cli.main(["completion", "tcsh"]) == 2
    assert "invalid choice: 'tcsh'" in capsys.readouterr().err


def test_real_bash_completes_subcommands_and_options() -> None:
    assert bash_completes("model-safety com") == ["compare", "completion"]
    assert bash_completes("model-safety gate --js") == ["--json"]
    assert bash_completes("model-safety completion ") == ["--help", "-h", "bash", "fish", "zsh"]


def test_real_completion_reaches_the_monitor_and_dataset_parsers(tmp_path) -> None:
    """The protocol without bash: the program answers _ARGCOMPLETE with COMP_LINE/COMP_POINT."""
    answers = {}
    for line in ("model-safety monitor --webhook-r", "model-safety build-patchtst-dataset --dr"):
        out = tmp_path / "answer"
        env = {
            **os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        }  # fmt: skip
        done = subprocess.run([str(_console)], env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        answers[line] = out.read_text().split()
    assert answers == {
        "model-safety monitor --webhook-r": ["--webhook-retries"],
        "model-safety build-patchtst-dataset --dr": ["--dry-run"],
    }


def test_without_argcomplete_the_cli_runs_and_completion_says_why(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "argcomplete", None)  # import argcomplete -> ImportError
    monkeypatch.setenv("_ARGCOMPLETE", "1")
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.startswith("model-safety ")
    assert cli.main(["completion", "bash"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == (
        "",
        "model-safety: completion needs the argcomplete package\n",
    )


def test_importing_the_cli_does_not_import_argcomplete() -> None:
    code = "import sys, model_safety.cli; assert 'argcomplete' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
