"""Hierarchical grid codes.

A code is the parent's code followed by a fixed-width sequence number
(GB/T 30428.1 practice): ``150823`` (county) + ``100`` (town) + ``001``
(grid) + ``001`` (micro-grid). Each level appends its own number of digits
(:attr:`gridgeo.config.Level.code_digits`), so any widths work: the national
12-digit statistical division code (统计用区划代码) is county 6 + town 3 +
village 3 (``150823100001``), a city may add 2 digits for its counties.

Children are numbered in reading order inside their parent: row by row from
north to south, and west to east within a row. Rows are bands of equal
height, as many as the square root of the number of children, so a compact
parent reads like a page.

This module is the one place where codes become text (:func:`as_text`): a
driver may hand back a DBF numeric field or a GeoJSON number, and the leading
zeros it lost are restored from the level's code width.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo.errors import CodeError

__all__ = ["as_text", "code_width_ok", "number_children", "reading_order"]

_INTEGER_TYPES = (
    int,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
)
_FLOAT_TYPES = (float, np.float16, np.float32, np.float64)
_EXACT_FLOAT = 2**53
"""Integers up to this are exact in a float; a float code above it has lost digits."""


def as_text(values: Any, width: int = 0, *, missing: object = None) -> pd.Series:
    """Codes as text: numbers become decimal digits zero-padded to ``width``.

    A driver may hand back codes as integers or floats (a DBF numeric field, a
    GeoJSON number, an Excel cell); the leading zeros they lost are restored
    from ``width``, the level's code length. Text is left exactly as it is
    (``"0150823"`` stays seven characters, so the code checks can report it),
    and so is anything that is not a whole number (``1.5``, ``True``, a float
    above 2**53 whose last digits are already lost): the code checks report
    those too. Vectorised; the index of ``values`` is kept.

    Parameters
    ----------
    values : pandas.Series or array_like
        Codes as read: text, integers, floats, missing values, or a mix.
    width : int, default 0
        Total digits of a code of this level (:attr:`Level.code_length
        <gridgeo.config.Level>`); ``0`` pads nothing.
    missing : object, default None
        What a missing value (``None``, ``NaN``, ``pd.NA``) becomes; ``""``
        for an empty parent code.

    Returns
    -------
    pandas.Series
        Of dtype ``object``: ``str`` for every code, ``missing`` for missing ones.

    Examples
    --------
    >>> as_text(pd.Series([50823100, 150823101]), 9).tolist()
    ['050823100', '150823101']
    >>> as_text([150823100001.0, float("nan"), "0150823", 1.5], 12).tolist()
    ['150823100001', None, '0150823', 1.5]
    >>> as_text(pd.Series([None, 150823], dtype="Int64"), missing="").tolist()
    ['', '150823']
    """
    if width < 0:
        raise ValueError(f"width must be 0 or a number of digits, not {width!r}")
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    out = series.astype(object)
    absent = out.isna().to_numpy()
    dtype = series.dtype
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        whole = ~absent & pd.api.types.is_integer_dtype(dtype)
        floats = ~absent & pd.api.types.is_float_dtype(dtype)
    else:  # text, booleans or a mix: by each value's type
        kinds = out.map(type)
        whole = kinds.isin(_INTEGER_TYPES).to_numpy() & ~absent
        floats = kinds.isin(_FLOAT_TYPES).to_numpy() & ~absent
    if floats.any():
        number = out[floats].astype(float).to_numpy()
        integral = np.isfinite(number) & (np.floor(number) == number)
        integral &= np.abs(number) <= _EXACT_FLOAT
        converted = np.flatnonzero(floats)[integral]
        out.iloc[converted] = number[integral].astype(np.int64)
        whole[converted] = True
    if whole.any():
        text = out[whole].astype(str)
        out[whole] = text.str.zfill(width) if width else text
    out[absent] = missing
    return out


def reading_order(points: gpd.GeoSeries, groups: pd.Series) -> np.ndarray:
    """Rank (0-based) of each point inside its group, north→south then west→east.

    ``points`` are representative points in any CRS whose y grows northwards;
    ``groups`` labels each point's parent. Vectorised over all groups.

    >>> from shapely import points
    >>> pts = gpd.GeoSeries(points([[0, 10], [5, 10], [0, 0], [5, 0]]))
    >>> reading_order(pts, pd.Series(["a"] * 4)).tolist()
    [0, 1, 2, 3]
    """
    x = points.x.to_numpy()
    y = points.y.to_numpy()
    frame = pd.DataFrame({"g": groups.to_numpy(), "x": x, "y": y})
    by = frame.groupby("g", sort=False)
    n = by["y"].transform("size").to_numpy()
    top = by["y"].transform("max").to_numpy()
    bottom = by["y"].transform("min").to_numpy()
    rows = np.ceil(np.sqrt(n))
    height = np.where(top > bottom, (top - bottom) / rows, 1.0)
    band = np.minimum(np.floor((top - y) / height), rows - 1)
    frame["band"] = band
    order = frame.sort_values(["g", "band", "x", "y"], kind="stable")
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order.index.to_numpy()] = order.groupby("g", sort=False).cumcount().to_numpy()
    return rank


def number_children(children: gpd.GeoDataFrame, parent_codes: pd.Series, digits: int) -> pd.Series:
    """Codes for ``children``: each parent's code plus a ``digits``-wide sequence.

    Numbering follows :func:`reading_order` of each child's representative
    point, so it is stable: the same polygons always get the same codes,
    whatever their row order. Any ``digits`` works (3 for a town or village
    of the national 12-digit code, 2 for a city's counties).

    Parameters
    ----------
    children : geopandas.GeoDataFrame
        The polygons to number.
    parent_codes : pandas.Series
        Each child's parent code, aligned with ``children`` by position. Give
        them as text: numbers are turned into text by :func:`as_text`, which
        cannot know a lost leading zero without a width.
    digits : int
        Digits each child adds to its parent's code (at least 1).

    Returns
    -------
    pandas.Series
        The codes as text, indexed like ``children``.

    Raises
    ------
    CodeError
        A parent has more children than ``digits`` can number, or a parent
        code is missing.

    Examples
    --------
    >>> from shapely import box
    >>> kids = gpd.GeoDataFrame(geometry=[box(1, 0, 2, 1), box(0, 0, 1, 1)])
    >>> number_children(kids, pd.Series(["150823100"] * 2), 3).tolist()
    ['150823100002', '150823100001']
    >>> number_children(kids, pd.Series(["1508"] * 2), 2).tolist()
    ['150802', '150801']
    """
    if int(digits) != digits or digits < 1:
        raise ValueError(f"digits must be a positive whole number, not {digits!r}")
    parents = as_text(parent_codes.reset_index(drop=True)).set_axis(children.index)
    if parents.isna().any():
        row = int(np.flatnonzero(parents.isna().to_numpy())[0])
        raise CodeError(
            f"row {row}: the parent code is missing, so the child cannot be numbered. "
            "Give every child its parent's code (assign them with gridgeo.assign)."
        )
    limit = 10**digits - 1
    counts = parents.value_counts()
    if len(counts) and counts.max() > limit:
        raise CodeError(
            f"parent {counts.idxmax()} has {counts.max()} children, but {digits} digit(s) "
            f"number at most {limit}. Give the level more digits (Level.code_digits) or "
            "split the parent."
        )
    rank = reading_order(children.geometry.representative_point(), parents)
    seq = pd.Series(rank + 1, index=children.index).astype(str).str.zfill(int(digits))
    return parents.astype(str) + seq


def code_width_ok(codes: pd.Series, length: int) -> pd.Series:
    """Boolean mask: ``codes`` that are text of exactly ``length`` decimal digits.

    Any width works, up to the 12 digits of the national statistical division
    code (统计用区划代码) and beyond. Missing values, numbers and non-digits are
    ``False``; whole numbers are read as their digits (:func:`as_text`, no
    padding: a number has no leading zeros to count).

    Examples
    --------
    >>> code_width_ok(pd.Series(["150823100001", "15082310001", "15082310000a", None]), 12).tolist()
    [True, False, False, False]
    >>> code_width_ok(pd.Series(["1508", 1508, 1508.0, "１５０８"]), 4).tolist()
    [True, True, True, False]
    """
    text = as_text(codes)
    text = text.where(text.map(type).eq(str).to_numpy(), None).astype("string")
    digits = text.str.fullmatch(r"[0-9]+").fillna(False).astype(bool)
    return (text.str.len() == length).fillna(False).astype(bool) & digits
