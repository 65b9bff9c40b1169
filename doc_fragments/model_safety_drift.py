"""Documentation of the feature-drift options of quality_gate and feature_sanity, one text for
both (ansible_support.DRIFT_ARGUMENT_SPEC)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  feature_reference:
    description:
      - A feature reference file on the target (a normalised absolute path), written by
        C(model-safety feature-reference --out PATH) from a known-good window, with each
        feature's quantile bins and shares.
      - Each feature's PSI between it and the window is judged, a warning above
        C(psi_warn) (0.1), a blocker above C(psi_block) (0.25), not decided with fewer than
        C(psi_min_events) (200) values in the window (also a blocker, the check was asked
        for); a reference feature that no event of the window carries blocks.
      - A reference that cannot be used (missing, unreadable, not JSON, another format or
        version, bad values) is a blocker naming the file and why (fail-closed).
      - Not with O(feature_reference_events). Without either, drift is not judged
        (the C(status) of RV(drift) is V(not_judged)).
    type: path
  feature_reference_events:
    description:
      - The reference is the newest N (1 to 100000) events up to the cutover (O(after), or the
        current start where the module gates since it), the window before this start, for
        example the shadow run's. Fewer than C(psi_min_events) values of a feature there is a
        blocker.
      - Not with O(feature_reference).
    type: int
"""
