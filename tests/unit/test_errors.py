"""Error answers render whatever input they quote: JSON in UTF-8 can carry all of it."""

import json
import math

from fastapi.exceptions import RequestValidationError
from hypothesis import given
from hypothesis import strategies as st

from taskline.api.errors import (
    InvalidParamsError,
    encodable,
    error_response,
    validation_error_response,
)

ANYTHING = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.binary(max_size=8)
    | st.text(st.characters(codec=None, exclude_categories=()))
    | st.lists(st.characters(categories=["Cs"]).map(str)).map("".join),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(st.characters(codec=None, exclude_categories=())), inner)
    ),
    max_leaves=10,
)


@given(ANYTHING)
def test_any_value_becomes_strict_utf8_json(value: object) -> None:
    text = json.dumps(encodable(value), ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # no lone surrogate left


def test_what_cannot_travel_is_replaced_and_the_rest_kept() -> None:
    assert encodable({"\ud800k": ["a\udfffb", b"\xff", math.nan, -math.inf, 1, None]}) == {
        "\ufffdk": ["a\ufffdb", "\ufffd", "nan", "-inf", 1, None]
    }
    assert encodable({"text": "😀 é", "n": 1.5, "ok": True}) == {
        "text": "😀 é",
        "n": 1.5,
        "ok": True,
    }


def test_a_422_quoting_a_lone_surrogate_renders() -> None:
    exc = RequestValidationError(
        [
            {"type": "enum", "loc": ("body", "name"), "msg": "bad", "input": "\ud800"},
            {"type": "extra_forbidden", "loc": ("body", "\udc00"), "msg": "no", "input": 1},
            {"type": "model_attributes_type", "loc": ("body",), "msg": "x", "input": b"\xff{"},
            {"type": "less_than_equal", "loc": ("body", "d"), "msg": "y", "input": math.nan},
        ]
    )
    response = validation_error_response(exc)
    assert response.status_code == 422
    detail = json.loads(response.body)["detail"]
    assert [error["input"] for error in detail] == ["\ufffd", 1, "\ufffd{", "nan"]
    assert detail[1]["loc"] == ["body", "\ufffd"]
    answer = error_response(InvalidParamsError({"message": "bad \ud800"}))
    assert json.loads(answer.body) == {"detail": {"message": "bad \ufffd"}}
