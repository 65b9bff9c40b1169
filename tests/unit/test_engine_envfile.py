"""Unit tests of the environment file logic (model_safety.engine.envfile) and its filter plugin:
every line not being changed stays byte-identical, nothing invalid goes in or out, and no
message ever shows a value."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_safety.engine import envfile as ef
from model_safety.redaction import is_secret_name

ROOT = Path(__file__).resolve().parents[2]
LAB_ENV = ROOT / "lab" / "engine" / "ai-engine.env"


SMALL = "# engine\nA=1\n\n; note\nB=two words\nC=x=y\n"


# --------------------------------------------------------------------------- parsing


def test_parse_kinds_keys_values_and_raw():
    assert ef.parse_env(SMALL) == [
        ef.EnvLine("comment", "# engine"),
        ef.EnvLine("assignment", "A=1", "A", "1"),
        ef.EnvLine("blank", ""),
        ef.EnvLine("comment", "; note"),
        ef.EnvLine("assignment", "B=two words", "B", "two words"),
        ef.EnvLine("assignment", "C=x=y", "C", "x=y"),
    ]


def test_whitespace_lines_and_indented_comments_are_kept_as_such():
    assert [line.kind for line in ef.parse_env(" \t\n  # c\nEMPTY=\n")] == [
        "blank",
        "comment",
        "assignment",
    ]
    assert ef.env_values("EMPTY=\n") == {"EMPTY": ""}


def test_env_values_of_the_lab_file_in_file_order():
    values = ef.env_values(LAB_ENV.read_text())
    assert list(values)[:4] == [
        "XGB_SHADOW_ONLY",
        "LGBM_SHADOW_ONLY",
        "NHITS_SHADOW_ONLY",
        "PATCHTST_SHADOW_ONLY",
    ]
    assert values["PATCHTST_SHADOW_ONLY"] == "true"
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("text", "number", "reason", "shown"),
    [
        ("A=1\nexport X=1\n", 2, "'export' is not allowed", "'export X=<hidden>'"),
        ("X = 1\n", 1, "whitespace around '='", "'X =<hidden>'"),
        ("X =1\n", 1, "whitespace around '='", "'X =<hidden>'"),
        ("X= 1\n", 1, "whitespace around '='", "'X=<hidden>'"),
        ("X=\t1\n", 1, "whitespace around '='", "'X=<hidden>'"),
        ("# c\n\nnot an assignment\n", 3, "no '='", "<17 characters without '=', not shown>"),
        (" X=1\n", 1, "whitespace before the key", "' X=<hidden>'"),
        ("=1\n", 1, "the key must match", "'=<hidden>'"),
        ("1X=1\n", 1, "the key must match", "'1X=<hidden>'"),
        ("X-Y=1\n", 1, "the key must match", "'X-Y=<hidden>'"),
        ("A=1\r\nB=2\r\n", 1, "carriage return", "'A=<hidden>'"),
        ("A=1\nB=x\0y\n", 2, "NUL character", "'B=<hidden>'"),
        ("A=1\nB=2\nA=3\n", 3, "duplicate key A (first on line 1)", "'A=<hidden>'"),
    ],
)
def test_bad_lines_are_refused_with_their_number(text, number, reason, shown):
    with pytest.raises(ef.EnvFileError) as caught:
        ef.parse_env(text)
    message = str(caught.value)
    assert message.startswith(f"line {number}: ")
    assert reason in message
    assert message.endswith(shown)


def test_long_key_part_is_cut_in_messages():
    with pytest.raises(ef.EnvFileError) as caught:
        ef.parse_env("x" * 200 + " =1\n")
    assert "x" * 80 + "...=<hidden>" in str(caught.value)
    assert "x" * 81 not in str(caught.value)


SECRET = "s3cr3t-Value_42"


@pytest.mark.parametrize(
    "text",
    [
        f"REDIS_PASSWORD = {SECRET}\n",
        f"export API_TOKEN={SECRET}\n",
        f"AUTH_KEY={SECRET}\nAUTH_KEY={SECRET}\n",
        f"DB_SECRET= {SECRET}\n",
        f"TLS_KEY=-----BEGIN\n{SECRET}\n",
        f"A=1\r\nPASS={SECRET}\n",
        f"A=1\nPASS={SECRET}\0\n",
        f"PLAIN = {SECRET}\n",
    ],
)
def test_values_never_appear_in_messages(text):
    for call in (
        lambda: ef.parse_env(text),
        lambda: ef.render_env(text, {}),
        lambda: ef.env_values(text),
        lambda: ef.changed_keys(text, {"A": "2"}),
    ):
        with pytest.raises(ef.EnvFileError) as caught:
            call()
        assert SECRET not in str(caught.value)
        assert "s3cr3t" not in str(caught.value)


def test_text_must_be_a_string():
    with pytest.raises(ef.EnvFileError, match="must be text, not bytes"):
        ef.parse_env(b"A=1\n")
    with pytest.raises(ef.EnvFileError, match="must be text, not NoneType"):
        ef.render_env(None, {})


def test_secret_key_names():
    assert all(
        is_secret_name(key)
        for key in ("REDIS_PASSWORD", "api_token", "AUTH", "TLS_KEY", "DB_SECRET", "PASSWD")
    )
    assert not any(is_secret_name(key) for key in ("SIM_XGB", "ENGINE_RATE", "REDIS_URL"))


# --------------------------------------------------------------------------- rendering


def test_lab_file_round_trips_byte_identical():
    text = LAB_ENV.read_text()
    assert ef.render_env(text, {}) == text
    assert ef.render_env(text, {"SIM_XGB": "healthy"}) == text  # same value: nothing changes
    assert ef.changed_keys(text, {"SIM_XGB": "healthy"}) == {}


def test_change_in_place_keeps_order_and_comments():
    text = LAB_ENV.read_text()
    rendered = ef.render_env(text, {"PATCHTST_SHADOW_ONLY": "false", "SIM_XGB": "constant"})
    before, after = text.split("\n"), rendered.split("\n")
    assert len(before) == len(after)
    differing = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert differing == [
        ("PATCHTST_SHADOW_ONLY=true", "PATCHTST_SHADOW_ONLY=false"),
        ("SIM_XGB=healthy", "SIM_XGB=constant"),
    ]


def test_removal_drops_only_that_line():
    assert ef.render_env(SMALL, {"B": None}) == "# engine\nA=1\n\n; note\nC=x=y\n"
    assert ef.render_env(SMALL, {"NOT_THERE": None}) == SMALL


def test_new_keys_are_appended_in_the_order_given():
    rendered = ef.render_env(SMALL, {"Z": "26", "B": "2", "Y": "25"})
    assert rendered == "# engine\nA=1\n\n; note\nB=2\nC=x=y\nZ=26\nY=25\n"


def test_values_may_hold_any_text_systemd_passes_on_verbatim():
    rendered = ef.render_env("A=1\n", {"A": "x = 'y' # not a comment; $HOME \"z\""})
    assert rendered == "A=x = 'y' # not a comment; $HOME \"z\"\n"
    assert ef.render_env("A=1\n", {"A": ""}) == "A=\n"


def test_existing_backslashes_and_quotes_are_kept_but_a_continuation_is_refused():
    text = 'A="quoted"\nB=a\\b\n'
    assert ef.render_env(text, {"C": "1"}) == text + "C=1\n"
    with pytest.raises(ef.EnvFileError, match="line 1: the value ends with a backslash"):
        ef.parse_env("A=x\\\nB=1\n")
    with pytest.raises(ef.EnvFileError, match="line 2: the comment ends with a backslash"):
        ef.parse_env("A=1\n# note \\\nB=1\n")


@pytest.mark.parametrize(
    ("text", "changes", "expected"),
    [
        ("A=1\nB=2", {}, "A=1\nB=2"),
        ("A=1\nB=2", {"B": "3"}, "A=1\nB=3"),
        ("A=1\nB=2", {"B": None}, "A=1"),
        ("A=1\nB=2", {"C": "3"}, "A=1\nB=2\nC=3\n"),
        ("# only a comment", {"A": "1"}, "# only a comment\nA=1\n"),
        ("", {}, ""),
        ("", {"A": "1"}, "A=1\n"),
        ("A=1\n", {"A": None}, ""),
        ("A=1", {"A": None}, ""),
        ("\n", {}, "\n"),
        ("A=1\n\n", {"B": "2"}, "A=1\n\nB=2\n"),
    ],
)
def test_final_newline_only_if_it_was_there_or_a_key_was_appended(text, changes, expected):
    assert ef.render_env(text, changes) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (False, "value of A must be a string, not bool"),
        (10, "value of A must be a string, not int"),
        (0.1, "value of A must be a string, not float"),
        (["x"], "value of A must be a string, not list"),
        ("a\nB=2", "must not contain a newline"),
        ("a\rb", "must not contain a newline, carriage return"),
        ("a\0b", "or NUL"),
        (" 1", "would not reach the engine as written"),
        ("1\t", "would not reach the engine as written"),
        ('"quoted"', "would not reach the engine as written"),
        ("'quoted'", "would not reach the engine as written"),
        ("C:\\dir", "would not reach the engine as written"),
        ("x\\", "would not reach the engine as written"),
    ],
)
def test_bad_values_are_refused_without_showing_them(value, message):
    with pytest.raises(ef.EnvFileError, match=message) as caught:
        ef.render_env("A=1\n", {"A": value})
    if isinstance(value, str):
        assert value not in str(caught.value)
    with pytest.raises(ef.EnvFileError, match=message):
        ef.changed_keys("A=1\n", {"A": value})


def test_booleans_must_be_given_as_text():
    with pytest.raises(ef.EnvFileError, match='"true", "false"'):
        ef.render_env("A=1\n", {"PATCHTST_SHADOW_ONLY": True})
    assert (
        ef.render_env("A=1\n", {"PATCHTST_SHADOW_ONLY": "true"})
        == "A=1\nPATCHTST_SHADOW_ONLY=true\n"
    )


@pytest.mark.parametrize("key", ["", "1A", "A B", "A=B", "A\n", "export A", 5, None])
def test_bad_keys_are_refused(key):
    with pytest.raises(ef.EnvFileError, match="not a valid key"):
        ef.render_env("A=1\n", {key: "1"})


@pytest.mark.parametrize("changes", [None, ["A", "1"], "A=1"])
def test_changes_must_be_a_mapping(changes):
    with pytest.raises(ef.EnvFileError, match="changes must be a mapping"):
        ef.render_env("A=1\n", changes)


def test_invalid_input_is_refused_even_without_changes():
    with pytest.raises(ef.EnvFileError, match="line 2: duplicate key A"):
        ef.render_env("A=1\nA=2\n", {})


def test_changed_keys_reports_only_real_changes_and_hides_secrets():
    text = "A=1\nB=2\nREDIS_PASSWORD=old\n"
    changes = {"A": "1", "B": "3", "C": "new", "D": None, "REDIS_PASSWORD": "new", "X_TOKEN": "t"}
    assert ef.changed_keys(text, changes) == {
        "B": {"before": "2", "after": "3"},
        "C": {"before": None, "after": "new"},
        "REDIS_PASSWORD": {"before": "<hidden>", "after": "<hidden>"},
        "X_TOKEN": {"before": None, "after": "<hidden>"},
    }
    assert ef.changed_keys(text, {"B": None}) == {"B": {"before": "2", "after": None}}


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("REDIS_PASSWORD", "s3cr3t", "<hidden>"),
        ("api_key", "k", "<hidden>"),
        ("SESSION_TOKEN", "t", "<hidden>"),
        ("CLIENT_SECRET", "s", "<hidden>"),
        ("REDIS_URL", "redis://:pw@10.0.0.5:6379/0", "redis://***@10.0.0.5:6379/0"),
        ("FEEDS", "a https://u:p@x/y and rediss://u@h/1", "a https://***@x/y and rediss://***@h/1"),
        ("REDIS_URL", "redis://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
        ("PATCHTST_SHADOW_ONLY", "true", "true"),
        ("MAIL", "ops@example.com", "ops@example.com"),
        ("A", None, None),
    ],
)
def test_masked_value_hides_secret_keys_and_url_userinfo(key, value, shown):
    assert ef.masked_value(key, value) == shown


def test_diff_texts_hold_only_the_changed_keys_masked():
    text = "# x\nREDIS_PASSWORD=pw1\nPATCHTST_SHADOW_ONLY=true\nURL=redis://:up@h/0\nB=1\n"
    assert ef.diff_texts(text, {"PATCHTST_SHADOW_ONLY": "false", "B": "1"}) == (
        "PATCHTST_SHADOW_ONLY=true\n",
        "PATCHTST_SHADOW_ONLY=false\n",
    )
    before, after = ef.diff_texts(text, {"REDIS_PASSWORD": "pw2", "URL": None, "NEW_KEY": "k"})
    assert before == "REDIS_PASSWORD=<hidden>\nURL=redis://***@h/0\n"
    assert after == "REDIS_PASSWORD=<hidden>  # changed, value hidden\nNEW_KEY=<hidden>\n"
    assert ef.diff_texts(text, {}) == ("", "")


def test_secret_values_lists_what_output_must_mask():
    text = "REDIS_PASSWORD=pw1\nURL=redis://user:up@h/0\nEMPTY_TOKEN=\nB=1\n"
    assert ef.secret_values(text, {"API_TOKEN": "t9", "C": "https://u:cp@x/", "D": None}) == {
        "pw1",
        "user:up",
        "up",
        "t9",
        "u:cp",
        "cp",
    }


# --------------------------------------------------------------------------- properties

_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)
_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\n\r\0", blacklist_categories=("Cs",)),
    max_size=20,
)
# What a file may hold, and the stricter set a change may write.
_FILE_VALUES = _TEXT.filter(lambda value: value[:1] not in (" ", "\t") and value[-1:] != "\\")
_NEW_VALUES = _TEXT.filter(
    lambda value: (
        value[:1] not in (" ", "\t", '"', "'")
        and value[-1:] not in (" ", "\t")
        and "\\" not in value
    )
)
_OTHER_LINES = st.one_of(
    st.from_regex(r"[ \t]{0,3}", fullmatch=True),
    st.from_regex(r"[ \t]{0,2}[#;]([^\n\r\x00]{0,19}[^\n\r\x00\\])?", fullmatch=True),
)


@st.composite
def env_texts(draw):
    """A valid environment file, with its assignments as a dict."""
    values = draw(st.dictionaries(_KEYS, _FILE_VALUES, max_size=8))
    lines = [f"{key}={value}" for key, value in values.items()]
    for other in draw(st.lists(_OTHER_LINES, max_size=6)):
        lines.insert(draw(st.integers(0, len(lines))), other)
    text = "\n".join(lines)
    if lines and draw(st.booleans()):
        text += "\n"
    return text, values


@given(env_texts())
def test_rendering_nothing_is_the_identity(sample):
    text, values = sample
    assert ef.render_env(text, {}) == text
    assert ef.env_values(text) == values


@given(env_texts(), st.data())
def test_only_changed_lines_differ(sample, data):
    text, values = sample
    keys = data.draw(
        st.lists(st.sampled_from(sorted(values)), unique=True) if values else st.just([])
    )
    changes = {key: data.draw(_NEW_VALUES) for key in keys}
    rendered = ef.render_env(text, changes)
    before, after = text.split("\n"), rendered.split("\n")
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        key = old.partition("=")[0]
        if old != new:
            assert key in changes and new == f"{key}={changes[key]}"
    assert ef.env_values(rendered) == {**values, **changes}
    assert set(ef.changed_keys(text, changes)) == {k for k in changes if changes[k] != values[k]}
