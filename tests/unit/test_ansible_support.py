"""Unit tests of the Redis secret masking the modules share (model_safety.ansible_support), on
a real AnsibleModule; the modules themselves under ansible-playbook -vvv:
tests/integration/test_module_secrets.py."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from model_safety.ansible_support import COMMON_ARGUMENT_SPEC, mask_redis_password

SECRET = "s3cr3t-pw"
SPEC = {"redis_url": COMMON_ARGUMENT_SPEC["redis_url"], "count": {"type": "int"}}


@pytest.fixture
def module_with(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AnsibleModule]]:
    """Make an AnsibleModule of SPEC from task arguments (they stay patched in until the test
    ends: the module reads them again when it fails)."""
    monkeypatch.delenv("MODEL_SAFETY_REDIS_PASSWORD", raising=False)
    monkeypatch.delenv("REDISCLI_AUTH", raising=False)
    with contextlib.ExitStack() as stack:

        def make(**args: Any) -> AnsibleModule:
            stack.enter_context(patch_module_args(args))
            return AnsibleModule(argument_spec=SPEC)

        yield make


def failure(capsys: pytest.CaptureFixture[str], call: Callable[[], object]) -> dict[str, Any]:
    """The result a module printed when ``call`` failed it."""
    with pytest.raises(SystemExit):
        call()
    out = capsys.readouterr().out
    assert SECRET not in out
    return json.loads(out)


def test_a_failed_validation_never_shows_the_url(capsys, module_with) -> None:
    # Ansible fails the module in its constructor, before any code of the module runs.
    result = failure(capsys, lambda: module_with(redis_url=f"redis://:{SECRET}@h:1/0", count="x"))
    assert result["invocation"]["module_args"]["redis_url"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        (f"redis://:{SECRET}@h:1/0", {SECRET}),
        ("redis://:p%40ss@h:1/0", {"p%40ss", "p@ss"}),
        ("redis://h:1/0?password=qpw&db=1", {"qpw"}),
        ("redis://127.0.0.1:6379/0", set()),
    ],
)
def test_only_the_secrets_stay_masked(module_with, url: str, secrets: set[str]) -> None:
    module = module_with(redis_url=url)
    assert url in module.no_log_values
    mask_redis_password(module, url)
    # The URL itself is no longer masked whole: results can name it, redacted.
    assert module.no_log_values == secrets


def test_the_default_url_is_not_masked(module_with) -> None:
    module = module_with()
    assert module.params["redis_url"] in module.no_log_values
    mask_redis_password(module, module.params["redis_url"])
    assert module.no_log_values == set()


def test_the_password_variables_are_masked(module_with, monkeypatch) -> None:
    module = module_with(redis_url="redis://h:1/0")
    monkeypatch.setenv("REDISCLI_AUTH", "envpw")
    mask_redis_password(module, "redis://h:1/0")
    assert module.no_log_values == {"envpw"}


def test_an_unparsable_url_stays_masked_whole(capsys, module_with) -> None:
    url = f"redis://:{SECRET}@[::1/0"
    module = module_with(redis_url=url)
    result = failure(capsys, lambda: mask_redis_password(module, url))
    assert result["msg"] == "invalid redis_url: Invalid IPv6 URL"
    assert result["invocation"]["module_args"]["redis_url"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
