"""Unit tests for ``model-safety monitor``'s command line (model_safety.monitor.cli) and for the
refusals of its loop (model_safety.monitor.loop) that happen before any playbook runs."""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_safety.cli import main
from model_safety.monitor import loop as monitor_loop
from model_safety.monitor.cli import PROJECT_ENV, WEBHOOK_ENV, load_config, parse_duration
from model_safety.monitor.loop import Monitor, default_inventory, resolve_hosts
from model_safety.monitor.settings import MonitorOptions, MonitorSettings
from model_safety.monitor.store import HostLocks
from tests.monitor_events import close_check_loggers

INVENTORY = """\
all:
  children:
    engine:
      hosts:
        e1:
        e2:
    other:
      hosts:
        x1:
"""


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    monkeypatch.delenv(PROJECT_ENV, raising=False)


@pytest.fixture(autouse=True)
def _close_check_loggers(tmp_path: Path) -> Iterator[None]:
    """Monitor opens a process-wide check logger per path: close the ones under tmp_path."""
    yield
    close_check_loggers(tmp_path)


@pytest.fixture
def no_playbook_runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Any attempt to run a playbook fails the test (and is recorded) instead of running."""
    calls: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        raise AssertionError("a playbook would have run")

    monkeypatch.setattr(monitor_loop, "run_playbook", refuse)
    return calls


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[MonitorOptions]:
    """Replace the loop: record the MonitorOptions run_monitor built; the run exits 0."""
    options: list[MonitorOptions] = []

    class FakeMonitor:
        def __init__(self, made: MonitorOptions, **_kwargs: Any) -> None:
            options.append(made)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(monitor_loop, "Monitor", FakeMonitor)
    return options


def files(tmp_path: Path) -> list[str]:
    """The file options every run gets (nothing under /var)."""
    return [
        "--state-dir",
        str(tmp_path / "state"),
        "--check-log",
        str(tmp_path / "log" / "checks.jsonl"),
        "--activation-log",
        str(tmp_path / "log" / "canary.jsonl"),
    ]


def project(tmp_path: Path, name: str = "project", playbooks: bool = True) -> Path:
    directory = tmp_path / name
    (directory / "playbooks").mkdir(parents=True)
    if playbooks:
        for playbook in ("monitor_check.yml", "monitor_record.yml", "rollback.yml"):
            (directory / "playbooks" / playbook).write_text("---\n[]\n")
    return directory


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "monitor.yml"
    path.write_text(text)
    return str(path)


# -- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6h", 21600.0),
        ("90m", 5400.0),
        ("1h30m", 5400.0),
        ("30s", 30.0),
        ("45", 45.0),
        ("0.5s", 0.5),
        ("1.5h", 5400.0),
        ("1h0m1s", 3601.0),
        (" 2m ", 120.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", " ", "0", "0s", "0h0m", "-1", "-1s", "abc", "5d", "h", "m30", "1m1h", "1 h", "inf", "nan"],
)
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


# -- errors before anything runs -------------------------------------------------------------


def test_monitor_needs_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[MonitorOptions]
) -> None:
    assert main(["monitor", *files(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "model-safety monitor: --model is required" in err
    assert out == ""
    assert captured == []
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ("max_action_share", "not NAME=NUMBER"),
        ("max_action_share=abc", "not NAME=NUMBER"),
        ("max_action_share=nan", "not NAME=NUMBER"),
        ("Max=0.5", "not NAME=NUMBER"),
        ("max_actionshare=0.7", "bad gate thresholds: unknown thresholds: max_actionshare"),
        ("max_action_share=1.5", "bad gate thresholds"),
        ("max_payload_p95=1500.5", "bad gate thresholds"),
    ],
)
def test_a_bad_threshold_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    captured: list[MonitorOptions],
    threshold: str,
    message: str,
) -> None:
    argv = ["monitor", "--model", "patchtst", "--threshold", threshold, *files(tmp_path)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert captured == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--model", "PatchTST"],
        ["--model", "patchtst", "--duration", "5d"],
        ["--model", "patchtst", "--interval", "0"],
        ["--model", "patchtst", "--max-hard-disagree", "1.5"],
        ["--model", "patchtst", "--webhook-retries", "-1"],
        ["--model", "patchtst", "--webhook-retries", "two"],
        ["--model", "patchtst", "--bogus"],
    ],
    ids=lambda argv: " ".join(argv[2:]) or argv[1],
)
def test_bad_options_exit_2_before_the_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[MonitorOptions], argv: list
) -> None:
    assert main(["monitor", *argv, *files(tmp_path)]) == 2
    assert capsys.readouterr().err
    assert captured == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--false-rollback-rate", "0"], "must be in [1e-9, 0.5], got '0'"),
        (["--false-rollback-rate", "0.6"], "must be in [1e-9, 0.5], got '0.6'"),
        (["--false-rollback-rate", "-0.01"], "must be in [1e-9, 0.5]"),
        (["--false-rollback-rate", "nan"], "must be in [1e-9, 0.5]"),
        (["--false-rollback-rate", "1%"], "not a number: '1%'"),
        (
            ["--false-rollback-rate", "1e-12"],
            "must be in [1e-9, 0.5], got '1e-12'",
        ),
        (["--confirm-events", "-1"], "not an integer >= 0"),
        (["--confirm-events", "1.5"], "not an integer >= 0"),
        (["--confirm-events", "1001"], "confirm_events must be an integer in [0, 1000]"),
        (["--window-events", "0"], "not a positive integer"),
        (["--window-events", "5"], "window_events must be an integer in [10, 100000], got 5"),
        (["--window-events", "100001"], "window_events must be an integer in [10, 100000]"),
        (["--stall-checks", "0"], "not a positive integer"),
        # the options of the judgement by consecutive checks are gone
        (["--persist-checks", "2"], "unrecognized arguments: --persist-checks 2"),
        (["--redundant-checks", "10"], "unrecognized arguments: --redundant-checks 10"),
        (["--inconclusive-checks", "10"], "unrecognized arguments: --inconclusive-checks 10"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_bad_evidence_options_exit_2_saying_why(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    captured: list[MonitorOptions],
    argv: list[str],
    message: str,
) -> None:
    assert main(["monitor", "--model", "patchtst", *argv, *files(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert captured == []


def test_the_evidence_options_reach_the_settings(
    tmp_path: Path, captured: list[MonitorOptions]
) -> None:
    argv = ["monitor", "--model", "patchtst", "--false-rollback-rate", "0.05"]
    argv += ["--confirm-events", "0", "--window-events", "250", "--stall-checks", "5"]
    assert main([*argv, *files(tmp_path)]) == 0
    (options,) = captured
    assert options.settings == MonitorSettings(
        model="patchtst",
        false_rollback_rate=0.05,
        confirm_events=0,
        window_events=250,
        stall_checks=5,
    )


def test_the_help_names_the_evidence_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["monitor", "--help"])
    out = capsys.readouterr().out
    for option in ("--false-rollback-rate", "--confirm-events", "--window-events"):
        assert option in out
    for gone in ("--persist-checks", "--redundant-checks", "--inconclusive-checks"):
        assert gone not in out
    assert "5 completed inconclusive" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: patchtst\nbogus: 1\nother: 2\n", "unknown options bogus, other"),
        ("model: patchtst\npersist_checks: 2\n", "unknown options persist_checks"),
        ("model: patchtst\nredundant_checks: 2\n", "unknown options redundant_checks"),
        ("model: patchtst\ninconclusive_checks: 2\n", "unknown options inconclusive_checks"),
        (
            "model: patchtst\nfalse_rollback_rate: 0\n",
            "false_rollback_rate: must be in [1e-9, 0.5]",
        ),
        ("model: patchtst\nfalse_rollback_rate: 1%\n", "false_rollback_rate: not a number"),
        ("model: patchtst\nfalse_rollback_rate: 1e-12\n", "false_rollback_rate: must be in"),
        ("model: patchtst\nconfirm_events: -1\n", "confirm_events: not an integer >= 0"),
        ("model: patchtst\nconfirm_events: true\n", "confirm_events: not an integer >= 0"),
        ("model: patchtst\nwindow_events: 0\n", "window_events: not a positive integer"),
        ("model: patchtst\nwindow_events: 5\n", "window_events must be an integer in [10, "),
        ("model: patchtst\nstall_checks: 0\n", "stall_checks: not a positive integer"),
        ("model: patchtst\ninterval: 5d\n", "interval: not a duration"),
        ("model: patchtst\nmax_hard_disagree: 2\n", "max_hard_disagree: not a share"),
        ("model: patchtst\nthresholds: [1, 2]\n", "thresholds must be a mapping"),
        ("model: patchtst\nthresholds: {nope: 1}\n", "unknown thresholds: nope"),
        ("model: patchtst\nwebhook_retries: many\n", "webhook_retries: not an integer >= 0"),
        ("model: patchtst\nwebhook_retries: true\n", "webhook_retries: not an integer >= 0"),
        ("- model\n- patchtst\n", "expected a mapping of options"),
        ("just text\n", "expected a mapping of options"),
        ("model: [unclosed\n", "cannot read the config file"),
        ("model: Patch-TST\n", "not a valid model name"),
    ],
)
def test_a_bad_config_file_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    captured: list[MonitorOptions],
    text: str,
    message: str,
) -> None:
    path = config_file(tmp_path, text)
    assert main(["monitor", "--config", path, *files(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("model-safety monitor: ")
    assert message in err
    assert captured == []


def test_a_missing_config_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[MonitorOptions]
) -> None:
    missing = str(tmp_path / "nope.yml")
    assert main(["monitor", "--model", "patchtst", "--config", missing, *files(tmp_path)]) == 2
    assert f"cannot read the config file {missing}" in capsys.readouterr().err
    assert captured == []


def test_an_empty_config_file_is_no_options(tmp_path: Path) -> None:
    assert load_config(config_file(tmp_path, "")) == {}
    assert load_config(config_file(tmp_path, "# nothing\n")) == {}


def test_load_config_converts_like_the_command_line(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "duration: 1h30m\ninterval: 45\nwebhook_timeout: 2s\nfalse_rollback_rate: 0.001\n"
        "confirm_events: 0\nwindow_events: 500\nstall_checks: 4\n"
        "max_hard_disagree: 0.3\nthresholds: {max_action_share: 0.8}\nlimit: e1\n",
    )
    assert load_config(path) == {
        "duration": 5400.0,
        "interval": 45.0,
        "webhook_timeout": 2.0,
        "false_rollback_rate": 0.001,
        "confirm_events": 0,
        "window_events": 500,
        "stall_checks": 4,
        "max_hard_disagree": 0.3,
        "thresholds": {"max_action_share": 0.8},
        "limit": "e1",
    }


def test_a_non_http_webhook_exits_2_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_playbook_runs: list[Any]
) -> None:
    argv = [
        "monitor",
        "--model",
        "patchtst",
        "--project-dir",
        str(project(tmp_path)),
        "--webhook-url",
        "ftp://user:secret@hooks.example.com/services/T0?token=abc",
        *files(tmp_path),
    ]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "model-safety monitor: webhook URL must be http(s)://host/..., got ftp://hooks.example.com\n"
    )
    for secret in ("user", "secret", "services", "token", "abc"):
        assert secret not in err
    assert no_playbook_runs == []
    assert not (tmp_path / "state").exists()


def test_a_webhook_with_a_space_exits_2_without_showing_its_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_playbook_runs: list[Any]
) -> None:
    url = "https://hooks.example.com/services/T0K3N with space"
    argv = ["monitor", "--model", "patchtst", "--project-dir", str(project(tmp_path))]
    assert main([*argv, "--webhook-url", url, *files(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "webhook URL must be printable ASCII without spaces" in err
    assert "T0K3N" not in err and "services" not in err
    assert no_playbook_runs == []
    assert not (tmp_path / "state").exists()


def test_a_non_http_webhook_from_the_environment_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_playbook_runs: list[Any],
) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, "file:///etc/passwd")
    argv = ["monitor", "--model", "patchtst", "--project-dir", str(project(tmp_path))]
    assert main([*argv, *files(tmp_path)]) == 2
    assert "webhook URL must be http(s)://host/" in capsys.readouterr().err
    assert no_playbook_runs == []


# -- where the options come from ---------------------------------------------------------------


def test_config_values_are_used_and_the_command_line_wins(
    tmp_path: Path, captured: list[MonitorOptions]
) -> None:
    path = config_file(
        tmp_path,
        f"""\
model: nhits
duration: 2h
interval: 15s
false_rollback_rate: 0.05
confirm_events: 5
window_events: 2000
max_hard_disagree: 0.3
redundant_agreement: 0.9
stall_checks: 4
thresholds:
  max_action_share: 0.8
  min_conf_std: 0.04
limit: e1
inventory: {tmp_path / "config-inventory.yml"}
project_dir: {tmp_path / "config-project"}
state_dir: {tmp_path / "config-state"}
activation_log: {tmp_path / "config-canary.jsonl"}
check_log: {tmp_path / "config-checks.jsonl"}
textfile_dir: {tmp_path / "textfiles"}
webhook_url: http://config.example/hook
webhook_timeout: 2s
webhook_retries: 1
""",
    )
    argv = [
        "monitor",
        "--config",
        path,
        "--model",
        "patchtst",
        "--interval",
        "45s",
        "--false-rollback-rate",
        "0.001",
        "--confirm-events",
        "0",
        "--threshold",
        "max_action_share=0.75",
        "--threshold",
        "min_spread=0.1",
        "--project-dir",
        str(tmp_path / "cli-project"),
        "--webhook-url",
        "https://cli.example/hook",
        "--webhook-retries",
        "0",
        "--limit",
        "e2",
    ]
    assert main(argv) == 0
    (options,) = captured
    assert options.settings == MonitorSettings(
        model="patchtst",
        duration_s=7200.0,
        interval_s=45.0,
        false_rollback_rate=0.001,
        confirm_events=0,
        window_events=2000,
        max_hard_disagree=0.3,
        redundant_agreement=0.9,
        stall_checks=4,
        thresholds={"max_action_share": 0.75, "min_conf_std": 0.04, "min_spread": 0.1},
    )
    assert options.project_dir == str(tmp_path / "cli-project")
    assert options.inventory == str(tmp_path / "config-inventory.yml")
    assert options.limit == "e2"
    assert options.state_dir == str(tmp_path / "config-state")
    assert options.activation_log == str(tmp_path / "config-canary.jsonl")
    assert options.check_log == str(tmp_path / "config-checks.jsonl")
    assert options.textfile_dir == str(tmp_path / "textfiles")
    assert options.webhook_url == "https://cli.example/hook"
    assert (options.webhook_timeout, options.webhook_retries) == (2.0, 0)


def test_defaults_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, captured: list[MonitorOptions]
) -> None:
    env_project = project(tmp_path, "env-project")
    (env_project / "ansible.cfg").write_text("[defaults]\ninventory = inventory/site\n")
    monkeypatch.setenv(PROJECT_ENV, str(env_project))
    monkeypatch.setenv(WEBHOOK_ENV, "https://env.example/hook")
    assert main(["monitor", "--model", "patchtst"]) == 0
    (options,) = captured
    assert options.settings == MonitorSettings(model="patchtst")
    assert options.project_dir == str(env_project)
    assert options.inventory == str(env_project / "inventory" / "site")
    assert options.webhook_url == "https://env.example/hook"
    assert options.state_dir == "/var/lib/model-safety/monitor"
    assert options.activation_log == "/var/log/quantum/qsc_canary.jsonl"
    assert options.check_log == "/var/log/quantum/qsc_monitor_checks.jsonl"
    assert (options.limit, options.textfile_dir) == (None, None)
    assert (options.webhook_timeout, options.webhook_retries) == (5.0, 2)


def test_a_relative_project_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, captured: list[MonitorOptions]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["monitor", "--model", "patchtst", "--project-dir", "here", "-i", "inv"]) == 0
    (options,) = captured
    assert options.project_dir == str(tmp_path / "here")
    assert options.inventory == str(tmp_path / "inv")


def test_the_real_run_names_the_project_dir_of_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_playbook_runs: list[Any]
) -> None:
    from_config = project(tmp_path, "from-config", playbooks=False)
    path = config_file(tmp_path, f"model: patchtst\nproject_dir: {from_config}\n")
    assert main(["monitor", "--config", path, *files(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == f"model-safety monitor: no playbooks/monitor_check.yml in {from_config}\n"
    assert err == ""
    assert no_playbook_runs == []


def test_the_real_run_names_the_project_dir_of_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_playbook_runs: list[Any]
) -> None:
    from_config = project(tmp_path, "from-config", playbooks=False)
    from_cli = project(tmp_path, "from-cli", playbooks=False)
    path = config_file(tmp_path, f"model: patchtst\nproject_dir: {from_config}\n")
    argv = ["monitor", "--config", path, "--project-dir", str(from_cli), *files(tmp_path)]
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert out == f"model-safety monitor: no playbooks/monitor_check.yml in {from_cli}\n"
    assert no_playbook_runs == []


# -- the loop's refusals (no playbook runs) ----------------------------------------------------


def test_default_inventory(tmp_path: Path) -> None:
    assert default_inventory(str(tmp_path)) is None
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nforks = 5\n")
    assert default_inventory(str(tmp_path)) is None
    cfg.write_text("[defaults]\ninventory = inventory/lab\n")
    assert default_inventory(str(tmp_path)) == str(tmp_path / "inventory" / "lab")
    cfg.write_text("[defaults]\ninventory = /etc/ansible/hosts\n")
    assert default_inventory(str(tmp_path)) == "/etc/ansible/hosts"
    repo = Path(__file__).resolve().parents[2]
    assert default_inventory(str(repo)) == str(repo / "inventory" / "lab")


@pytest.fixture
def inventory(tmp_path: Path) -> str:
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return str(path)


def test_resolve_hosts(inventory: str) -> None:
    assert resolve_hosts(inventory, None) == ["e1", "e2"]
    assert resolve_hosts(inventory, "e2") == ["e2"]
    assert resolve_hosts(inventory, "e1,x1") == ["e1"]
    assert resolve_hosts(inventory, "x1") == []
    assert resolve_hosts(inventory, "all:!e1") == ["e2"]
    assert resolve_hosts(inventory, "nomatch") == []


def monitor_options(tmp_path: Path, **changes: Any) -> MonitorOptions:
    values: dict[str, Any] = {
        "settings": MonitorSettings(model="patchtst"),
        "project_dir": str(tmp_path / "project"),
        "state_dir": str(tmp_path / "state"),
        "activation_log": str(tmp_path / "log" / "canary.jsonl"),
        "check_log": str(tmp_path / "log" / "checks.jsonl"),
    }
    values.update(changes)
    return MonitorOptions(**values)


def run_monitor_loop(options: MonitorOptions) -> tuple[int, list[str]]:
    lines: list[str] = []
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    code = Monitor(options, out=lines.append).run()
    # The signal handlers the run installed are put back.
    assert {signum: signal.getsignal(signum) for signum in handlers} == handlers
    return code, lines


@pytest.mark.usefixtures("no_playbook_runs")
def test_a_project_without_playbooks_is_refused(tmp_path: Path, inventory: str) -> None:
    options = monitor_options(tmp_path, inventory=inventory)
    assert run_monitor_loop(options) == (
        2,
        [f"model-safety monitor: no playbooks/monitor_check.yml in {tmp_path / 'project'}"],
    )
    directory = project(tmp_path, playbooks=False)
    (directory / "playbooks" / "monitor_check.yml").write_text("---\n[]\n")
    assert run_monitor_loop(options) == (
        2,
        [f"model-safety monitor: no playbooks/monitor_record.yml in {directory}"],
    )
    (directory / "playbooks" / "monitor_record.yml").write_text("---\n[]\n")
    assert run_monitor_loop(options) == (
        2,
        [f"model-safety monitor: no playbooks/rollback.yml in {directory}"],
    )
    assert not (tmp_path / "state").exists()


@pytest.mark.usefixtures("no_playbook_runs")
@pytest.mark.parametrize("limit", ["x1", "nomatch"])
def test_no_engine_host_within_the_limit_is_refused(
    tmp_path: Path, inventory: str, limit: str
) -> None:
    project(tmp_path)
    options = monitor_options(tmp_path, inventory=inventory, limit=limit)
    assert run_monitor_loop(options) == (
        2,
        [f"model-safety monitor: no engine host in {inventory} matches --limit {limit}"],
    )
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "log" / "canary.jsonl").exists()


@pytest.mark.usefixtures("no_playbook_runs")
def test_a_second_monitor_on_a_locked_host_is_refused(tmp_path: Path, inventory: str) -> None:
    project(tmp_path)
    holder = HostLocks(str(tmp_path / "state"))
    holder.acquire(["e2"], "patchtst")
    try:
        code, lines = run_monitor_loop(monitor_options(tmp_path, inventory=inventory))
        assert code == 2
        (line,) = lines
        assert line.startswith("model-safety monitor: another monitor already watches e2 (")
        assert json.dumps({"pid": os.getpid(), "model": "patchtst"})[:-1] in line
        assert line.endswith("refusing to run a second one")
        # Nothing was started: no state, no record; e1 was released with the refusal.
        assert sorted(os.listdir(tmp_path / "state")) == ["e1.lock", "e2.lock"]
        assert not (tmp_path / "log" / "canary.jsonl").exists()
        other = HostLocks(str(tmp_path / "state"))
        other.acquire(["e1"], "patchtst")
        other.release()
    finally:
        holder.release()


@pytest.mark.usefixtures("no_playbook_runs")
def test_an_unusable_saved_state_is_refused(tmp_path: Path, inventory: str) -> None:
    project(tmp_path)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "e1.patchtst.json").write_text("{torn")
    code, lines = run_monitor_loop(monitor_options(tmp_path, inventory=inventory, limit="e1"))
    assert code == 2
    (line,) = lines
    assert line.startswith(f"model-safety monitor: cannot read the monitor state {state_dir}")
    assert line.endswith("remove it to start a new window")
    HostLocks(str(state_dir)).acquire(["e1"], "patchtst")  # released after the refusal


# -- the webhook's payload format -------------------------------------------------------------


def test_the_default_format_is_the_monitors_own(captured: list[MonitorOptions]) -> None:
    assert main(["monitor", "--model", "patchtst"]) == 0
    assert captured[0].webhook_format == "monitor"


def test_the_format_comes_from_the_config_file_and_the_command_line_wins(
    tmp_path: Path, captured: list[MonitorOptions]
) -> None:
    config = config_file(tmp_path, "model: patchtst\nwebhook_format: alertmanager\n")
    assert main(["monitor", "--config", config]) == 0
    argv = ["monitor", "--config", config, "--webhook-format", "monitor"]
    assert main(argv) == 0
    assert [options.webhook_format for options in captured] == ["alertmanager", "monitor"]


def test_an_unknown_format_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], captured: list[MonitorOptions]
) -> None:
    assert main(["monitor", "--model", "patchtst", "--webhook-format", "slack"]) == 2
    assert "invalid choice: 'slack'" in capsys.readouterr().err
    config = config_file(tmp_path, "model: patchtst\nwebhook_format: slack\n")
    assert main(["monitor", "--config", config]) == 2
    assert "webhook_format: webhook format must be one of monitor, alertmanager" in (
        capsys.readouterr().err
    )
    assert captured == []
