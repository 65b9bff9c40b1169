"""The gate's I/O against a real redis-server: read_window and the model-safety CLI.

Events are the reference engine's own (``ai_engine.Engine``, lab default: every model healthy,
patchtst in shadow mode, or a SIM_ fault), written with pipelined XADDs and explicit ids, so
the cutover times are under control. Every exit code of ``model-safety gate`` is proven here
as a real process: 0 PASS, 2 FAIL (blockers, too few events, malformed events, Redis down,
a timeout, a missing stream, an empty window, bad credentials), 3 COLLECTION.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from ai_engine.config import load_config
from ai_engine.engine import Engine
from model_safety.cutover import parse_cutover
from model_safety.redis_client import StreamError, connect
from model_safety.telemetry import stream as stream_module
from model_safety.telemetry.events import EventWindow
from model_safety.telemetry.stream import read_window
from tests.redis_server import RedisServer, free_port, start_server

BASE = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
BASE_MS = 1768046400000
STREAM = "quantum:stream:trade.intent"
STEP_MS = 100
HEALTHY: dict[str, str] = {}
SECRET = "pw-Zq8xV3-never-printed"
DESIGN_MODEL_KEYS = {
    "passed": bool,
    "shadow": bool,
    "n": int,
    "actions": dict,
    "conf_std": float,
    "p10": float,
    "p90": float,
    "agreement": float,
    "hard_disagree": float,
    "blockers": list,
}

_console = Path(sys.executable).with_name("model-safety")
CLI = [str(_console)] if _console.exists() else [sys.executable, "-m", "model_safety.cli"]


# --------------------------------------------------------------------------- helpers


@functools.cache
def engine_payloads(count: int, env: tuple[tuple[str, str], ...] = ()) -> tuple[str, ...]:
    """``count`` engine events (JSON), 100 ms apart from BASE; lab default + ``env``."""
    config = load_config({"ENGINE_SEED": "11", "PATCHTST_SHADOW_ONLY": "true", **dict(env)})
    engine = Engine(config)
    return tuple(
        engine.step(i * STEP_MS / 1000, BASE + timedelta(milliseconds=i * STEP_MS)).json
        for i in range(count)
    )


def add(
    redis_client: redis.Redis, stream: str, payloads: Sequence[str | None], first: int = 0
) -> list[str]:
    """XADD the payloads (None: an entry without a payload field) with ids at BASE + 100 ms
    steps from index ``first``; return the ids."""
    ids = []
    pipe = redis_client.pipeline(transaction=False)
    for offset, payload in enumerate(payloads):
        stream_id = f"{BASE_MS + (first + offset) * STEP_MS}-0"
        fields = {"payload": payload} if payload is not None else {"other": "x"}
        pipe.xadd(stream, fields, id=stream_id)
        ids.append(stream_id)
        if offset % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return ids


def iso(index: int) -> str:
    """The time of the event at ``index`` (see ``add``), ISO-8601 with Z."""
    moment = BASE + timedelta(milliseconds=index * STEP_MS)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def cli(
    *argv: str, url: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    """Run ``model-safety`` as a process; (exit code, stdout, stderr)."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MODEL_SAFETY_", "REDISCLI"))
    }
    full_env.update(env or {})
    args = [*CLI, *argv]
    if url is not None:
        args += ["--redis-url", url]
    done = subprocess.run(
        args, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120, check=False
    )
    return done.returncode, done.stdout, done.stderr


def gate_json(*argv: str, url: str | None = None, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("gate", "--json", "--no-report", *argv, url=url, **kwargs)
    assert out.count("\n") == 1, f"not one JSON line: {out!r} {err!r}"
    return code, json.loads(out)


# --------------------------------------------------------------------------- read_window


def test_read_window_pages_and_counts(redis_client: redis.Redis, redis_stream: str) -> None:
    ids = add(redis_client, redis_stream, engine_payloads(50))
    for page_size in (1, 7, 50, 2000):
        window = read_window(redis_client, redis_stream, count=None, page_size=page_size)
        assert (window.n, window.first_id, window.last_id) == (50, ids[0], ids[-1])
        newest = read_window(redis_client, redis_stream, count=20, page_size=page_size)
        assert (newest.n, newest.first_id, newest.last_id) == (20, ids[30], ids[-1])
        assert list(newest.stream_ms) == [int(i.split("-")[0]) for i in ids[30:]]
    assert (
        read_window(redis_client, redis_stream, count=50).n
        == read_window(redis_client, redis_stream, count=500).n
        == 50
    )


def test_read_window_cutovers(redis_client: redis.Redis, redis_stream: str) -> None:
    ids = add(redis_client, redis_stream, engine_payloads(40))
    after_id = read_window(redis_client, redis_stream, count=None, after=parse_cutover(ids[9]))
    assert (after_id.n, after_id.first_id) == (30, ids[10])
    # An ISO time equal to an event's time excludes it: only later events count.
    after_time = read_window(redis_client, redis_stream, count=None, after=parse_cutover(iso(9)))
    assert (after_time.n, after_time.first_id) == (30, ids[10])
    between = parse_cutover((BASE + timedelta(milliseconds=9 * STEP_MS + 50)).isoformat())
    assert read_window(redis_client, redis_stream, count=None, after=between).first_id == ids[10]
    both = read_window(
        redis_client, redis_stream, count=5, after=parse_cutover(ids[9]), page_size=2
    )
    assert (both.n, both.first_id, both.last_id) == (5, ids[35], ids[39])
    assert read_window(redis_client, redis_stream, count=None, after=parse_cutover(ids[-1])).n == 0
    assert read_window(redis_client, redis_stream, count=None, after=parse_cutover(iso(100))).n == 0


@pytest.mark.parametrize("count", [None, 45, 60])
def test_consolidating_pages_keeps_the_order(
    redis_client: redis.Redis, redis_stream: str, monkeypatch: pytest.MonkeyPatch, count: int | None
) -> None:
    payloads: list[str | None] = list(engine_payloads(60))
    payloads[3] = payloads[50] = "{broken"
    ids = add(redis_client, redis_stream, payloads)
    whole = read_window(redis_client, redis_stream, count=count, page_size=4)
    monkeypatch.setattr(stream_module, "CONSOLIDATE_ENTRIES", 7)
    merged = read_window(redis_client, redis_stream, count=count, page_size=4)
    assert (merged.n, merged.first_id, merged.last_id) == (whole.n, whole.first_id, whole.last_id)
    assert merged.first_id == ids[-(count or 60)]
    assert list(merged.stream_ms) == list(whole.stream_ms)
    assert list(merged.stream_ms) == sorted(merged.stream_ms)
    assert [m.stream_id for m in merged.malformed] == [m.stream_id for m in whole.malformed]
    for name, model in whole.models.items():
        assert list(merged.models[name].confidence[model.present]) == list(
            model.confidence[model.present]
        )


def test_read_window_malformed_and_missing_payload(
    redis_client: redis.Redis, redis_stream: str
) -> None:
    good = engine_payloads(5)
    ids = add(redis_client, redis_stream, [good[0], "{not json", None, good[1]])
    window = read_window(redis_client, redis_stream)
    assert (window.n, window.total) == (2, 4)
    assert [m.stream_id for m in window.malformed] == [ids[1], ids[2]]
    assert "payload" in window.malformed[1].reason


def test_read_window_with_decoded_responses(redis_server: RedisServer, redis_stream: str) -> None:
    decoded = redis_server.client(decode_responses=True)
    ids = add(decoded, redis_stream, engine_payloads(30))
    window = read_window(decoded, redis_stream, count=10, page_size=3)
    assert (window.n, window.first_id, window.last_id) == (10, ids[20], ids[29])
    decoded.close()


def test_read_window_errors(redis_client: redis.Redis, redis_stream: str) -> None:
    with pytest.raises(StreamError, match="does not exist"):
        read_window(redis_client, redis_stream)
    redis_client.set(redis_stream, "x")
    with pytest.raises(StreamError, match="is a string, not a stream"):
        read_window(redis_client, redis_stream)
    down = connect(f"redis://127.0.0.1:{free_port()}/0", {}, timeout=1)
    with pytest.raises(StreamError, match="unreachable"):
        read_window(down, redis_stream)


def test_read_window_leaves_the_connection_clean(
    redis_client: redis.Redis, redis_stream: str
) -> None:
    add(redis_client, redis_stream, engine_payloads(30))
    read_window(redis_client, redis_stream, count=25, page_size=4)
    # The pooled connection was released with no reply pending: the next command is answered.
    assert redis_client.ping() is True
    assert redis_client.xlen(redis_stream) == 30


def test_empty_stream_gives_an_empty_window(redis_client: redis.Redis, redis_stream: str) -> None:
    add(redis_client, redis_stream, engine_payloads(3))
    redis_client.xtrim(redis_stream, maxlen=0)
    window = read_window(redis_client, redis_stream)
    assert isinstance(window, EventWindow)
    assert (window.n, window.total, window.first_id) == (0, 0, None)


# --------------------------------------------------------------------------- exit codes


def test_gate_pass_exit_0_with_reports(redis_server, redis_client, redis_stream, tmp_path) -> None:
    add(redis_client, redis_stream, engine_payloads(300))
    report_dir = tmp_path / "reports"
    code, out, err = cli(
        "gate", "--stream", redis_stream, "--report-dir", str(report_dir), url=redis_server.url
    )
    assert code == 0, out + err
    assert out.startswith("QUALITY GATE PASS (mode canary, 300 events, 0 malformed")
    names = sorted(os.listdir(report_dir))
    assert [n.rsplit(".", 1)[1] for n in names] == ["json", "md"]
    markdown = (report_dir / names[1]).read_text()
    assert markdown.startswith("# MODE: CANARY\n")
    assert "## Verdict: PASS" in markdown
    assert json.loads((report_dir / names[0]).read_text())["verdict"] == "PASS"


def test_gate_fail_exit_2_names_the_model(redis_server, redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, engine_payloads(300, (("SIM_XGB", "constant"),)))
    code, result = gate_json("--stream", redis_stream, url=redis_server.url)
    assert code == 2
    assert result["verdict"] == "FAIL"
    assert result["models"]["xgb"]["passed"] is False
    assert any(b.startswith("xgb: ") for b in result["blockers"])
    assert result["models"]["lgbm"]["passed"] is True
    # Judging only a healthy model passes; judging the broken one fails.
    assert gate_json("--stream", redis_stream, "--model", "lgbm", url=redis_server.url)[0] == 0
    assert gate_json("--stream", redis_stream, "--model", "xgb", url=redis_server.url)[0] == 2


def test_collection_exit_3_even_with_blockers(redis_server, redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, engine_payloads(150, (("SIM_XGB", "buy_bias"),)))
    code, result = gate_json("--stream", redis_stream, "--mode", "collection", url=redis_server.url)
    assert code == 3
    assert (result["verdict"], result["mode"], result["event_count"]) == (
        "COLLECTION",
        "collection",
        150,
    )


def test_too_few_events_fail(redis_server, redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, engine_payloads(150))
    code, result = gate_json("--stream", redis_stream, url=redis_server.url)
    assert code == 2
    assert result["event_count"] == 150
    assert any("150" in b and "200" in b for b in result["blockers"])


def test_malformed_event_fails_and_is_named(redis_server, redis_client, redis_stream) -> None:
    payloads = list(engine_payloads(300))
    payloads[17] = payloads[17].replace('"side":"', '"side":"X', 1)
    ids = add(redis_client, redis_stream, payloads)
    code, result = gate_json("--stream", redis_stream, url=redis_server.url)
    assert code == 2
    assert result["malformed"] == 1
    assert any(ids[17] in b for b in result["blockers"])


def test_redis_down_fails(tmp_path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    code, result = gate_json("--timeout", "2", url=url)
    assert code == 2
    assert result["verdict"] == "FAIL"
    assert any("unreachable" in b for b in result["blockers"])
    assert result["source"] == {"redis": url, "stream": STREAM, "count": 500, "after": None}
    code, out, _ = cli("gate", "--report-dir", str(tmp_path), url=url)
    assert code == 2
    assert "QUALITY GATE FAIL" in out
    assert "unreachable" in out


def test_timeout_fails() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing ever answers
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        began = time.monotonic()
        code, result = gate_json("--timeout", "0.5", url=url)
    assert code == 2
    assert any("timed out" in b for b in result["blockers"])
    assert time.monotonic() - began < 20


def test_missing_stream_fails(redis_server, redis_stream) -> None:
    code, result = gate_json("--stream", redis_stream, url=redis_server.url)
    assert code == 2
    assert any("does not exist" in b for b in result["blockers"])


def test_wrong_type_fails(redis_server, redis_client, redis_stream) -> None:
    redis_client.hset(redis_stream, "a", "b")
    code, result = gate_json("--stream", redis_stream, url=redis_server.url)
    assert code == 2
    assert any("not a stream" in b for b in result["blockers"])


@pytest.mark.parametrize("path", ["/abc", "/0/0"])
def test_a_db_path_that_is_no_number_fails(
    redis_server, redis_client, redis_stream, path: str
) -> None:
    # db 0 holds a passing window: redis-py would read it for /abc (and db 0 for /0/0).
    add(redis_client, redis_stream, engine_payloads(300))
    url = redis_server.url.removesuffix("/0") + path
    code, result = gate_json("--stream", redis_stream, url=url)
    assert code == 2
    assert (result["verdict"], result["event_count"]) == ("FAIL", 0)
    assert any(
        f"the path must be a db number such as /0, not {path!r}" in b for b in result["blockers"]
    )


def test_empty_window_fails(redis_server, redis_client, redis_stream) -> None:
    ids = add(redis_client, redis_stream, engine_payloads(300))
    code, result = gate_json("--stream", redis_stream, "--after", ids[-1], url=redis_server.url)
    assert code == 2
    assert result["event_count"] == 0
    assert result["blockers"]
    code, _ = gate_json(
        "--stream", redis_stream, "--mode", "collection", "--after", ids[-1], url=redis_server.url
    )
    assert code == 3  # collection never promotes, whatever it saw


# --------------------------------------------------------------------------- window options


@pytest.fixture
def cutover_stream(redis_client: redis.Redis, redis_stream: str) -> tuple[str, list[str]]:
    """300 events with an inactive xgb, then 300 healthy ones, 100 ms apart."""
    bad = engine_payloads(300, (("SIM_XGB", "inactive"),))
    ids = add(redis_client, redis_stream, bad) + add(
        redis_client, redis_stream, engine_payloads(300), first=300
    )
    return redis_stream, ids


def test_after_iso_time(redis_server, cutover_stream) -> None:
    redis_stream, ids = cutover_stream
    assert gate_json("--stream", redis_stream, "--count", "600", url=redis_server.url)[0] == 2
    code, result = gate_json("--stream", redis_stream, "--after", iso(299), url=redis_server.url)
    assert (code, result["event_count"]) == (0, 300)
    assert result["window"]["first_id"] == ids[300]
    offset = (BASE + timedelta(milliseconds=299 * STEP_MS)).astimezone().isoformat()
    assert (
        gate_json("--stream", redis_stream, "--after", offset, url=redis_server.url)[1][
            "event_count"
        ]
        == 300
    )
    # One event earlier includes the last broken one.
    assert (
        gate_json("--stream", redis_stream, "--after", iso(298), url=redis_server.url)[1][
            "event_count"
        ]
        == 301
    )


def test_after_stream_id(redis_server, cutover_stream) -> None:
    redis_stream, ids = cutover_stream
    code, result = gate_json("--stream", redis_stream, "--after", ids[299], url=redis_server.url)
    assert (code, result["event_count"]) == (0, 300)
    code, result = gate_json("--stream", redis_stream, "--after", ids[99], url=redis_server.url)
    assert (code, result["event_count"]) == (2, 500)
    code, result = gate_json(
        "--stream", redis_stream, "--after", ids[99], "--count", "250", url=redis_server.url
    )
    assert (code, result["event_count"], result["window"]["first_id"]) == (0, 250, ids[350])


def test_count_takes_the_newest(redis_server, redis_client, redis_stream) -> None:
    payloads: list[str | None] = ["{broken", *engine_payloads(300)]
    ids = add(redis_client, redis_stream, payloads)
    code, result = gate_json("--stream", redis_stream, "--count", "300", url=redis_server.url)
    assert (code, result["event_count"], result["malformed"]) == (0, 300, 0)
    code, result = gate_json("--stream", redis_stream, "--count", "301", url=redis_server.url)
    assert (code, result["malformed"]) == (2, 1)
    assert any(ids[0] in b for b in result["blockers"])
    # The default is the newest 500.
    assert gate_json("--stream", redis_stream, url=redis_server.url)[1]["malformed"] == 1


def test_json_shape(redis_server, redis_client, redis_stream) -> None:
    add(redis_client, redis_stream, engine_payloads(250))
    code, result = gate_json("--stream", redis_stream, url=redis_server.url)
    assert code == 0
    for name, kind in {
        "verdict": str,
        "mode": str,
        "event_count": int,
        "malformed": int,
        "blockers": list,
        "models": dict,
    }.items():
        assert isinstance(result[name], kind), name
    assert set(result["models"]) == {"xgb", "lgbm", "nhits", "patchtst"}
    for name, model in result["models"].items():
        for field, kind in DESIGN_MODEL_KEYS.items():
            assert isinstance(model[field], kind), (name, field)
        assert set(model["actions"]) == {"BUY", "SELL", "HOLD"}
        assert abs(sum(model["actions"].values()) - 1) < 1e-9
        for field in ("agreement", "hard_disagree", "p10", "p90"):
            assert 0 <= model[field] <= 1
    assert result["models"]["patchtst"]["shadow"] is True
    assert result["source"] == {
        "redis": redis_server.url,
        "stream": redis_stream,
        "count": 500,
        "after": None,
    }


def test_large_window_is_read_in_pages(redis_server, redis_client, redis_stream) -> None:
    pool = engine_payloads(2000)
    add(redis_client, redis_stream, [pool[i % len(pool)] for i in range(100_000)])
    redis_client.config_resetstat()
    code, result = gate_json("--stream", redis_stream, "--count", "100000", url=redis_server.url)
    assert (code, result["event_count"], result["malformed"]) == (0, 100_000, 0)
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_xrange"]["calls"] == 50  # pages of 2000, one past the end is not asked
    redis_client.config_resetstat()
    code, result = gate_json("--stream", redis_stream, "--count", "60000", url=redis_server.url)
    assert (code, result["event_count"]) == (0, 60_000)
    assert result["window"]["first_id"] == f"{BASE_MS + 40_000 * STEP_MS}-0"
    assert redis_client.info("commandstats")["cmdstat_xrevrange"]["calls"] == 1 + 30


# --------------------------------------------------------------------------- credentials


def answers_ping(probe: redis.Redis, process: subprocess.Popen[bytes]) -> bool:
    """Whether the server ``process`` started answers ``probe``'s PING within 10 s."""
    deadline = time.monotonic() + 10
    while process.poll() is None and time.monotonic() < deadline:
        try:
            return bool(probe.ping())
        except redis.ConnectionError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server that requires SECRET; yields its URL without the password."""
    server = start_server(tmp_path_factory.mktemp("redis-auth"), "--requirepass", SECRET)
    probe = server.client(password=SECRET, socket_connect_timeout=1)
    try:
        assert answers_ping(probe, server.process), "secured redis-server did not start"
        add(probe, "it:auth", engine_payloads(300))
        yield server.url
    finally:
        probe.close()
        server.process.terminate()
        server.process.wait(timeout=10)


def _assert_secret_absent(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text
        assert SECRET.replace("-", "%2D") not in text


def test_password_from_url_is_never_printed(secured_server: str, tmp_path: Path) -> None:
    url = secured_server.replace("redis://", f"redis://:{SECRET}@")
    report_dir = tmp_path / "reports"
    for extra in ([], ["--json"]):
        code, out, err = cli(
            "gate", "--stream", "it:auth", "--report-dir", str(report_dir), *extra, url=url
        )
        assert code == 0, out + err
        _assert_secret_absent(out, err)
    shown = json.loads(out)
    assert shown["source"]["redis"] == secured_server.replace("redis://", "redis://:***@")
    for path in report_dir.iterdir():
        _assert_secret_absent(path.read_text())


@pytest.mark.parametrize("variable", ["MODEL_SAFETY_REDIS_PASSWORD", "REDISCLI_AUTH"])
def test_password_from_env(secured_server: str, variable: str) -> None:
    code, out, err = cli(
        "gate", "--json", "--no-report", "--stream", "it:auth", env={
            "MODEL_SAFETY_REDIS_URL": secured_server, variable: SECRET}
    )  # fmt: skip
    assert code == 0, out + err
    assert json.loads(out)["source"]["redis"] == secured_server
    _assert_secret_absent(out, err)


@pytest.mark.parametrize(
    ("password", "env"),
    [
        (None, {}),
        ("wrong-" + SECRET, {}),
        (None, {"REDISCLI_AUTH": "wrong-" + SECRET}),
    ],
)
def test_bad_credentials_fail_without_leaking(secured_server, tmp_path, password, env) -> None:
    url = secured_server
    if password:
        url = secured_server.replace("redis://", f"redis://:{password}@")
    report_dir = tmp_path / "reports"
    code, out, err = cli(
        "gate", "--json", "--stream", "it:auth", "--report-dir", str(report_dir), url=url, env=env
    )
    assert code == 2
    result = json.loads(out)
    assert result["verdict"] == "FAIL"
    assert any("auth" in b.lower() or "credentials" in b for b in result["blockers"]), result
    _assert_secret_absent(out, err, *(p.read_text() for p in report_dir.iterdir()))


# --------------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=True, timeout=60)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A TLS-only redis-server (own CA, certificate for 127.0.0.1) requiring SECRET; yields
    its rediss:// URL without a password, and the CA file."""
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        pytest.skip("redis-server and openssl are needed for the TLS test")
    workdir = tmp_path_factory.mktemp("redis-tls")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=model-safety test CA", cwd=workdir)  # fmt: skip
    _openssl("req", *curve, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=workdir)  # fmt: skip
    (workdir / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
             cwd=workdir)  # fmt: skip
    port = free_port()
    argv = [
        binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
        "--tls-cert-file", str(workdir / "server.crt"),
        "--tls-key-file", str(workdir / "server.key"),
        "--tls-ca-cert-file", str(workdir / "ca.crt"), "--tls-auth-clients", "no",
        "--requirepass", SECRET, "--save", "", "--appendonly", "no", "--dir", str(workdir),
        "--logfile", str(workdir / "log"),
    ]  # fmt: skip
    process = subprocess.Popen(argv)
    url = f"rediss://127.0.0.1:{port}/0"
    probe = redis.Redis.from_url(
        url, password=SECRET, ssl_ca_certs=str(workdir / "ca.crt"), socket_connect_timeout=1
    )
    try:
        if not answers_ping(probe, process):
            pytest.skip("this redis-server does not start with TLS")
        add(probe, "it:tls", engine_payloads(300))
        yield url, workdir / "ca.crt"
    finally:
        probe.close()
        process.terminate()
        process.wait(timeout=10)


def test_tls_with_a_verified_certificate(tls_server: tuple[str, Path]) -> None:
    url, ca = tls_server
    verified = f"{url}?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    code, out, err = cli(
        "gate", "--json", "--no-report", "--stream", "it:tls", url=verified,
        env={"MODEL_SAFETY_REDIS_PASSWORD": SECRET},
    )  # fmt: skip
    assert code == 0, out + err
    assert json.loads(out)["source"]["redis"].startswith("rediss://127.0.0.1:")
    _assert_secret_absent(out, err)


def test_tls_with_an_unknown_certificate_fails(tls_server: tuple[str, Path]) -> None:
    url, _ca = tls_server
    code, result = gate_json(
        "--stream", "it:tls", "--timeout", "3", url=url, env={"REDISCLI_AUTH": SECRET}
    )
    assert code == 2
    assert any("certificate" in b.lower() or "ssl" in b.lower() for b in result["blockers"])
