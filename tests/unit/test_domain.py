"""Request ids and int64 arithmetic shared by both services."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from distsum.domain import (
    INT64_MAX,
    INT64_MIN,
    Int64Overflow,
    InvalidRequestId,
    add_int64,
    canonical_request_id,
)

CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def spellings(value: uuid.UUID) -> list[str]:
    """Every RFC 4122 text form of one UUID that clients may send."""
    hyphenated = str(value)
    return [
        hyphenated,
        hyphenated.upper(),
        "{" + hyphenated + "}",
        "{" + hyphenated.upper() + "}",
        "urn:uuid:" + hyphenated,
        value.hex,
        value.hex.upper(),
    ]


@given(st.uuids())
def test_every_spelling_of_a_uuid_maps_to_the_lower_case_hyphenated_form(value: uuid.UUID) -> None:
    assert {canonical_request_id(text) for text in spellings(value)} == {str(value)}


def test_canonical_form_of_a_known_uuid() -> None:
    assert (
        canonical_request_id("{3F1C0E9A-7A51-4C1E-9A43-0B8F3C0D2E11}")
        == "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-uuid",
        "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e1",  # one digit short
        "3f1c0e9a7a514c1e9a430b8f3c0d2e1",  # 31 hex digits
        "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e111",  # one digit long
        "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e1g",  # not hex
        "3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11\n",
    ],
)
def test_rejects_text_that_is_not_a_uuid(text: str) -> None:
    with pytest.raises(InvalidRequestId):
        canonical_request_id(text)


def test_rejection_message_does_not_echo_unbounded_input() -> None:
    with pytest.raises(InvalidRequestId) as raised:
        canonical_request_id("x" * 10_000)
    assert len(str(raised.value)) < 200


@given(st.text())
@example("urn:uuid:3f1c0e9a-7a51-4c1e-9a43-0b8f3c0d2e11")
def test_arbitrary_text_is_rejected_or_canonicalised_idempotently(text: str) -> None:
    try:
        result = canonical_request_id(text)
    except InvalidRequestId:
        return
    assert CANONICAL.fullmatch(result)
    assert canonical_request_id(result) == result


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0x" + "0" * 30, id="0x-prefix"),
        pytest.param(" " + "1" * 31, id="leading-space"),
        pytest.param("1_" + "1" * 30, id="underscore"),
        pytest.param("+" + "1" * 31, id="plus-sign"),
        pytest.param("\u0661" * 32, id="arabic-indic-digits"),
        pytest.param("{" + "a" * 32, id="unbalanced-brace"),
    ],
)
def test_rejects_spellings_that_only_python_int_parsing_accepts(text: str) -> None:
    with pytest.raises(InvalidRequestId):
        canonical_request_id(text)


def near(base: int) -> st.SearchStrategy[int]:
    return st.integers(-3, 3).map(lambda delta: min(max(base + delta, INT64_MIN), INT64_MAX))


int64s = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    near(INT64_MIN),
    near(INT64_MAX),
    near(0),
    near(INT64_MAX // 2),
    near(INT64_MIN // 2),
)


@given(int64s, int64s)
@example(INT64_MAX, 0)
@example(INT64_MAX, 1)
@example(INT64_MIN, 0)
@example(INT64_MIN, -1)
@example(INT64_MAX, INT64_MIN)
@example(INT64_MAX, INT64_MAX)
@example(INT64_MIN, INT64_MIN)
def test_add_int64_is_python_addition_inside_the_range_and_raises_outside(a: int, b: int) -> None:
    exact = a + b
    if INT64_MIN <= exact <= INT64_MAX:
        assert add_int64(a, b) == exact
    else:
        with pytest.raises(Int64Overflow):
            add_int64(a, b)


@pytest.mark.parametrize(
    ("a", "b", "fits"),
    [
        (INT64_MAX - 1, 1, True),
        (INT64_MAX, 1, False),
        (INT64_MIN + 1, -1, True),
        (INT64_MIN, -1, False),
        (2**62, 2**62 - 1, True),
        (2**62, 2**62, False),
        (-(2**62), -(2**62), True),
        (-(2**62), -(2**62) - 1, False),
    ],
)
def test_add_int64_boundaries(a: int, b: int, fits: bool) -> None:
    if fits:
        assert add_int64(a, b) == a + b
    else:
        with pytest.raises(Int64Overflow, match="outside the int64 range"):
            add_int64(a, b)
