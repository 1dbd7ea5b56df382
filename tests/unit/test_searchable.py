"""Searchable params: which values are indexed, and which declarations are refused."""

import pytest

from taskline import Params
from taskline.core.registry import TaskPackageError, check
from taskline.core.searchable import part, searched
from taskline.declaring import TaskDeclaration


class Some(Params):
    text: str = ""
    count: int = 0
    flag: bool = False
    ratio: float = 0.0


def declared(*searchable: str) -> TaskDeclaration:
    return TaskDeclaration("some", Some, "pkg.mod:run", searchable=searchable, module="pkg")


def test_values_are_indexed_as_text_up_to_the_bound() -> None:
    params = {"text": "hello", "count": 5, "flag": True}
    found = searched("some", ("text", "count", "flag"), params, 5)
    assert found == [part("some", "text", "hello"), part("some", "count", "5")] + [
        part("some", "flag", "true")
    ]
    assert searched("some", ("text",), {"text": "hello!"}, 5) == []  # too long: not indexed
    assert part("some", "text", "a:b") != part("some", "text", "a:c")
    assert ":" not in part("some", "text", "a:b").split(":", 2)[2]  # the value by digest


@pytest.mark.parametrize("searchable", [("missing",), ("ratio",)])
def test_only_str_int_and_bool_params_are_searchable(searchable: tuple[str, ...]) -> None:
    check(declared("text", "count", "flag"))
    with pytest.raises(TaskPackageError, match="searchable param"):
        check(declared(*searchable))


def test_searchable_is_a_tuple_of_names() -> None:
    declaration = TaskDeclaration("some", Some, "pkg.mod:run", searchable="text")  # type: ignore[arg-type]
    with pytest.raises(TaskPackageError, match="tuple"):
        check(declaration)
