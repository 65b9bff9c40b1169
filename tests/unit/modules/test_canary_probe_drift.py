"""The canary_probe module's feature_reference (through its main(), fake systemctl, the
reference engine's telemetry in the real redis-server): the reference read and the read's
feature values counted in its bins since the activation, which add up to the whole window's
counts; a reference file that cannot be used is data (drift_error), not a failed probe."""

from __future__ import annotations

import pytest

from model_safety.judgement.drift import load_reference
from model_safety.judgement.run import run_feature_reference
from tests.module_harness import fails, stream_id, succeeds
from tests.unit.modules.test_canary_probe import MODULE, probe  # noqa: F401 (the fixture)


def test_the_probe_counts_the_features_in_the_reference_bins(probe, telemetry, tmp_path):  # noqa: F811
    path = str(tmp_path / "feature_reference.json")
    assert (
        run_feature_reference(telemetry.url, telemetry.stream, out=path, count=300)["exit_code"]
        == 0
    )
    args = {**probe, "feature_reference": path}
    whole = succeeds(MODULE, args)  # the 200 events since the activation
    assert whole["drift_reference"] == {**load_reference(path), "path": path}
    assert whole["drift"]["events"] == 200
    assert all(sum(counts) == 200 for counts in whole["drift"]["counts"].values())
    later = succeeds(MODULE, {**args, "after": stream_id(199)})  # the newest 100 of them
    assert later["drift"]["events"] == 100
    for name, counts in whole["drift"]["counts"].items():
        earlier = [a - b for a, b in zip(counts, later["drift"]["counts"][name], strict=True)]
        assert min(earlier) >= 0 and sum(earlier) == 100


def test_a_bad_reference_file_is_data_for_the_monitor(probe, tmp_path) -> None:  # noqa: F811
    path = tmp_path / "feature_reference.json"
    path.write_text("not json")
    result = succeeds(MODULE, {**probe, "feature_reference": str(path)})
    assert result["drift_error"].startswith(f"feature reference {path}: not valid JSON")
    assert "drift" not in result and "drift_reference" not in result
    assert len(result["observations"]["rows"]) == 200


def test_without_a_reference_no_drift_is_measured(probe) -> None:  # noqa: F811
    result = succeeds(MODULE, probe)
    assert not {"drift", "drift_reference", "drift_error"} & set(result)


@pytest.mark.parametrize("path", ["feature_reference.json", "/var/lib/../etc/x.json", "//x"])
def test_a_reference_path_that_is_not_absolute_and_normalised_is_refused(
    probe,  # noqa: F811
    fake_systemd,
    path,
) -> None:
    result = fails(MODULE, {**probe, "feature_reference": path})
    assert result["msg"].startswith("feature_reference ")
    assert fake_systemd.calls() == []
