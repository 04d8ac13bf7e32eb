"""Tests of gridgeo.io: round trips through real files, encodings, errors, atomic writes."""

from __future__ import annotations

import os
import string
import struct
import tempfile
import time
import tracemalloc
import warnings
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import LineString, Polygon, box

import gridgeo.io.shapefile as gshp
import gridgeo.io.write as gio
from gridgeo.errors import (
    CrsError,
    DataFileError,
    EncodingError,
    GeometryError,
    LayerError,
    SchemaError,
    cli_voice,
)
from gridgeo.io import detect_encoding, read_layer, read_system, write_layer, write_system
from gridgeo.model import GridSystem

CRS = "EPSG:4490"


def _layer(rows: list[dict], boxes: list[tuple[float, float, float, float]]):
    return gpd.GeoDataFrame(rows, geometry=[box(*b) for b in boxes], crs=CRS)


@cache
def _system() -> GridSystem:
    banner = _layer(
        [
            {
                "code": "150823",
                "name": "乌拉特前旗",
                "parent_code": "",
                "households": 1000,
                "residents": 2600,
            }
        ],
        [(108.5, 40.7, 108.7, 40.8)],
    )
    town = _layer(
        [
            {
                "code": "150823100",
                "name": "乌拉山镇",
                "parent_code": "150823",
                "households": 600,
                "residents": 1500,
                "leader": "张伟",
            },
            {
                "code": "150823101",
                "name": "白彦花镇",
                "parent_code": "150823",
                "households": 400,
                "residents": 1100,
                "leader": "巴特尔·其其格",
            },
        ],
        [(108.5, 40.7, 108.6, 40.8), (108.6, 40.7, 108.7, 40.8)],
    )
    grid_rows = [
        ("150823100001", "乌拉山镇第一网格", "150823100", "城镇", "乌拉山社区", "李娜"),
        ("150823100002", "乌拉山镇第二网格", "150823100", "城镇", "新华社区", "王芳"),
        ("150823101001", "白彦花镇第一网格", "150823101", "农村牧区", "长胜村", "刘洋"),
        ("150823101002", "白彦花镇第二网格", "150823101", "农村牧区", "白彦花村", "其木格"),
    ]
    grid = _layer(
        [
            {
                "code": code,
                "name": name,
                "parent_code": parent,
                "households": 250 + i,
                "residents": 600 + 10 * i,
                "grid_type": kind,
                "community": community,
                "general_grid": "综合网格",
                "leader": leader,
            }
            for i, (code, name, parent, kind, community, leader) in enumerate(grid_rows)
        ],
        [
            (108.5, 40.7, 108.6, 40.75),
            (108.5, 40.75, 108.6, 40.8),
            (108.6, 40.7, 108.7, 40.75),
            (108.6, 40.75, 108.7, 40.8),
        ],
    )
    edges = [108.5, 108.53, 108.56, 108.6]
    micro = _layer(
        [
            {
                "code": f"150823100001{i + 1:03d}",
                "name": f"{'一二三'[i]}号微网格",
                "parent_code": "150823100001",
                "households": 80 + i,
                "residents": 200 + i,
                "leader": ["赵敏", "孙丽", "周强"][i],
            }
            for i in range(3)
        ],
        [(edges[i], 40.7, edges[i + 1], 40.75) for i in range(3)],
    )
    party = _layer(
        [
            {"code": "DJ001", "name": "乌拉山镇党建网格", "parent_code": "150823"},
            {"code": "DJ002", "name": "白彦花镇党建网格", "parent_code": "150823"},
        ],
        [(108.5, 40.7, 108.6, 40.8), (108.6, 40.7, 108.7, 40.8)],
    )
    layers = {"banner": banner, "town": town, "grid": grid, "micro_grid": micro}
    return GridSystem.from_layers({**layers, "party_grid": party})


@pytest.fixture
def system() -> GridSystem:
    return _system()


def _all_layers(system: GridSystem) -> dict[str, gpd.GeoDataFrame]:
    return {**system.levels, **system.sources}


def _assert_same(read: GridSystem, written: GridSystem, *, exact: bool) -> None:
    """Same layers, columns, values (codes as str) and geometry."""
    assert read.counts() == written.counts()
    assert set(read.sources) == set(written.sources)
    theirs = _all_layers(read)
    for name, expected in _all_layers(written).items():
        got = theirs[name]
        assert list(got.columns) == list(expected.columns), name
        attrs = [c for c in expected.columns if c != "geometry"]
        assert got[attrs].astype(object).to_dict("list") == expected[attrs].astype(object).to_dict(
            "list"
        ), name
        for column in ("code", "parent_code"):
            assert all(type(value) is str for value in got[column]), (name, column)
        if exact:
            assert got.geometry.to_wkb().tolist() == expected.geometry.to_wkb().tolist()
        else:  # Shapefile stores rings clockwise; the coordinates themselves are exact
            assert (
                got.geometry.normalize()
                .geom_equals_exact(expected.geometry.normalize(), tolerance=0)
                .all()
            ), name
        assert got.crs == expected.crs


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- round trips -----------------------------------------------------------------------------
def test_shapefile_round_trip_utf8(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner")
    assert folder == tmp_path / "banner"
    assert (folder / "town.cpg").read_text().strip() == "UTF-8"
    assert detect_encoding(folder / "town.shp") == "UTF-8"
    fields = list(pyogrio.read_info(folder / "grid.shp")["fields"])
    assert {"parent", "househlds", "gen_grid"} <= set(fields)
    assert max(len(f.encode()) for f in fields) <= 10
    read = read_system(folder)
    _assert_same(read, system, exact=False)
    assert read["town"]["name"].tolist() == ["乌拉山镇", "白彦花镇"]
    assert "general_grid" in read["grid"].columns
    assert read.origin == str(folder)


def test_shapefile_round_trip_gbk_with_cpg(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner", encoding="GBK")
    assert (folder / "town.cpg").read_text().strip() == "GBK"
    assert "乌拉山镇".encode("gbk") in (folder / "town.dbf").read_bytes()
    assert detect_encoding(folder / "town.shp") == "GBK"
    _assert_same(read_system(folder), system, exact=False)


def test_shapefile_round_trip_gbk_without_cpg(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner", encoding="GBK")
    for cpg in folder.glob("*.cpg"):
        cpg.unlink()
    assert detect_encoding(folder / "town.shp") in {"GBK", "GB18030"}
    read = read_system(folder)
    assert read["town"]["name"].tolist() == ["乌拉山镇", "白彦花镇"]
    assert read["town"]["leader"].tolist() == ["张伟", "巴特尔·其其格"]
    _assert_same(read, system, exact=False)
    # an explicit encoding is used as given (and checked)
    town = read_layer(folder / "town.shp", encoding="GBK")
    assert town["name"].tolist() == ["乌拉山镇", "白彦花镇"]


def test_gbk_bytes_that_are_also_valid_utf8_read_as_gbk(tmp_path: Path) -> None:
    # "一" is D2 BB and "专业" D7 A8 D2 B5 in GBK: valid UTF-8 too ("һ", "רҵ").
    names = ["一", "专业"]
    frame = _layer(
        [{"code": "1", "name": names[0]}, {"code": "2", "name": names[1]}],
        [(0, 0, 1, 1), (1, 0, 2, 1)],
    )
    shp = write_layer(frame, tmp_path / "x.shp", encoding="GBK")
    shp.with_suffix(".cpg").unlink()
    assert detect_encoding(shp) == "GBK"
    assert read_layer(shp)["name"].tolist() == names


def test_geopackage_round_trip(tmp_path: Path, system: GridSystem) -> None:
    path = write_system(system, tmp_path / "banner.gpkg")
    layers = [name for name, _ in pyogrio.list_layers(path)]
    assert layers == ["banner", "town", "grid", "micro_grid", "party_grid"]
    read = read_system(path)
    _assert_same(read, system, exact=True)
    assert list(read.sources) == ["party_grid"]


def test_geoparquet_round_trip(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner", format="parquet")
    assert sorted(p.name for p in folder.iterdir()) == [
        "banner.parquet",
        "grid.parquet",
        "micro_grid.parquet",
        "party_grid.parquet",
        "town.parquet",
    ]
    _assert_same(read_system(folder), system, exact=True)


def test_single_layers_and_geopackage_layer_update(tmp_path: Path, system: GridSystem) -> None:
    grid = system["grid"]
    for suffix in (".geojson", ".parquet", ".shp"):
        got = read_layer(write_layer(grid, tmp_path / f"grid{suffix}"))
        assert got["name"].tolist() == grid["name"].tolist()
        assert got["code"].tolist() == grid["code"].tolist()
        assert got.crs == grid.crs
    gpkg = tmp_path / "layers.gpkg"
    write_layer(system["town"], gpkg, "town")
    write_layer(grid, gpkg, "grid")
    write_layer(grid.iloc[:2], gpkg, "grid")  # replaces grid, keeps town
    assert sorted(name for name, _ in pyogrio.list_layers(gpkg)) == ["grid", "town"]
    assert len(read_layer(gpkg, "grid")) == 2
    assert read_layer(gpkg, "town")["name"].tolist() == ["乌拉山镇", "白彦花镇"]
    with pytest.raises(LayerError, match="pass layer="):
        read_layer(gpkg)
    with pytest.raises(LayerError, match="no layer 'micro_grid'"):
        read_layer(gpkg, "micro_grid")


def test_numeric_codes_come_back_as_zero_padded_text(tmp_path: Path) -> None:
    frame = _layer(
        [
            {"code": 50823100, "name": "甲镇", "parent_code": 50823},
            {"code": 50823101, "name": "乙镇", "parent_code": 50823},
        ],
        [(0, 0, 1, 1), (1, 0, 2, 1)],
    )
    pyogrio.write_dataframe(frame, tmp_path / "town.gpkg", layer="town")
    town = read_layer(tmp_path / "town.gpkg")
    assert town["code"].tolist() == ["050823100", "050823101"]
    assert town["parent_code"].tolist() == ["050823", "050823"]


# -- field names -------------------------------------------------------------------------------
def test_undeclared_long_column_is_a_schema_error(tmp_path: Path, system: GridSystem) -> None:
    grid = system["grid"].assign(leader_phone_no="13800000000")
    wide = system.replace(grid=grid)
    with pytest.raises(SchemaError, match=r"'leader_phone_no'.*field_names="):
        write_system(wide, tmp_path / "banner")
    with pytest.raises(SchemaError, match="leader_phone_no"):
        write_layer(grid, tmp_path / "grid.shp")
    assert list(tmp_path.iterdir()) == []

    mapping = {"leader_phone_no": "leader_tel"}
    folder = write_system(wide, tmp_path / "banner", field_names=mapping)
    assert "leader_tel" in pyogrio.read_info(folder / "grid.shp")["fields"]
    read = read_system(folder, field_names=mapping)
    assert read["grid"]["leader_phone_no"].tolist() == ["13800000000"] * 4


def test_column_named_like_a_short_field_is_refused(tmp_path: Path, system: GridSystem) -> None:
    town = system["town"].assign(parent="x")
    with pytest.raises(SchemaError, match="'parent'"):
        write_layer(town, tmp_path / "town.shp")


def test_text_gbk_cannot_hold_is_refused(tmp_path: Path, system: GridSystem) -> None:
    town = system["town"].copy()
    town.loc[0, "name"] = "乌拉山镇\u9fff"
    with pytest.raises(EncodingError, match="GB18030"):
        write_layer(town, tmp_path / "town.shp", encoding="GBK")
    assert list(tmp_path.iterdir()) == []
    shp = write_layer(town, tmp_path / "town.shp", encoding="GB18030")
    assert read_layer(shp)["name"].tolist() == ["乌拉山镇\u9fff", "白彦花镇"]


# -- atomic writes -------------------------------------------------------------------------------
def _fail_on_call(monkeypatch: pytest.MonkeyPatch, failing: int) -> None:
    """Make the ``failing``-th write step write its file and then fail."""
    original = gio.write_frame
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        original(*args, **kwargs)
        if len(calls) == failing:
            raise OSError("disk full")

    monkeypatch.setattr(gio, "write_frame", flaky)


def _renamed(system: GridSystem) -> GridSystem:
    town = system["town"].assign(name=["新镇甲", "新镇乙"])
    return system.replace(town=town)


@pytest.mark.parametrize("target", ["banner", "banner.gpkg", "parquet"])
def test_failed_system_write_keeps_the_old_one(
    tmp_path: Path, system: GridSystem, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    fmt = "parquet" if target == "parquet" else None
    path = write_system(system, tmp_path / target, format=fmt)
    before = _listing(tmp_path)
    _fail_on_call(monkeypatch, failing=3)
    with pytest.raises(OSError, match="disk full"):
        write_system(_renamed(system), path, format=fmt)
    assert _listing(tmp_path) == before  # no temporary files left behind
    assert read_system(path)["town"]["name"].tolist() == ["乌拉山镇", "白彦花镇"]
    monkeypatch.undo()
    write_system(_renamed(system), path, format=fmt)
    assert _listing(tmp_path) == before
    assert read_system(path)["town"]["name"].tolist() == ["新镇甲", "新镇乙"]


@pytest.mark.parametrize("suffix", [".shp", ".gpkg", ".parquet"])
def test_failed_layer_write_keeps_the_old_file(
    tmp_path: Path, system: GridSystem, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    path = write_layer(system["town"], tmp_path / f"town{suffix}")
    before = _listing(tmp_path)
    _fail_on_call(monkeypatch, failing=1)
    with pytest.raises(OSError, match="disk full"):
        write_layer(_renamed(system)["town"], path)
    assert _listing(tmp_path) == before
    assert read_layer(path)["name"].tolist() == ["乌拉山镇", "白彦花镇"]


def test_folder_with_other_files_is_not_replaced(tmp_path: Path, system: GridSystem) -> None:
    folder = tmp_path / "banner"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(DataFileError, match=r"notes\.txt"):
        write_system(system, folder)
    assert _listing(tmp_path) == ["banner", "banner/notes.txt"]


# -- errors ----------------------------------------------------------------------------------------
def test_missing_paths_and_unknown_formats(tmp_path: Path, system: GridSystem) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        read_system(tmp_path / "nowhere")
    with pytest.raises(DataFileError, match="does not exist"):
        read_layer(tmp_path / "nowhere.shp")
    with pytest.raises(DataFileError, match="holds no layers"):
        read_system(tmp_path)
    (tmp_path / "grid.csv").write_text("code\n1\n")
    with pytest.raises(DataFileError, match=r"\.csv"):
        read_layer(tmp_path / "grid.csv")
    with pytest.raises(DataFileError, match=r"\.csv"):
        read_system(tmp_path / "grid.csv")
    with pytest.raises(DataFileError, match=r"\.zip"):
        write_system(system, tmp_path / "banner.zip")
    shp = write_layer(system["town"], tmp_path / "town.shp")
    with pytest.raises(DataFileError, match="read_layer"):
        read_system(shp)
    shp.with_suffix(".dbf").unlink()
    with pytest.raises(DataFileError, match=r"town\.dbf"):
        read_layer(shp)


def test_geopackage_missing_a_level_is_a_layer_error(tmp_path: Path, system: GridSystem) -> None:
    gpkg = tmp_path / "banner.gpkg"
    for name in ("banner", "town", "grid"):
        write_layer(system[name], gpkg, name)
    with pytest.raises(LayerError, match="micro_grid"):
        read_system(gpkg)


def test_shapefile_without_prj_is_a_crs_error(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner")
    (folder / "town.prj").unlink()
    with pytest.raises(CrsError, match=r"town\.shp.*\.prj"):
        read_system(folder)


def test_undecodable_dbf_is_an_encoding_error(tmp_path: Path, system: GridSystem) -> None:
    shp = write_layer(system["town"], tmp_path / "town.shp")
    shp.with_suffix(".cpg").unlink()
    dbf = shp.with_suffix(".dbf")
    name = "乌拉山镇".encode()
    data = dbf.read_bytes()
    assert name in data
    dbf.write_bytes(data.replace(name, b"\xff\xfe" * (len(name) // 2)))
    with pytest.raises(EncodingError, match="encoding=") as info:
        detect_encoding(shp)
    assert "town" in str(info.value) and "row 0" in str(info.value)
    with pytest.raises(EncodingError, match="encoding="):
        read_layer(shp)


def test_cpg_that_does_not_fit_the_bytes_is_an_encoding_error(
    tmp_path: Path, system: GridSystem
) -> None:
    shp = write_layer(system["town"], tmp_path / "town.shp", encoding="GBK")
    shp.with_suffix(".cpg").write_text("UTF-8")
    with pytest.raises(EncodingError, match=r"town\.cpg"):
        read_layer(shp)
    shp.with_suffix(".cpg").write_text("KLINGON")
    with pytest.raises(EncodingError, match="KLINGON"):
        detect_encoding(shp)
    shp.with_suffix(".cpg").write_text("936")  # ArcGIS writes code page numbers
    assert detect_encoding(shp) == "GBK"


def test_chinese_field_names_alone_reveal_gbk(tmp_path: Path) -> None:
    frame = _layer([{"code": "1", "name": "a", "网格员姓名": "Zhang"}], [(0, 0, 1, 1)])
    with pytest.raises(SchemaError, match="15 bytes"):  # 5 characters are 15 bytes in UTF-8
        write_layer(frame, tmp_path / "x.shp")
    shp = write_layer(frame, tmp_path / "x.shp", encoding="GBK")  # 10 bytes in GBK
    shp.with_suffix(".cpg").unlink()
    assert detect_encoding(shp) == "GBK"
    assert list(read_layer(shp).columns) == ["code", "name", "网格员姓名", "geometry"]


def test_encoding_names_are_normalised(tmp_path: Path, system: GridSystem) -> None:
    shp = write_layer(system["town"], tmp_path / "town.shp", "whatever", encoding="cp936")
    assert shp.with_suffix(".cpg").read_text().strip() == "GBK"
    assert read_layer(shp, encoding="936")["name"].tolist() == ["乌拉山镇", "白彦花镇"]
    with pytest.raises(EncodingError, match="KLINGON"):
        write_layer(system["town"], tmp_path / "town.shp", encoding="KLINGON")


# -- property ---------------------------------------------------------------------------
_NAMES = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.sampled_from(string.ascii_letters),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=25, deadline=None)
@given(names=st.lists(_NAMES, min_size=2, max_size=2))
def test_random_names_round_trip(names: list[str]) -> None:
    town = _system()["town"].assign(name=names)
    try:
        "".join(names).encode("gbk")
        encoding = "GBK"
    except UnicodeEncodeError:  # U+9FA6..U+9FFF are only in GB18030, GBK's superset
        encoding = "GB18030"
    with tempfile.TemporaryDirectory() as folder:
        shp = write_layer(town, Path(folder) / "town.shp", encoding=encoding)
        shp.with_suffix(".cpg").unlink()
        try:
            detected = detect_encoding(shp)
        except EncodingError as exc:
            # A few rare ideographs can read as common Big5 characters just as well:
            # then gridgeo asks for the encoding instead of guessing.
            assert "encoding='GBK'" in str(exc) and "encoding='big5'" in str(exc)
        else:
            assert detected == encoding  # never another encoding, never mojibake
            assert read_layer(shp)["name"].tolist() == names
        assert read_layer(shp, encoding=encoding)["name"].tolist() == names
        gpkg = write_layer(town, Path(folder) / "town.gpkg")
        assert read_layer(gpkg)["name"].tolist() == names


_COMMON_HANZI = sorted(
    {
        bytes((lead, trail)).decode("gb2312", "ignore")
        for lead in range(0xB0, 0xD8)
        for trail in range(0xA1, 0xFF)
    }
    - {""}
)
"""The 3,755 level-1 characters of GB2312: the common characters of names."""


@settings(max_examples=25, deadline=None)
@given(
    names=st.lists(
        st.text(
            alphabet=st.one_of(st.sampled_from(_COMMON_HANZI), st.sampled_from("0123456789")),
            min_size=2,
            max_size=10,
        ).filter(lambda name: not name.isascii()),
        min_size=2,
        max_size=2,
    )
)
def test_common_chinese_names_are_always_detected_as_gbk(names: list[str]) -> None:
    town = _system()["town"].assign(name=names, leader="")
    with tempfile.TemporaryDirectory() as folder:
        shp = write_layer(town, Path(folder) / "town.shp", encoding="GBK")
        shp.with_suffix(".cpg").unlink()
        assert detect_encoding(shp) == "GBK"
        assert read_layer(shp)["name"].tolist() == names


@pytest.mark.parametrize(
    ("prj", "needle"),
    [
        ('GEOGCS["nonsense",FOO]', "unknown coordinate reference system"),
        ('LOCAL_CS["site grid",UNIT["metre",1]]', "not tied to the earth"),
    ],
)
def test_unknown_crs_is_a_crs_error_naming_the_file(
    tmp_path: Path, system: GridSystem, prj: str, needle: str
) -> None:
    folder = write_system(system, tmp_path / "shp")
    (folder / "town.prj").write_text(prj, encoding="utf-8")
    with pytest.raises(CrsError, match=needle) as info:
        read_system(folder)
    assert "town" in str(info.value)


# -- reading broken and foreign inputs -----------------------------------------------------
_TRADITIONAL = ["烏拉山鎮", "白彥花鎮", "臺灣省", "新華社區第一網格", "復勝村", "長勝村", "信義區"]
_KOREAN = ["서울특별시", "부산광역시", "종로구 청운동"]
_JAPANESE = ["東京都千代田区", "大阪市北区", "札幌市中央区"]
_SIMPLIFIED = ["乌拉山镇", "白彦花镇", "新华社区第一网格"]


def _names_layer(names: list[str]) -> gpd.GeoDataFrame:
    return _layer(
        [{"code": str(i), "name": name, "parent_code": ""} for i, name in enumerate(names)],
        [(i, 0, i + 1, 1) for i in range(len(names))],
    )


def _set_language_byte(shp: Path, ldid: int) -> None:
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[29] = ldid
    dbf.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("ldid", "written", "expected", "names"),
    [
        (0x78, "big5", "CP950", _TRADITIONAL),
        (0x4F, "big5", "CP950", _TRADITIONAL),
        (0x79, "CP949", "CP949", _KOREAN),
        (0x4E, "CP949", "CP949", _KOREAN),
        (0x7B, "CP932", "CP932", _JAPANESE),
        (0x13, "CP932", "CP932", _JAPANESE),
        (0x7A, "GBK", "GBK", _SIMPLIFIED),
        (0x4D, "GBK", "GBK", _SIMPLIFIED),
    ],
)
def test_cjk_language_bytes_of_the_dbf_header_are_followed(
    tmp_path: Path, ldid: int, written: str, expected: str, names: list[str]
) -> None:
    shp = write_layer(_names_layer(names), tmp_path / "x.shp", encoding=written)
    shp.with_suffix(".cpg").unlink()
    _set_language_byte(shp, ldid)
    assert detect_encoding(shp) == expected
    assert read_layer(shp)["name"].tolist() == names


def test_big5_without_any_declaration_is_detected(tmp_path: Path) -> None:
    shp = write_layer(_names_layer(_TRADITIONAL), tmp_path / "x.shp", encoding="big5")
    shp.with_suffix(".cpg").unlink()
    assert shp.with_suffix(".dbf").read_bytes()[29] == 0  # the header says nothing
    assert detect_encoding(shp) == "CP950"
    assert read_layer(shp)["name"].tolist() == _TRADITIONAL


def test_text_that_only_reads_with_private_use_characters_is_refused(tmp_path: Path) -> None:
    # A1 80 is a user-defined GB18030 code (in the Private Use Area); it is not
    # valid UTF-8, GBK or Big5. Read as GB18030 the names would be mojibake.
    shp = write_layer(_names_layer(["ab", "cd"]), tmp_path / "x.shp")
    shp.with_suffix(".cpg").unlink()
    dbf = shp.with_suffix(".dbf")
    dbf.write_bytes(dbf.read_bytes().replace(b"ab", b"\xa1\x80", 1))
    with pytest.raises(EncodingError, match=r"encoding='big5'") as info:
        read_layer(shp)
    message = str(info.value)
    assert "x.shp" in message and "row 0, field 'name'" in message
    assert "not plausible" in message
    with cli_voice(), pytest.raises(EncodingError, match=r"--encoding 'big5'"):
        detect_encoding(shp)
    # whoever knows the file uses user-defined characters can still read it
    private = b"\xa1\x80".decode("gb18030")
    assert "\ue000" <= private <= "\uf8ff"
    assert read_layer(shp, encoding="GB18030")["name"].tolist() == [private, "cd"]


def test_declared_gb18030_that_reads_into_private_use_is_refused(tmp_path: Path) -> None:
    shp = write_layer(_names_layer(_TRADITIONAL), tmp_path / "x.shp", encoding="big5")
    shp.with_suffix(".cpg").write_text("GB18030")
    with pytest.raises(EncodingError, match=r"x\.cpg.*private-use characters"):
        read_layer(shp)
    # encoding= replaces a .cpg that does not fit the bytes
    assert read_layer(shp, encoding="big5")["name"].tolist() == _TRADITIONAL


def test_gbk_or_big5_ambiguity_asks_for_the_encoding(tmp_path: Path) -> None:
    # The Big5 bytes of 信義區 are also valid GBK and read as three Chinese characters,
    # though less common ones: a guess either way could be wrong.
    raw = "信義區".encode("big5")
    assert raw.decode("gbk") != "信義區"
    shp = write_layer(_names_layer(["信義區"]), tmp_path / "x.shp", encoding="big5")
    shp.with_suffix(".cpg").unlink()
    with pytest.raises(EncodingError, match="cannot tell whether") as info:
        detect_encoding(shp)
    assert "'信義區' in Big5" in str(info.value)
    assert f"{raw.decode('gbk')!r} in GBK" in str(info.value)
    assert read_layer(shp, encoding="big5")["name"].tolist() == ["信義區"]


def test_encoding_applies_to_layers_without_cpg(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner")  # UTF-8, with .cpg files
    write_layer(system["town"], folder / "town.shp", encoding="GBK")
    (folder / "town.cpg").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the correct sibling .cpg files raise no warning
        read = read_system(folder, encoding="GBK")
    _assert_same(read, system, exact=False)


def test_encoding_that_disagrees_with_a_fitting_cpg_is_reported(
    tmp_path: Path, system: GridSystem
) -> None:
    # Big5 bytes that GBK also reads, as plausibly: the .cpg is followed, and named
    shp = write_layer(_names_layer(["信義區"]), tmp_path / "x.shp", encoding="big5")
    assert shp.with_suffix(".cpg").read_text() == "BIG5"
    with pytest.warns(UserWarning, match=r"x\.cpg says the text is BIG5.*encoding='GBK'"):
        frame = read_layer(shp, encoding="GBK")
    assert frame["name"].tolist() == ["信義區"]


def test_encoding_that_fits_no_layer_names_the_layer(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner")
    write_layer(system["town"], folder / "town.shp", encoding="GBK")
    (folder / "town.cpg").unlink()
    with pytest.raises(EncodingError) as info:
        read_system(folder, encoding="UTF-8")
    message = str(info.value)
    assert "town.shp" in message and "not valid UTF-8" in message
    assert ".cpg" not in message.split("add")[0]  # no sibling .cpg is blamed


@pytest.mark.parametrize(
    "content",
    [b"UTF\x00-8", b"\x00\x00\x00\x00", b"\x8d\xc6\x0f(\xd6\xf3&\xe0", b"A" * 5000],
    ids=["null inside", "only nulls", "random bytes", "5000 bytes"],
)
def test_garbage_cpg_is_an_encoding_error_naming_it(
    tmp_path: Path, system: GridSystem, content: bytes
) -> None:
    folder = write_system(system, tmp_path / "banner")
    (folder / "town.cpg").write_bytes(content)
    with pytest.raises(EncodingError, match=r"town\.cpg") as info:
        read_system(folder)
    assert "encoding=" in str(info.value)
    with cli_voice(), pytest.raises(EncodingError, match="--encoding 'GBK'"):
        read_system(folder)
    # encoding= replaces a damaged .cpg
    assert read_system(folder, encoding="UTF-8")["town"]["name"].tolist() == [
        "乌拉山镇",
        "白彦花镇",
    ]


@pytest.mark.parametrize("target", ["banner.gpkg", "banner"])
def test_unrelated_layers_are_ignored_and_named(
    tmp_path: Path, system: GridSystem, target: str
) -> None:
    path = write_system(system, tmp_path / target)
    roads = gpd.GeoDataFrame(
        {"code": ["G7"], "name": ["京新高速"], "parent_code": [""], "lanes": [4]},
        geometry=[box(108.5, 40.7, 108.7, 40.701)],
        crs=CRS,
    )
    # no CRS and not a grid at all: reading it would fail, so it must not be read
    buildings = gpd.GeoDataFrame(
        {"floors": [3]}, geometry=[LineString([(108.5, 40.7), (108.51, 40.71)])]
    )
    if target.endswith(".gpkg"):
        pyogrio.write_dataframe(roads, path, layer="roads")
        pyogrio.write_dataframe(buildings, path, layer="buildings")  # no CRS: never read
    else:
        pyogrio.write_dataframe(roads, path / "roads.shp")
        pyogrio.write_dataframe(buildings, path / "buildings.shp")
    with pytest.warns(UserWarning, match=r"ignored layer\(s\) \['buildings', 'roads'\]"):
        read = read_system(path)
    _assert_same(read, system, exact=target.endswith(".gpkg"))
    assert list(read.sources) == ["party_grid"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = read_system(path, sources=["party_grid", "roads"])
    assert kept.sources["roads"]["lanes"].tolist() == [4]


def test_garbage_prj_is_named_as_unreadable(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner")
    (folder / "town.prj").write_bytes(bytes(range(256)) * 2)
    with pytest.raises(CrsError, match=r"town\.prj cannot be read") as info:
        read_system(folder)
    assert "has no .prj" not in str(info.value)
    assert "00 01 02 03" in str(info.value)  # shows what the file holds
    (folder / "town.prj").write_text("hello, world")
    with pytest.raises(CrsError, match=r"town\.prj cannot be read.*'hello, world'"):
        read_system(folder)


def test_truncated_shp_is_named_as_truncated(tmp_path: Path, system: GridSystem) -> None:
    folder = write_system(system, tmp_path / "banner")
    shp = folder / "grid.shp"
    full = shp.stat().st_size
    os.truncate(shp, full - 60)
    with pytest.raises(DataFileError, match=r"grid\.shp is truncated") as info:
        read_system(folder, strict=False)
    assert f"{full:,} bytes" in str(info.value) and f"{full - 60:,}" in str(info.value)
    assert "geometry is missing" not in str(info.value)
    # a header rewritten to the cut length: the .shx still shows rows beyond the end
    data = bytearray(shp.read_bytes())
    data[24:28] = struct.pack(">i", len(data) // 2)
    shp.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=r"grid\.shp is truncated: its index grid\.shx"):
        read_layer(shp)
    shp.write_bytes(b"\x00" * 200)
    with pytest.raises(DataFileError, match=r"grid\.shp is not a Shapefile main file"):
        read_layer(shp)


def test_truncated_shx_is_named_as_truncated(tmp_path: Path, system: GridSystem) -> None:
    shp = write_layer(system["grid"], tmp_path / "grid.shp")
    shx = shp.with_suffix(".shx")
    os.truncate(shx, shx.stat().st_size - 8)
    with pytest.raises(DataFileError, match=r"grid\.shx is truncated"):
        read_layer(shp)


def test_links_that_lead_nowhere_are_named(tmp_path: Path, system: GridSystem) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(DataFileError, match="symbolic link loop"):
        read_system(tmp_path / "a")
    (tmp_path / "loop.shp").symlink_to(tmp_path / "loop.shp")
    with pytest.raises(DataFileError, match="symbolic link loop"):
        read_layer(tmp_path / "loop.shp")
    folder = write_system(system, tmp_path / "banner")
    (folder / "town.shp").unlink()
    (folder / "town.shp").symlink_to(tmp_path / "gone.shp")
    with pytest.raises(DataFileError, match=r"town\.shp is a broken symbolic link.*gone\.shp"):
        read_system(folder)
    with pytest.raises(DataFileError, match="does not exist"):
        read_layer(tmp_path / "nowhere.gpkg")


def _peak_bytes(action) -> tuple[int, float]:
    """Peak Python allocation and seconds while ``action()`` runs; returns its exception."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, time.perf_counter() - start


def test_sparse_dbf_is_refused_early_with_bounded_memory(
    tmp_path: Path, system: GridSystem
) -> None:
    shp = write_layer(system["town"], tmp_path / "town.shp")
    dbf = shp.with_suffix(".dbf")
    count, header, record = struct.unpack("<IHH", dbf.read_bytes()[4:12])
    size = 400 * 1024**2  # sparse: costs no disk
    os.truncate(dbf, size)
    assert dbf.stat().st_blocks * 512 < 1024**2

    def read() -> None:
        with pytest.raises(DataFileError, match=rf"town\.dbf is damaged.*{count} records"):
            read_layer(shp)

    peak, seconds = _peak_bytes(read)
    assert peak < 16 * 1024**2 and seconds < 5

    # A header that agrees with the size: the records themselves are zeros
    rows = (size - header) // record
    os.truncate(dbf, header + rows * record)
    with dbf.open("r+b") as file:
        file.seek(4)
        file.write(struct.pack("<I", rows))

    def read_zeros() -> None:
        with pytest.raises(DataFileError, match=rf"record {count} does not start with a record"):
            read_layer(shp)

    peak, seconds = _peak_bytes(read_zeros)
    assert peak < 16 * 1024**2 and seconds < 5


def test_truncated_dbf_is_named(tmp_path: Path, system: GridSystem) -> None:
    shp = write_layer(system["grid"], tmp_path / "grid.shp")
    dbf = shp.with_suffix(".dbf")
    os.truncate(dbf, dbf.stat().st_size - 100)
    with pytest.raises(DataFileError, match=r"grid\.dbf is truncated: its header declares 4 "):
        read_layer(shp)


def test_dbf_is_read_in_chunks(
    tmp_path: Path, system: GridSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _names_layer([f"甲{i}" for i in range(9)])
    shp = write_layer(frame, tmp_path / "x.shp", encoding="GBK")
    shp.with_suffix(".cpg").unlink()
    dbf = shp.with_suffix(".dbf")
    record = struct.unpack("<H", dbf.read_bytes()[10:12])[0]
    monkeypatch.setattr(gshp, "_CHUNK_BYTES", 2 * record)  # 5 chunks of 2 rows
    assert detect_encoding(shp) == "GBK"
    data = dbf.read_bytes()
    dbf.write_bytes(data.replace("甲7".encode("gbk"), b"\xff\xfe7"))
    with pytest.raises(EncodingError, match="row 7, field 'name'"):
        read_layer(shp, encoding="GBK")


@pytest.mark.parametrize("target", ["banner", "banner.gpkg", "parquet"])
def test_crs_reads_back_the_same_from_every_format(
    tmp_path: Path, system: GridSystem, target: str
) -> None:
    fmt = "parquet" if target == "parquet" else None
    read = read_system(write_system(system, tmp_path / target, format=fmt))
    assert str(read.crs) == "EPSG:4490"
    assert read.crs == system.crs
    for frame in _all_layers(read).values():
        assert frame.crs.srs == "EPSG:4490"


def test_crs_without_an_authority_code_is_kept(tmp_path: Path) -> None:
    custom = "+proj=tmerc +lat_0=0 +lon_0=108.3 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m"
    frame = _names_layer(["甲"]).set_crs(custom, allow_override=True)
    frame.to_parquet(tmp_path / "x.parquet")
    got = read_layer(tmp_path / "x.parquet")
    assert got.crs == frame.crs and got.crs.to_epsg() is None


def test_field_names_cut_by_other_software_are_recognised(
    tmp_path: Path, system: GridSystem
) -> None:
    grid = system["grid"]
    # GDAL itself cuts parent_code to parent_cod and general_grid to general_gr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's "laundered field name" warnings
        pyogrio.write_dataframe(grid.rename(columns={"code": "CODE"}), tmp_path / "grid.shp")
    fields = list(pyogrio.read_info(tmp_path / "grid.shp")["fields"])
    assert {"CODE", "parent_cod", "general_gr"} <= set(fields)
    got = read_layer(tmp_path / "grid.shp")
    assert {"code", "parent_code", "general_grid"} <= set(got.columns)
    assert got["parent_code"].tolist() == grid["parent_code"].tolist()
    # an 8-character cut: households (could also be household_id, which is said)
    cut = grid.rename(columns={"households": "househol", "parent_code": "parent_cod"})
    pyogrio.write_dataframe(cut, tmp_path / "cut.gpkg")
    with pytest.warns(UserWarning, match=r"'househol' was read as 'households'.*household_id"):
        got = read_layer(tmp_path / "cut.gpkg")
    assert got["households"].tolist() == grid["households"].tolist()
    # a column that is already there is never overwritten
    both = grid.assign(parent_cod="x")
    pyogrio.write_dataframe(both, tmp_path / "both.gpkg")
    got = read_layer(tmp_path / "both.gpkg")
    assert got["parent_code"].tolist() == grid["parent_code"].tolist()
    assert got["parent_cod"].tolist() == ["x"] * len(grid)


def test_system_with_cut_field_names_reads(tmp_path: Path, system: GridSystem) -> None:
    folder = tmp_path / "banner"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, frame in _all_layers(system).items():
            pyogrio.write_dataframe(frame, folder / f"{name}.shp", encoding="UTF-8")
    read = read_system(folder)
    assert read["grid"]["parent_code"].tolist() == system["grid"]["parent_code"].tolist()
    assert read["grid"]["general_grid"].tolist() == system["grid"]["general_grid"].tolist()


def _ring(x: float) -> Polygon:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "invalid value" for NaN
        return shapely.polygons(
            [[108.5, 40.7], [x, 40.7], [108.6, 40.8], [108.5, 40.8], [108.5, 40.7]]
        )


_STAND_IN = 108.55
"""GDAL refuses to write NaN and inf: a Shapefile gets this value, then a byte edit."""
_UNFIT = {
    "projected metres": box(500000, 4500000, 501000, 4501000),
    "lat/lon swapped": box(40.7, 108.5, 40.8, 108.6),
    "1e300": box(108.5, 40.7, 1e300, 1e300),
    "inf": _ring(np.inf),
    "nan": _ring(np.nan),
}


def _write_unfit(geometry: Polygon, path: Path) -> None:
    frame = _layer([{"code": "1", "name": "甲", "parent_code": ""}], [(0, 0, 1, 1)])
    frame = frame.set_geometry([geometry], crs=CRS)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".gpkg" or np.isfinite(shapely.get_coordinates(geometry)).all():
        pyogrio.write_dataframe(frame, path)
    else:
        x = shapely.get_coordinates(geometry)[1, 0]
        pyogrio.write_dataframe(frame.set_geometry([_ring(_STAND_IN)], crs=CRS), path)
        data = path.read_bytes()
        assert struct.pack("<d", _STAND_IN) in data
        path.write_bytes(data.replace(struct.pack("<d", _STAND_IN), struct.pack("<d", x)))


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet", ".shp"])
@pytest.mark.parametrize("case", list(_UNFIT))
def test_coordinates_that_do_not_fit_the_crs_still_read(
    tmp_path: Path, suffix: str, case: str
) -> None:
    geometry = _UNFIT[case]
    path = tmp_path / f"x{suffix}"
    _write_unfit(geometry, path)
    got = read_layer(path)
    expected = shapely.get_coordinates(geometry)
    coords = shapely.get_coordinates(got.geometry)
    # a Shapefile stores rings clockwise: compare the coordinates as sets of rows
    assert np.array_equal(np.unique(coords, axis=0), np.unique(expected, axis=0), equal_nan=True)
    assert str(got.crs) == "EPSG:4490"


def test_ring_that_cannot_close_is_a_geometry_error(tmp_path: Path) -> None:
    frame = _names_layer(["甲", "乙"])  # rows 0 and 1, boxes from x=0 and x=1
    shp = write_layer(frame, tmp_path / "x.shp")
    data = shp.read_bytes()
    stand_in = struct.pack("<d", 2.0)  # only row 1's ring reaches x=2, its first vertex
    assert stand_in in data
    shp.write_bytes(data.replace(stand_in, struct.pack("<d", np.nan)))
    with pytest.raises(GeometryError, match=r"x\.shp, row 1: .*NaN"):
        read_layer(shp)


# -- issue 9: real field names, real codes, real coordinates ------------------------------------
def test_geopackage_with_cut_field_names_reads_as_a_system(
    tmp_path: Path, system: GridSystem
) -> None:
    # exported by desktop GIS from a Shapefile: parent_cod and househol, in a GeoPackage
    gpkg = tmp_path / "banner.gpkg"
    for name, frame in system.levels.items():
        cut = frame.rename(columns={"parent_code": "parent_cod", "households": "househol"})
        pyogrio.write_dataframe(cut, gpkg, layer=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "househol" could also be "household_id"
        read = read_system(gpkg)
    for name, frame in system.levels.items():
        assert read[name]["parent_code"].tolist() == frame["parent_code"].tolist()
        assert read[name]["households"].tolist() == frame["households"].tolist()


def test_unrecognisable_parent_field_says_what_is_expected(
    tmp_path: Path, system: GridSystem
) -> None:
    folder = write_system(system, tmp_path / "banner")
    town = read_layer(folder / "town.shp").rename(columns={"parent_code": "PARENTCODE"})
    write_layer(town, folder / "town.shp")
    with pytest.raises(SchemaError) as caught:
        read_system(folder)
    message = str(caught.value)
    assert "town.shp" in message
    assert "'parent_code' is missing" in message
    assert "'code', 'name', 'parent_code'" in message  # what every layer needs
    assert "'parent_code' could be 'PARENTCODE'" in message  # the candidate found
    assert "field_names={'parent_code': 'PARENTCODE'}" in message  # how to declare it
    # and the declaration it proposes works
    read = read_system(folder, field_names={"parent_code": "PARENTCODE"})
    assert read["town"]["parent_code"].tolist() == system["town"]["parent_code"].tolist()
    with cli_voice(), pytest.raises(SchemaError, match="--field-names"):
        read_system(folder)


def test_missing_field_without_a_lookalike_names_every_field_found(
    tmp_path: Path, system: GridSystem
) -> None:
    gpkg = tmp_path / "banner.gpkg"
    for name, frame in system.levels.items():
        write_layer(frame.drop(columns="name") if name == "grid" else frame, gpkg, name)
    with pytest.raises(SchemaError, match=r"layer 'grid'.*'name' is missing.*found \['code'"):
        read_system(gpkg)


def _national_config():
    from gridgeo.config import Coverage, GridConfig, Level

    # 统计用区划代码: county 6 + town 3 + village 3 (a county code with a leading zero,
    # so lost zeros show)
    return GridConfig(
        root_code="050823",
        root_name="测试县",
        levels=(
            Level("county", "县", "county", 6, Coverage.ROOT),
            Level("township", "乡镇", "township", 3, Coverage.FULL),
            Level("village", "村", "village", 3, Coverage.FULL),
        ),
        dual_sources=(),
    )


@pytest.mark.parametrize("suffix", ["shp", "gpkg"])
def test_twelve_digit_codes_stored_as_numbers_read_back_with_their_zeros(
    tmp_path: Path, suffix: str
) -> None:
    config = _national_config()
    county = _layer(
        [{"code": 50823, "name": "县", "parent_code": None}], [(108.5, 40.7, 108.7, 40.8)]
    )
    towns = _layer(
        [{"code": 50823100 + i, "name": f"镇{i}", "parent_code": 50823} for i in range(2)],
        [(108.5, 40.7, 108.6, 40.8), (108.6, 40.7, 108.7, 40.8)],
    )
    villages = _layer(
        [
            {"code": (50823100 + i) * 1000 + 1, "name": f"村{i}", "parent_code": 50823100 + i}
            for i in range(2)
        ],
        [(108.5, 40.7, 108.6, 40.8), (108.6, 40.7, 108.7, 40.8)],
    )
    layers = {"county": county, "township": towns, "village": villages}
    if suffix == "shp":
        folder = tmp_path / "system"
        folder.mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GDAL cuts parent_code to parent_cod
            for name, frame in layers.items():
                pyogrio.write_dataframe(frame, folder / f"{name}.shp", encoding="UTF-8")
        assert pyogrio.read_dataframe(folder / "village.shp")["code"].dtype.kind in "if"
        path = folder
    else:
        path = tmp_path / "system.gpkg"
        for name, frame in layers.items():
            pyogrio.write_dataframe(frame, path, layer=name)
    read = read_system(path, config)
    assert read["county"]["code"].tolist() == ["050823"]
    assert read["township"]["code"].tolist() == ["050823100", "050823101"]
    assert read["village"]["code"].tolist() == ["050823100001", "050823101001"]
    assert read["village"]["parent_code"].tolist() == ["050823100", "050823101"]


def _shift(frame: gpd.GeoDataFrame, function) -> gpd.GeoDataFrame:
    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(function(xy[:, 0], xy[:, 1]))

    return frame.set_geometry(shapely.transform(frame.geometry.to_numpy(), move), crs=frame.crs)


def _metres_apart(a: gpd.GeoSeries, b: gpd.GeoSeries) -> float:
    """The largest distance between corresponding vertices, in metres (roughly)."""
    xa, xb = shapely.get_coordinates(a.to_numpy()), shapely.get_coordinates(b.to_numpy())
    assert xa.shape == xb.shape
    metres = np.abs(xa - xb) * [111_320 * np.cos(np.radians(xa[:, 1].mean())), 110_574]
    return float(np.hypot(metres[:, 0], metres[:, 1]).max())


@pytest.mark.parametrize(
    ("coords", "shift"),
    [("gcj02", "wgs84_to_gcj02"), ("bd09", "wgs84_to_bd09"), ("AMap", "wgs84_to_gcj02")],
)
def test_gcj02_and_bd09_layers_are_converted_on_read(
    tmp_path: Path, system: GridSystem, coords: str, shift: str
) -> None:
    import gridgeo.crs

    grid = system["grid"].to_crs("EPSG:4326")
    # long straight edges, densified as real borders are: every vertex converted
    grid = grid.set_geometry(shapely.segmentize(grid.geometry.to_numpy(), 0.002), crs=grid.crs)
    shifted = _shift(grid, getattr(gridgeo.crs, shift))
    assert 300 < _metres_apart(shifted.geometry, grid.geometry) < 2000  # really shifted
    gpkg = tmp_path / "grid.gpkg"
    pyogrio.write_dataframe(shifted, gpkg)
    got = read_layer(gpkg, coords=coords)
    assert _metres_apart(got.geometry, grid.geometry) < 0.01
    assert str(got.crs) == "EPSG:4326"  # the file's geographic CRS is kept
    assert got["code"].tolist() == grid["code"].tolist()
    assert _metres_apart(read_layer(gpkg).geometry, shifted.geometry) == 0  # not asked: as stored


def test_read_system_converts_every_layer(tmp_path: Path, system: GridSystem) -> None:
    from gridgeo.crs import wgs84_to_gcj02

    folder = tmp_path / "amap"
    layers = _all_layers(system)
    write_system(
        system.replace(**{n: _shift(f, wgs84_to_gcj02) for n, f in layers.items()}), folder
    )
    read = read_system(folder, coords="gcj02")
    for name, got in _all_layers(read).items():
        # Shapefile rings run the other way: compare shapes, not vertex order
        apart = shapely.hausdorff_distance(
            got.geometry.to_numpy(), layers[name].geometry.to_numpy()
        )
        assert apart.max() * 111_320 < 0.01, name


def test_coords_on_a_projected_layer_is_refused(tmp_path: Path, system: GridSystem) -> None:
    shp = write_layer(system["town"].to_crs("EPSG:4545"), tmp_path / "town.shp")
    with pytest.raises(CrsError, match=r"town\.shp.*coords='gcj02'.*projected CRS EPSG:4545"):
        read_layer(shp, coords="gcj02")
    with cli_voice(), pytest.raises(CrsError, match="--coords 'gcj02'"):
        read_layer(shp, coords="gcj02")
    assert read_layer(shp).crs.to_epsg() == 4545


def test_unknown_coords_is_refused(tmp_path: Path, system: GridSystem) -> None:
    shp = write_layer(system["town"], tmp_path / "town.shp")
    with pytest.raises(
        CrsError, match=r"town\.shp: unknown coordinate system coords='google'.*gcj02"
    ):
        read_layer(shp, coords="google")
