"""The batches of a fleet rollout (model_safety.activation.batches) and their filter: every
form a play's serial is given, and every form refused before any host is contacted."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from model_safety.activation.batches import RolloutBatchesError, rollout_batches
from tests import filter_plugin


@pytest.mark.parametrize(
    ("value", "batches"),
    [
        (1, [1]),
        (3, [3]),
        (250, [250]),
        ("2", [2]),
        ("25%", ["25%"]),
        ("1%", ["1%"]),
        ("100%", ["100%"]),
        ("007", [7]),
        ("050%", ["50%"]),
        ([1, "25%", "100%"], [1, "25%", "100%"]),
        ([1, 2, 3], [1, 2, 3]),
        ([1, "40%", "100%"], [1, "40%", "100%"]),
        (["1", "2"], [1, 2]),
        ([5], [5]),
    ],
)
def test_accepted_batches_are_what_serial_takes(value, batches) -> None:
    assert rollout_batches(value, "canary_serial") == batches


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "canary_serial: 0 hosts per batch; at least 1 is needed"),
        ("0", "canary_serial: '0' hosts per batch; at least 1 is needed"),
        (-2, "canary_serial: -2 hosts per batch; at least 1 is needed"),
        ("-2", "canary_serial: '-2' is not a number of hosts"),
        ("abc", "canary_serial: 'abc' is not a number of hosts"),
        ("", "canary_serial: '' is not a number of hosts"),
        (" 2", "canary_serial: ' 2' is not a number of hosts"),
        ("2\n", "canary_serial: '2\\n' is not a number of hosts"),
        ("0%", "canary_serial: '0%' is not a percentage from 1% to 100%"),
        ("150%", "canary_serial: '150%' is not a percentage from 1% to 100%"),
        ("12.5%", "canary_serial: '12.5%' is not a number of hosts"),
        ("%", "canary_serial: '%' is not a number of hosts"),
        (True, "canary_serial: True is not a number of hosts"),
        (False, "canary_serial: False is not a number of hosts"),
        (1.0, "canary_serial: 1.0 is not a number of hosts"),
        (2.5, "canary_serial: 2.5 is not a number of hosts"),
        (None, "canary_serial: None is not a number of hosts"),
        ({"batch": 1}, "canary_serial: {'batch': 1} is not a number of hosts"),
        ("[1, 2]", "canary_serial: '[1, 2]' is not a number of hosts"),
        ([], "canary_serial: an empty list has no batch"),
        ([1, 0], "canary_serial (batch 2): 0 hosts per batch; at least 1 is needed"),
        ([1, [2]], "canary_serial (batch 2): [2] is not a number of hosts (1 or more) or a"),
        ([[1, 2]], "canary_serial (batch 1): [1, 2] is not a number of hosts (1 or more) or a"),
        ([1, "150%"], "canary_serial (batch 2): '150%' is not a percentage from 1% to 100%"),
        ([1, True], "canary_serial (batch 2): True is not a number of hosts"),
        ([1, 2.0], "canary_serial (batch 2): 2.0 is not a number of hosts"),
        ([None], "canary_serial (batch 1): None is not a number of hosts"),
    ],
)
def test_refused_batches_name_the_variable_and_the_value(value, reason) -> None:
    with pytest.raises(RolloutBatchesError) as refused:
        rollout_batches(value, "canary_serial")
    assert str(refused.value).startswith(reason)


def test_a_refusal_shows_the_forms_an_operator_can_give() -> None:
    with pytest.raises(RolloutBatchesError) as refused:
        rollout_batches("abc", "shadow_serial")
    assert str(refused.value) == (
        "shadow_serial: 'abc' is not a number of hosts (1 or more) or a percentage of the hosts "
        '("1%" to "100%"), or a list of those, one per batch '
        """(e.g. -e '{"shadow_serial": [1, "25%", "100%"]}')"""
    )


def test_the_filter_refuses_with_the_same_message() -> None:
    batches = filter_plugin.filters("rollout_batches")["model_safety_rollout_batches"]
    assert batches([1, "25%", "100%"], "canary_serial") == [1, "25%", "100%"]
    with pytest.raises(AnsibleFilterError, match=r"^promote_serial: an empty list has no batch"):
        batches([], "promote_serial")
