"""Tests of gridgeo.codes: codes of any width, numbering, and codes turned into text."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from gridgeo.codes import as_text, code_width_ok, number_children
from gridgeo.errors import CodeError

# widths of real hierarchies: the national 12-digit code (6 + 3 + 3), a city
# adding 2 digits for its counties, and anything else a configuration may say
WIDTHS = st.lists(st.integers(1, 4), min_size=1, max_size=4)


def _children(parents: list[str], per_parent: list[int]) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """``per_parent[i]`` unit boxes in a row for each parent, shuffled rows."""
    rows = [(p, k) for p, n in zip(parents, per_parent, strict=True) for k in range(n)]
    frame = gpd.GeoDataFrame(
        {"parent": [p for p, _ in rows]},
        geometry=[box(k, -i, k + 1, -i + 1) for i, (_, k) in enumerate(rows)],
    )
    frame = frame.sample(frac=1.0, random_state=len(rows)).reset_index(drop=True)
    return frame, frame["parent"]


@settings(max_examples=40, deadline=None)
@given(
    root=st.integers(1, 6),
    widths=WIDTHS,
    data=st.data(),
)
def test_numbered_hierarchies_of_any_widths_are_valid_codes(
    root: int, widths: list[int], data: st.DataObject
) -> None:
    parents = [str(7 * 10 ** (root - 1))]  # "7", "70", "700", ...
    length = root
    for digits in widths:
        counts = data.draw(
            st.lists(
                st.integers(1, min(12, 10**digits - 1)),
                min_size=len(parents),
                max_size=len(parents),
            )
        )
        frame, parent_codes = _children(parents, counts)
        codes = number_children(frame, parent_codes, digits)
        length += digits
        assert code_width_ok(codes, length).all()
        assert not code_width_ok(codes, length + 1).any()
        assert (codes.str.slice(0, length - digits) == parent_codes).all()
        assert codes.is_unique
        # each parent's children are numbered 1..n, each number once
        numbers = codes.str.slice(length - digits).astype(int)
        for parent, n in zip(parents, counts, strict=True):
            assert sorted(numbers[parent_codes == parent]) == list(range(1, n + 1))
        parents = sorted(set(codes))[:3]


def test_national_twelve_digit_codes() -> None:
    # 统计用区划代码: county 150823 + town 100 + village 001
    villages = gpd.GeoDataFrame(geometry=[box(0, 1, 1, 2), box(1, 1, 2, 2), box(0, 0, 1, 1)])
    codes = number_children(villages, pd.Series(["150823100"] * 3), 3)
    assert codes.tolist() == ["150823100001", "150823100002", "150823100003"]
    assert code_width_ok(codes, 12).all()
    # as integers, as a DBF numeric field reads them, and as floats
    assert as_text(pd.Series([150823100001]), 12).tolist() == ["150823100001"]
    assert as_text(pd.Series([150823100001.0]), 12).tolist() == ["150823100001"]


def test_too_many_children_is_a_code_error() -> None:
    kids = gpd.GeoDataFrame(geometry=[box(i, 0, i + 1, 1) for i in range(10)])
    with pytest.raises(CodeError, match=r"parent 1508 has 10 children.*1 digit.*at most 9"):
        number_children(kids, pd.Series(["1508"] * 10), 1)
    assert number_children(kids, pd.Series(["1508"] * 10), 2).iloc[-1] == "150810"


def test_missing_parent_code_is_a_code_error() -> None:
    kids = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)])
    with pytest.raises(CodeError, match="row 1: the parent code is missing"):
        number_children(kids, pd.Series(["1508", None]), 2)


def test_numeric_parent_codes_become_text_once() -> None:
    kids = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)])
    for parents in (pd.Series([150823, 150823]), pd.Series([150823.0, 150823.0])):
        assert number_children(kids, parents, 3).tolist() == ["150823001", "150823002"]


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 18), data=st.data())
def test_integer_codes_of_any_width_get_their_leading_zeros_back(
    width: int, data: st.DataObject
) -> None:
    numbers = data.draw(st.lists(st.integers(0, 10**width - 1), min_size=1, max_size=20))
    expected = [f"{n:0{width}d}" for n in numbers]
    assert as_text(pd.Series(numbers, dtype=np.int64), width).tolist() == expected
    assert as_text(pd.Series(numbers, dtype="Int64"), width).tolist() == expected
    assert as_text(np.array(numbers, dtype=np.int64), width).tolist() == expected
    if width <= 15:  # every such integer is exact in a float
        floats = pd.Series(numbers, dtype=float)
        assert as_text(floats, width).tolist() == expected
    assert code_width_ok(pd.Series(expected), width).all()


@given(
    st.lists(
        st.one_of(st.text(max_size=8), st.none(), st.just(float("nan")), st.just(pd.NA)),
        max_size=10,
    ),
    st.integers(0, 12),
)
def test_text_is_kept_as_read_and_missing_becomes_what_is_asked(
    values: list[object], width: int
) -> None:
    got = as_text(pd.Series(values, dtype=object), width, missing="")
    for value, out in zip(values, got, strict=True):
        assert out == (value if isinstance(value, str) else "")


def test_what_is_not_a_whole_number_is_left_for_the_checks() -> None:
    values = pd.Series([1.5, True, float("inf"), 2.0**60, -3], dtype=object)
    got = as_text(values, 4).tolist()
    assert got[:4] == [1.5, True, float("inf"), 2.0**60]
    assert got[4] == "-003"  # text, but not digits: code_width_ok says so
    assert not code_width_ok(pd.Series(got), 4).any()


def test_code_width_ok_wants_ascii_digits_of_the_exact_width() -> None:
    codes = pd.Series(["150823", "１５０８２３", "15082", "15082a", "", None, 150823, 150823.0])
    expected = [True, False, False, False, False, False, True, True]
    assert code_width_ok(codes, 6).tolist() == expected


def test_as_text_keeps_the_index() -> None:
    values = pd.Series([5, 6], index=[10, 20])
    assert as_text(values, 3).to_dict() == {10: "005", 20: "006"}
