"""What the engine MUST run, given its unit's files: the model configuration its environment
sets, and how what a start logged differs from it.

The environment is what systemd hands the engine: the unit's ``Environment=`` assignments
(unit file and drop-ins, as ``systemctl show`` reports them), overridden by the
``EnvironmentFile=`` files in order (systemd's rule: file values win). The engine reads
(lab/engine/README.md, "Model roles and canary"):

* ``<MODEL>_SHADOW_ONLY``: true/false, 1/0, yes/no (any case); one naming no configured model
  is an error, and so is making every model shadow-only;
* ``QSC_MODEL_WEIGHTS``: ``m:w,...`` replacing the baseline weights;
* ``QSC_CANARY_MODEL``: a configured model that is not shadow-only;
* ``QSC_CANARY_WEIGHT``: in (0, 1), equal to the canary's effective weight within 1e-9, an
  error without ``QSC_CANARY_MODEL``;
* ``QSC_CANARY_CONF_CAP``: in (0, 1], the highest confidence the canary votes and publishes
  with (its ``[OK]`` line ends ``conf_cap=<cap>``), an error without ``QSC_CANARY_MODEL``.

As in the engine, values are stripped and an empty value counts as unset. Whatever the engine
would refuse raises :class:`EngineConfigError` (fail closed: no expectation, no proof).

Only the keys of the model configuration (``*_SHADOW_ONLY``, ``QSC_*``, ``*_MODEL_PATH``) are
ever returned; the rest of the environment may hold secrets. Standard library only (runs on the
target through AnsiballZ); commands are argv lists run by ``run(argv) -> (rc, stdout, stderr)``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..redaction import is_secret_name
from .commands import CommandError, EngineStateError, Runner, run_checked
from .envfile import HIDDEN, EnvFileError, env_values, validate_key
from .validation import validate_unit
from .weights import WeightsError, parse_weights, validate_model_name, weights_differences

SHADOW_SUFFIX = "_SHADOW_ONLY"
WEIGHTS_KEY = "QSC_MODEL_WEIGHTS"
CANARY_MODEL_KEY = "QSC_CANARY_MODEL"
CANARY_WEIGHT_KEY = "QSC_CANARY_WEIGHT"
CONF_CAP_KEY = "QSC_CANARY_CONF_CAP"
# The engine's tolerances (lab/engine/ai_engine/config.py).
SUM_TOLERANCE = 1e-6
CANARY_WEIGHT_TOLERANCE = 1e-9
# How close a logged weight must be to the expected one: the journal shows percentages with
# four decimals, 5e-7 of a fraction at most.
LOGGED_WEIGHT_TOLERANCE = 1e-6

# The engine's number syntax: no nan/inf, no underscores.
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")
_GLOB_CHARS = "*?["
# systemctl show quotes an assignment holding whitespace or shell specials in double quotes,
# backslash-escaping " \ ` $ and writing control characters C-style.
_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "`": "`",
    "$": "$",
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_IGNORE_ERRORS = {"(ignore_errors=no)": False, "(ignore_errors=yes)": True}


class EngineConfigError(Exception):
    """A configuration the engine would refuse, or one that cannot be read for certain."""


# --------------------------------------------------------------------------- the environment


def is_model_config_key(key: str) -> bool:
    """True for the keys the engine's model configuration uses."""
    return key.startswith("QSC_") or key.endswith((SHADOW_SUFFIX, "_MODEL_PATH"))


def model_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The model-configuration keys of ``environment`` (sorted), values of keys whose name says
    they are secret shown as ``<hidden>``: safe to return and log."""
    return {
        key: HIDDEN if is_secret_name(key) else environment[key]
        for key in sorted(environment)
        if is_model_config_key(key)
    }


def merged_environment(
    unit_environment: Mapping[str, str], env_files: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """The environment systemd gives the engine: ``unit_environment`` (Environment=), then the
    assignments of each env file ``(path, text)`` in order, later values overriding earlier
    ones."""
    environment = dict(unit_environment)
    for path, text in env_files:
        try:
            values = env_values(text)
        except EnvFileError as exc:
            raise EngineConfigError(f"environment file {path}: {exc}") from None
        for key, value in values.items():
            # systemd unquotes and unescapes such values; what the engine gets is unsure.
            if is_model_config_key(key) and (value.lstrip()[:1] in ('"', "'") or "\\" in value):
                raise EngineConfigError(
                    f"environment file {path}: the value of {key} is quoted or holds a "
                    "backslash; systemd would not pass it on as written"
                )
        environment.update(values)
    return environment


def _value(environment: Mapping[str, str], key: str) -> str | None:
    """The engine's reading of ``key``: stripped, an empty value counts as unset."""
    value = environment.get(key)
    if value is None or not value.strip():
        return None
    return value.strip()


def parse_bool(key: str, value: str) -> bool:
    """true/false, 1/0 or yes/no (any case), as the engine reads them."""
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise EngineConfigError(f"{key} must be true/false, 1/0 or yes/no, got {value!r}")


def validate_baseline(baseline: object) -> dict[str, float]:
    """The configured models and their baseline weights, in order: valid names, each weight a
    number in (0, 1], the sum 1 within 1e-6 (as the engine checks its models file)."""
    if not isinstance(baseline, Mapping) or not baseline:
        raise EngineConfigError(
            f"baseline must be a non-empty mapping of model to weight: {baseline!r}"
        )
    weights: dict[str, float] = {}
    for name, weight in baseline.items():
        try:
            validate_model_name(name)
        except WeightsError as exc:
            raise EngineConfigError(f"baseline: {exc}") from None
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or not 0 < weight <= 1
        ):
            raise EngineConfigError(f"baseline weight of {name} must be in (0, 1]: {weight!r}")
        weights[name] = float(weight)
    total = math.fsum(weights.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise EngineConfigError(f"baseline weights must sum to 1 (within 1e-6), not {total!r}")
    return weights


def _canary(
    environment: Mapping[str, str], shadow: list[str], weights: Mapping[str, float]
) -> tuple[str | None, float | None]:
    model = _value(environment, CANARY_MODEL_KEY)
    raw_weight = _value(environment, CANARY_WEIGHT_KEY)
    if model is None:
        if raw_weight is not None:
            raise EngineConfigError(f"{CANARY_WEIGHT_KEY} is set without {CANARY_MODEL_KEY}")
        return None, None
    if model not in weights:
        raise EngineConfigError(f"{CANARY_MODEL_KEY} {model!r} is not a configured model")
    if model in shadow:
        raise EngineConfigError(f"canary model {model} is shadow-only")
    if raw_weight is not None:
        weight = float(raw_weight) if _NUMBER_RE.fullmatch(raw_weight) else math.nan
        if not 0 < weight < 1:
            raise EngineConfigError(f"{CANARY_WEIGHT_KEY} must be in (0, 1), got {raw_weight!r}")
        if abs(weight - weights[model]) > CANARY_WEIGHT_TOLERANCE:
            raise EngineConfigError(
                f"{CANARY_WEIGHT_KEY} {raw_weight} does not match the effective weight of "
                f"{model} ({weights[model]:.12g})"
            )
    return model, weights[model]


def _conf_cap(environment: Mapping[str, str], canary: str | None) -> float | None:
    raw_cap = _value(environment, CONF_CAP_KEY)
    if raw_cap is None:
        return None
    if canary is None:
        raise EngineConfigError(f"{CONF_CAP_KEY} is set without {CANARY_MODEL_KEY}")
    cap = float(raw_cap) if _NUMBER_RE.fullmatch(raw_cap) else math.nan
    if not 0 < cap <= 1:
        raise EngineConfigError(f"{CONF_CAP_KEY} must be in (0, 1], got {raw_cap!r}")
    return cap


def expected_from_environment(
    environment: Mapping[str, str], baseline: Mapping[str, float]
) -> dict[str, Any]:
    """The model configuration the engine runs with ``environment`` (as
    :func:`expected_config` returns it)."""
    models = validate_baseline(baseline)
    known = {f"{model.upper()}{SHADOW_SUFFIX}" for model in models}
    for key in sorted(environment):
        if key.endswith(SHADOW_SUFFIX) and key not in known:
            raise EngineConfigError(
                f"{key} names no configured model (models: {', '.join(models)})"
            )
    shadow = [
        model
        for model in models
        if (value := _value(environment, f"{model.upper()}{SHADOW_SUFFIX}")) is not None
        and parse_bool(f"{model.upper()}{SHADOW_SUFFIX}", value)
    ]
    if len(shadow) == len(models):
        raise EngineConfigError("every model is shadow-only: no model would vote")
    raw_weights = _value(environment, WEIGHTS_KEY)
    try:
        weights = models if raw_weights is None else parse_weights(raw_weights, list(models))
    except WeightsError as exc:
        raise EngineConfigError(str(exc)) from None
    canary, canary_weight = _canary(environment, shadow, weights)
    return {
        "voting": {model: weight for model, weight in weights.items() if model not in shadow},
        "shadow": {model: weight for model, weight in weights.items() if model in shadow},
        "weights": dict(weights),
        "canary": canary,
        "canary_weight": canary_weight,
        "canary_conf_cap": _conf_cap(environment, canary),
    }


def expected_config(
    env_file_text: str, unit_environment: Mapping[str, str], baseline: Mapping[str, float]
) -> dict[str, Any]:
    """What the engine MUST run given its env file and its unit's ``Environment=`` values.

    Returns ``voting`` and ``shadow`` (``{model: weight}``), ``weights`` (every model's
    effective weight: ``QSC_MODEL_WEIGHTS`` when set, else ``baseline``), ``canary`` (the
    model, or None), ``canary_weight`` (the canary's effective weight, or None) and
    ``canary_conf_cap`` (its confidence cap, or None). Raises
    :class:`EngineConfigError` on whatever the engine would refuse."""
    return expected_from_environment(
        merged_environment(unit_environment, [("(given as text)", env_file_text)]), baseline
    )


# --------------------------------------------------------------------------- the proof


def _canary_differences(logged: object, expected: Mapping[str, Any]) -> list[str]:
    model = expected["canary"]
    if logged is None:
        return [] if model is None else [f"canary: the files set {model}, no [CANARY] line"]
    if model is None:
        return [f"canary: none in the files, the engine logged {logged!r}"]
    if not isinstance(logged, Mapping) or set(logged) != {"model", "weight", "weights"}:
        return [f"canary: malformed {logged!r}"]
    problems = []
    if logged["model"] != model:
        problems.append(f"canary: the engine runs {logged['model']!r}, the files set {model}")
    weight = logged["weight"]
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or abs(weight - expected["canary_weight"]) > LOGGED_WEIGHT_TOLERANCE
    ):
        problems.append(f"canary weight: {weight!r} != {expected['canary_weight']!r}")
    problems += [
        f"canary weights {problem}"
        for problem in weights_differences(
            logged["weights"], expected["weights"], LOGGED_WEIGHT_TOLERANCE
        )
    ]
    return problems


def config_differences(startup: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Every way the start-up report ``startup`` (a ``StartupReport.as_dict()``: ``voting``,
    ``shadow``, ``canary`` {model, weight, weights}) differs from ``expected``
    (:func:`expected_config`); weights match within 1e-6. Empty when the engine runs the
    configuration of its files."""
    if not isinstance(startup, Mapping):
        return [f"the start-up report is not a mapping: {startup!r}"]
    problems = []
    for role in ("voting", "shadow"):
        problems += [
            f"{role} {problem}"
            for problem in weights_differences(
                startup.get(role), expected[role], LOGGED_WEIGHT_TOLERANCE
            )
        ]
    return (
        problems
        + _canary_differences(startup.get("canary"), expected)
        + conf_cap_differences(startup.get("conf_caps") or {}, expected)
    )


def conf_cap_differences(logged: object, expected: Mapping[str, Any]) -> list[str]:
    """How the confidence caps the start logged (``{model: cap}``) differ from the files':
    the canary's ``canary_conf_cap``, no other model's."""
    cap = expected.get("canary_conf_cap")
    wanted = {} if cap is None else {expected["canary"]: cap}
    if not isinstance(logged, Mapping):
        return [f"conf_cap: malformed {logged!r}"]
    problems = []
    for model in sorted(set(logged) | set(wanted)):
        shown, asked = logged.get(model), wanted.get(model)
        number = isinstance(shown, int | float) and not isinstance(shown, bool)
        if asked is None or not number or abs(shown - asked) > LOGGED_WEIGHT_TOLERANCE:
            problems.append(
                f"conf_cap of {model}: the engine logged {shown if shown is not None else 'none'}"
                f", the files set {asked if asked is not None else 'none'}"
            )
    return problems


# --------------------------------------------------------------------------- reading the host


def _unquote(text: str, start: int) -> tuple[str, int]:
    """The double-quoted word of ``text`` opening at ``start``, and the index after it."""
    word = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(word), index + 1
        if char == "\\":
            escaped = text[index + 1 : index + 2]
            if escaped == "x" and len(text) >= index + 4:
                try:
                    word.append(chr(int(text[index + 2 : index + 4], 16)))
                except ValueError:
                    raise EngineConfigError(f"bad \\x escape in {text!r}") from None
                index += 4
                continue
            if escaped not in _ESCAPES:
                raise EngineConfigError(f"unknown escape \\{escaped} in {text!r}")
            word.append(_ESCAPES[escaped])
            index += 2
            continue
        word.append(char)
        index += 1
    raise EngineConfigError(f"unterminated quote in {text!r}")


def split_environment_property(value: str) -> list[str]:
    """The assignments of an ``Environment=`` property as ``systemctl show`` prints it: words
    separated by spaces, a word holding whitespace or shell specials in double quotes."""
    words = []
    index = 0
    while index < len(value):
        if value[index] == " ":
            index += 1
            continue
        if value[index] == '"':
            word, index = _unquote(value, index)
            if value[index : index + 1] not in ("", " "):
                raise EngineConfigError(f"text after a closing quote in {value!r}")
        else:
            end = value.find(" ", index)
            end = len(value) if end < 0 else end
            word = value[index:end]
            if '"' in word or "\\" in word:
                raise EngineConfigError(f"a quote or backslash in an unquoted word of {value!r}")
            index = end
        words.append(word)
    return words


def parse_environment_property(value: str) -> dict[str, str]:
    """``{KEY: value}`` of an ``Environment=`` property; a later assignment wins."""
    environment = {}
    for word in split_environment_property(value):
        key, sep, assigned = word.partition("=")
        try:
            validate_key(key)
        except EnvFileError as exc:
            raise EngineConfigError(f"Environment: {exc}") from None
        if not sep:
            raise EngineConfigError(f"Environment: {key} has no '='")
        environment[key] = assigned
    return environment


def parse_environment_file_entry(value: str) -> dict[str, Any]:
    """``{"path", "ignore_errors"}`` of one ``EnvironmentFiles=`` line's value,
    ``<path> (ignore_errors=no)``."""
    path, sep, flag = value.rpartition(" ")
    if not sep or flag not in _IGNORE_ERRORS:
        raise EngineConfigError(f"EnvironmentFiles: unexpected entry {value!r}")
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise EngineConfigError(f"EnvironmentFiles: not a normalised absolute path: {path!r}")
    if any(char in path for char in _GLOB_CHARS):
        raise EngineConfigError(f"EnvironmentFiles: a glob is not supported: {path!r}")
    return {"path": path, "ignore_errors": _IGNORE_ERRORS[flag]}


def parse_unit_environment(show_output: str) -> dict[str, Any]:
    """``{"environment", "env_files"}`` from ``systemctl show --property=Environment,
    EnvironmentFiles`` output (one ``EnvironmentFiles=`` line per file, none when empty)."""
    environment: dict[str, str] = {}
    env_files = []
    for line in show_output.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if sep and name == "Environment":
            environment.update(parse_environment_property(value))
        elif sep and name == "EnvironmentFiles":
            if value:
                env_files.append(parse_environment_file_entry(value))
        else:
            raise EngineConfigError(f"unexpected line in systemctl show output: {line[:80]!r}")
    return {"environment": environment, "env_files": env_files}


def read_unit_environment(run: Runner, unit: str) -> dict[str, Any]:
    """The ``Environment=`` values and the ``EnvironmentFiles`` (path, ignore_errors) of
    ``unit``, read with ``systemctl show``."""
    try:
        validate_unit(unit)
    except EngineStateError as exc:
        raise EngineConfigError(str(exc)) from None
    argv = ["systemctl", "show", unit, "--property=Environment,EnvironmentFiles"]
    try:
        shown = run_checked(run, argv)
    except CommandError as exc:
        raise EngineConfigError(str(exc)) from None
    return parse_unit_environment(shown)


def read_env_file(path: str) -> bytes | None:
    """The bytes of the env file ``path``, None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EngineConfigError(f"cannot read the environment file {path}: {exc}") from None


def unit_expected_config(run: Runner, unit: str, baseline: Mapping[str, float]) -> dict[str, Any]:
    """What ``unit`` must run given its files on this host: ``expected``
    (:func:`expected_config`), ``env_files`` (path, ignore_errors, present, sha256 of each) and
    ``model_environment`` (:func:`model_environment` of the merged environment).

    A missing env file that is not optional (``-`` prefix) raises: systemd would not start."""
    unit_environment = read_unit_environment(run, unit)
    texts, env_files = [], []
    for entry in unit_environment["env_files"]:
        data = read_env_file(entry["path"])
        if data is None and not entry["ignore_errors"]:
            raise EngineConfigError(
                f"environment file {entry['path']} of {unit} is missing; systemd would refuse "
                "to start the unit"
            )
        env_files.append(
            {
                **entry,
                "present": data is not None,
                "sha256": None if data is None else hashlib.sha256(data).hexdigest(),
            }
        )
        if data is not None:
            try:
                texts.append((entry["path"], data.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise EngineConfigError(
                    f"environment file {entry['path']} is not UTF-8: {exc.reason}"
                ) from None
    environment = merged_environment(unit_environment["environment"], texts)
    return {
        "expected": expected_from_environment(environment, baseline),
        "env_files": env_files,
        "model_environment": model_environment(environment),
    }
