"""``parse_command`` answers any input with a command or a ``CommandRejected``: the size,
depth and number limits have their own codes, and no bytes make it raise anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sferum_audit.application.commands import (
    CommandLimits,
    CommandRejected,
    parse_command,
    read_json,
)
from sferum_audit.application.sample_school import sample_school


def code_of(raw: str | bytes, limits: CommandLimits | None = None) -> str:
    with pytest.raises(CommandRejected) as refused:
        parse_command(raw, limits or CommandLimits())
    return refused.value.code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "command-too-deep"),
        (b'{"a": ' * 1_000 + b"1" + b"}" * 1_000, "command-too-deep"),
        (b"[" * 33 + b"]" * 33, "command-too-deep"),
        (b'{"command_id": ' + b"9" * 5_000 + b"}", "number-too-long"),
        (b'{"command_id": -' + b"9" * 101 + b"}", "number-too-long"),
        (b" " * 262_145, "command-too-large"),
        (b"{oops", "invalid-json"),
        (b"\xff\xfe\xfd", "invalid-json"),
        ("\ud800", "invalid-command"),
        (b"[" * 32 + b"]" * 32, "invalid-command"),
        (b'{"command_id": ' + b"9" * 100 + b"}", "invalid-command"),
    ],
)
def test_input_beyond_a_limit_is_refused_with_the_limits_code(raw: bytes | str, code: str) -> None:
    assert code_of(raw) == code


def test_the_limits_are_configurable() -> None:
    tight = CommandLimits(max_bytes=2_000, max_depth=4, max_number_digits=3)
    assert code_of(b"[[[[[]]]]]", tight) == "command-too-deep"
    assert code_of(b'{"n": 1234}', tight) == "number-too-long"
    assert code_of(b" " * 2_001, tight) == "command-too-large"
    assert code_of(b"[[[[]]]]", tight) == "invalid-command"


def test_every_valid_command_passes_the_default_limits_and_a_tight_depth() -> None:
    tight = CommandLimits(max_depth=4, max_number_digits=1)
    for command in sample_school("limits"):
        raw = json.dumps(command).encode()
        assert parse_command(raw, tight).command_id == command["command_id"]


def test_a_byte_order_mark_and_utf16_are_read_as_json_loads_reads_them() -> None:
    assert read_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert read_json('{"a": 1}'.encode("utf-16")) == {"a": 1}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_no_bytes_make_parsing_raise_anything_but_a_refusal(raw: bytes) -> None:
    codes = {"invalid-json", "invalid-command", "command-too-deep", "number-too-long"}
    refusal: CommandRejected | None = None
    try:
        parse_command(raw)
    except CommandRejected as error:
        refusal = error
    assert refusal is None or refusal.code in codes
