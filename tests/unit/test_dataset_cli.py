"""Unit tests of ``model-safety build-patchtst-dataset`` (model_safety.dataset.cli) through
``model_safety.cli.main``: exit codes, what is printed, what is written."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_safety import cli
from model_safety.dataset import cli as dataset_cli
from tests.unit.test_dataset import SCHEMA, candle_rows, make_db, walk


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["build-patchtst-dataset", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    rows = candle_rows("BTCUSDT", walk(40, 1)) + candle_rows("ETHUSDT", walk(40, 2))
    return make_db(tmp_path / "ohlcv.db", rows)


def test_register_adds_the_subcommand_with_its_defaults() -> None:
    parser = argparse.ArgumentParser(prog="model-safety")
    dataset_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["build-patchtst-dataset"])
    assert args.handler is dataset_cli._cmd_build
    assert (args.db, args.lookback, args.horizon, args.threshold) == (
        "/opt/quantum/data/quantum_trader.db",
        64,
        "4h",
        0.0,
    )
    assert (args.out_dir, args.report_dir, args.dry_run) == ("data", "reports/safety", False)
    assert (args.symbols, args.start, args.end, args.validation_fraction) == (None, None, None, 0.2)


def test_registering_imports_no_numpy() -> None:
    code = (
        "import argparse, sys; from model_safety.dataset import cli as dataset_cli; "
        "dataset_cli.register(argparse.ArgumentParser().add_subparsers()); "
        "sys.exit('numpy' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_build_exits_0_and_says_what_it_wrote(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db: str
) -> None:
    out_dir, report_dir = tmp_path / "data", tmp_path / "reports"
    argv = ["--db", db, "--lookback", "4", "--horizon", "1h", "--symbols", "ETHUSDT"]
    argv += ["--out-dir", str(out_dir), "--report-dir", str(report_dir)]
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, "")
    assert out.startswith("PATCHTST DATASET 20 windows (lookback 4, 7 features, horizon 1h = 1")
    assert "  ETHUSDT  40 candles, gaps 0 (0 missing candles), 20 windows, WIN " in out
    (npz,) = os.listdir(out_dir)
    (report,) = os.listdir(report_dir)
    assert f"dataset: {out_dir / npz}\n" in out
    assert out.endswith(f"report: {report_dir / report}\n")
    assert npz.startswith("patchtst_sequences_") and npz.endswith("Z.npz")


def test_a_dry_run_exits_0_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db: str
) -> None:
    argv = ["--db", db, "--lookback", "4", "--horizon", "1h", "--dry-run"]
    argv += ["--out-dir", str(tmp_path / "data"), "--report-dir", str(tmp_path / "reports")]
    code, out, _err = run_cli(capsys, *argv)
    assert code == 0
    assert out.startswith("DRY RUN, nothing written: PATCHTST DATASET 40 windows")
    assert "dataset:" not in out
    assert os.listdir(tmp_path) == ["ohlcv.db"]


def test_a_class_balance_warning_is_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rising = [100.0 * 1.001**i for i in range(40)]
    db = make_db(tmp_path / "ohlcv.db", candle_rows("BTCUSDT", rising))
    code, out, _err = run_cli(capsys, "--db", db, "--lookback", "4", "--dry-run")
    assert code == 0
    assert "  warning: class balance: WIN is 100.0% of the 17 windows (> 70%)" in out


@pytest.mark.parametrize(
    ("schema", "argv", "message"),
    [
        (SCHEMA.replace("ohlcv", "candles"), [], "model-safety: no table ohlcv in the database"),
        (SCHEMA, ["--horizon", "4x"], "model-safety: bad --horizon '4x'"),
        (SCHEMA, ["--lookback", "1"], "model-safety: --lookback must be at least 2"),
        (SCHEMA, ["--symbols", "XRPUSDT"], "model-safety: too little history: no candles"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    schema: str,
    argv: list[str],
    message: str,
) -> None:
    rows = candle_rows("BTCUSDT", walk(40)) if "ohlcv" in schema else []
    db = make_db(tmp_path / "c.db", rows, schema)
    out_dir = tmp_path / "data"
    code, out, err = run_cli(capsys, "--db", db, "--out-dir", str(out_dir), *argv)
    assert (code, out) == (2, "")
    assert err.startswith(message)
    assert err.count("\n") == 1
    assert not out_dir.exists()


def test_an_unwritable_output_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output directory should be")
    argv = ["--db", db, "--lookback", "4", "--horizon", "1h", "--out-dir", str(blocker / "x")]
    code, _out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("model-safety: cannot write the dataset or its report: ")


def test_progress_is_printed_once_the_build_has_run_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([100.0, 100.5, 101.2, 101.4, 101.6, 102.3])
    monkeypatch.setattr(dataset_cli.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    printer = dataset_cli._ProgressPrinter(stream)
    printer("read", 65536, 0)  # 0.5 s: too early
    printer("read", 131072, 0)  # 1.2 s
    printer("windows", 10, 40)  # a new stage: printed at once
    printer("windows", 20, 40)  # 0.2 s later: not yet
    printer("write", 0, 2_000_000_000)  # a new stage
    assert stream.getvalue().splitlines() == [
        "build-patchtst-dataset: read 131072, 1 s",
        "build-patchtst-dataset: windows 10/40 (25%), 1 s",
        "build-patchtst-dataset: writing the dataset (2.00 GB of X), 2 s",
    ]


def test_a_bad_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(capsys, "--lookback", "many")
    assert code == 2
    assert "argument --lookback: not a positive integer: 'many'" in err
