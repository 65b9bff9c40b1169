"""The engine's systemd EnvironmentFile (``/etc/quantum/ai-engine.env``), changed in place.

The file is only ever changed by rendering it again from its current text: the keys being
changed get their new value on their own line, removed keys lose their line, new keys are
appended at the end, and every other byte (other keys, their order, comments, blank lines, a
missing final newline) stays exactly as it was. This module is that logic, including what a
diff may show: only the changed keys, with secrets masked (:func:`diff_texts`,
:func:`masked_value`, :func:`secret_values`); :mod:`.envfile_write` plans and applies a change
to the file on disk (the ``env_file`` and ``engine_change`` modules).

The accepted format is deliberately narrower than what systemd reads, so that the file means
the same thing to systemd, to the engine and to these tools:

* lines are separated by ``\\n`` only (a ``\\r`` or NUL anywhere is an error);
* a line is blank (spaces and tabs only), a comment (first non-blank character ``#`` or
  ``;``), or an assignment ``KEY=VALUE`` with ``KEY`` matching ``[A-Za-z_][A-Za-z0-9_]*``,
  nothing before it, no space on either side of ``=``; VALUE is the rest of the line, verbatim;
* every key appears once;
* a value or comment does not end with a backslash (systemd would continue it on the next
  line).

Values written by :func:`render_env` are also free of what systemd would not pass on verbatim
(backslashes, a leading quote, whitespace at either end), so the engine sees them as written.

Anything else raises :class:`EnvFileError` naming the line number. Messages never show a value
(any key may hold a secret): an assignment-like line is shown as ``<text before =>=<hidden>``,
a line without ``=`` only by its length. Pure standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..redaction import is_secret_name

__all__ = [
    "EnvFileError",
    "EnvLine",
    "change_secret_values",
    "changed_keys",
    "diff_texts",
    "env_values",
    "masked_value",
    "parse_env",
    "render_env",
    "secret_values",
    "validate_key",
    "validate_value",
]

HIDDEN = "<hidden>"

# Always used with fullmatch (a trailing newline never slips through).
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The userinfo of a URL anywhere in a value (redis://:pw@host, https://user:pw@host).
_URL_USERINFO_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s]*)@")
_SHOWN_PREFIX = 80


class EnvFileError(ValueError):
    """An environment file, key or value that cannot be right; never shows a value.

    ``secrets`` are the values known, when it was raised, that output must mask (see
    :mod:`.envfile_write`); empty where nothing was read yet.
    """

    def __init__(self, message: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.secrets = frozenset(secrets)


@dataclass(frozen=True)
class EnvLine:
    """One line of an environment file, without its line end.

    ``kind`` is ``comment``, ``blank`` or ``assignment``; ``key`` and ``value`` are set for
    assignments only; ``raw`` is the line exactly as written.
    """

    kind: str
    raw: str
    key: str | None = None
    value: str | None = None


def masked_value(key: str, value: str | None) -> str | None:
    """``value`` as output may show it: ``<hidden>`` for a secret-looking key, the userinfo of
    any URL in it replaced by ``***`` (``redis://***@host:6379/0``), else as it is."""
    if value is None:
        return None
    if is_secret_name(key):
        return HIDDEN
    return _URL_USERINFO_RE.sub(r"\1***@", value)


def _url_userinfo(value: str) -> list[str]:
    """The userinfo of every URL in ``value`` and its password part, for masking."""
    found: list[str] = []
    for match in _URL_USERINFO_RE.finditer(value):
        userinfo = match.group(2)
        found += [userinfo, userinfo.partition(":")[2]]
    return [text for text in found if text]


def _secrets_in(assignments: Iterable[tuple[Any, Any]]) -> set[str]:
    """The values of secret-looking keys and the userinfo of URLs among ``assignments``."""
    secrets: set[str] = set()
    for key, value in assignments:
        if not isinstance(key, str) or not value:
            continue
        # A number given for a secret is refused, but Ansible shows the task's options.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            continue
        if is_secret_name(key):
            secrets.add(value)
        secrets.update(_url_userinfo(value))
    return secrets


def secret_values(text: str, changes: Mapping[str, str | None]) -> set[str]:
    """Every value of ``text`` and ``changes`` that output must never show: the values of
    secret-looking keys and the userinfo of URLs (for Ansible's ``no_log_values``)."""
    return _secrets_in([*env_values(text).items(), *_validated_changes(changes).items()])


def change_secret_values(changes: Any) -> set[str]:
    """The values of ``changes`` that output must never show, as :func:`secret_values` finds
    them but without validating anything: a wrapper masks them before any refusal, since
    Ansible shows a failed task's options (an invalid pair is skipped, a number is masked)."""
    return _secrets_in(changes.items()) if isinstance(changes, Mapping) else set()


def _shown(line: str) -> str:
    """The line as an error message may show it: the text before ``=`` only."""
    before, sep, _value = line.partition("=")
    if not sep:
        return f"<{len(line)} characters without '=', not shown>"
    if len(before) > _SHOWN_PREFIX:
        before = before[:_SHOWN_PREFIX] + "..."
    return repr(before + "=" + HIDDEN)


def _line_problem(line: str) -> str | None:
    """Why ``line`` is not a blank line, a comment or a valid assignment (None if it is one)."""
    if "\r" in line:
        return "carriage return in the line (CRLF line ends are not allowed)"
    if "\0" in line:
        return "NUL character in the line"
    stripped = line.lstrip(" \t")
    if stripped[:1] in ("#", ";") and line.endswith("\\"):
        return "the comment ends with a backslash (systemd would join the next line to it)"
    if not stripped or stripped[0] in "#;":
        return None
    before, sep, value = line.partition("=")
    if not sep:
        return "not KEY=VALUE (no '=')"
    if before != before.lstrip(" \t"):
        return "not KEY=VALUE (whitespace before the key)"
    if before.startswith(("export ", "export\t")):
        return "not KEY=VALUE ('export' is not allowed)"
    if before != before.rstrip(" \t") or value[:1] in (" ", "\t"):
        return "not KEY=VALUE (whitespace around '=')"
    if not _KEY_RE.fullmatch(before):
        return "not KEY=VALUE (the key must match [A-Za-z_][A-Za-z0-9_]*)"
    if value.endswith("\\"):
        return "the value ends with a backslash (systemd would join the next line to it)"
    return None


def _split_lines(text: str) -> tuple[list[str], bool]:
    """The lines of ``text`` (``\\n`` only) and whether it ends with a newline."""
    if text == "":
        return [], False
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    return lines, ends_with_newline


def _parse_lines(lines: list[str]) -> list[EnvLine]:
    parsed: list[EnvLine] = []
    first_seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        problem = _line_problem(line)
        if problem:
            raise EnvFileError(f"line {number}: {problem}: {_shown(line)}")
        stripped = line.lstrip(" \t")
        if not stripped:
            parsed.append(EnvLine("blank", line))
        elif stripped[0] in "#;":
            parsed.append(EnvLine("comment", line))
        else:
            key, _sep, value = line.partition("=")
            if key in first_seen:
                raise EnvFileError(
                    f"line {number}: duplicate key {key} (first on line {first_seen[key]}): "
                    f"{_shown(line)}"
                )
            first_seen[key] = number
            parsed.append(EnvLine("assignment", line, key, value))
    return parsed


def _checked_text(text: Any) -> str:
    if not isinstance(text, str):
        raise EnvFileError(f"the environment file must be text, not {type(text).__name__}")
    return text


def parse_env(text: str) -> list[EnvLine]:
    """Parse an environment file; raise :class:`EnvFileError` on any line that is not valid."""
    return _parse_lines(_split_lines(_checked_text(text))[0])


def validate_key(key: Any) -> str:
    """Return ``key`` if it is a valid variable name, else raise."""
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        shown = repr(key) if isinstance(key, str) else type(key).__name__
        raise EnvFileError(f"not a valid key (must match [A-Za-z_][A-Za-z0-9_]*): {shown}")
    return key


def validate_value(key: str, value: Any) -> str:
    """Return ``value`` if it can be written as the value of ``key``, else raise (the message
    names the key, never the value)."""
    if not isinstance(value, str):
        raise EnvFileError(
            f"value of {key} must be a string, not {type(value).__name__} "
            '(write booleans and numbers as strings, e.g. "true", "false", "10")'
        )
    if any(char in value for char in "\n\r\0"):
        raise EnvFileError(f"value of {key} must not contain a newline, carriage return or NUL")
    # systemd unquotes a leading quote, drops backslashes and trims surrounding whitespace;
    # such a value would not reach the engine as written.
    if value[:1] in (" ", "\t", '"', "'") or value[-1:] in (" ", "\t") or "\\" in value:
        raise EnvFileError(
            f"value of {key} would not reach the engine as written: no backslash, no quote at "
            "the start, no whitespace at either end"
        )
    return value


def _validated_changes(changes: Any) -> dict[str, str | None]:
    if not isinstance(changes, Mapping):
        raise EnvFileError(
            f"changes must be a mapping of KEY to value (or null), not {type(changes).__name__}"
        )
    return {
        validate_key(key): None if value is None else validate_value(key, value)
        for key, value in changes.items()
    }


def render_env(text: str, changes: Mapping[str, str | None]) -> str:
    """``text`` with ``changes`` applied: each changed key gets its new value on its own line,
    a key mapped to None loses its line, keys not in the file are appended at the end in the
    order given; everything else is kept byte for byte.

    The result ends with a newline if ``text`` did or a key was appended (an appended key always
    gets one); ``render_env(text, {}) == text``. Both ``text`` and the result are validated.
    """
    wanted = _validated_changes(changes)
    lines, ends_with_newline = _split_lines(_checked_text(text))
    rendered: list[str] = []
    for line in _parse_lines(lines):
        if line.kind != "assignment" or line.key not in wanted:
            rendered.append(line.raw)
            continue
        value = wanted.pop(line.key)
        if value is not None:
            rendered.append(f"{line.key}={value}")
    # What is left is not in the file: removing it is already done, the rest is appended.
    appended = [f"{key}={value}" for key, value in wanted.items() if value is not None]
    rendered.extend(appended)
    if not rendered:
        return ""
    output = "\n".join(rendered) + ("\n" if ends_with_newline or appended else "")
    parse_env(output)
    return output


def env_values(text: str) -> dict[str, str]:
    """``{KEY: value}`` of every assignment, in file order (the file is validated)."""
    return {line.key: line.value for line in parse_env(text) if line.kind == "assignment"}


def changed_keys(text: str, changes: Mapping[str, str | None]) -> dict[str, dict[str, str | None]]:
    """The keys whose value :func:`render_env` would actually change, each to
    ``{"before": old, "after": new}`` (None for absent), in the order of ``changes``.

    For reports: values are shown as :func:`masked_value` shows them (secret-looking keys as
    ``<hidden>``, URL userinfo as ``***``).
    """
    wanted = _validated_changes(changes)
    current = env_values(text)
    return {
        key: {"before": masked_value(key, current.get(key)), "after": masked_value(key, value)}
        for key, value in wanted.items()
        if current.get(key) != value
    }


def diff_texts(text: str, changes: Mapping[str, str | None]) -> tuple[str, str]:
    """``(before, after)``: the ``KEY=value`` lines of the keys whose value would change,
    before and after, masked as :func:`masked_value` does; every other line is left out, so a
    diff of the two shows the change and nothing around it (an env file holds secrets)."""
    before: list[str] = []
    after: list[str] = []
    for key, change in changed_keys(text, changes).items():
        if change["before"] is not None:
            before.append(f"{key}={change['before']}\n")
        if change["after"] is not None:
            # A secret's masked values are equal: say it changed, or the diff shows nothing.
            note = "  # changed, value hidden" if change["after"] == change["before"] else ""
            after.append(f"{key}={change['after']}{note}\n")
    return "".join(before), "".join(after)
