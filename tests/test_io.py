"""Tests of gridgeo.io: round trips through real files, encodings, errors, atomic writes."""

from __future__ import annotations

import string
import tempfile
from functools import cache
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

import gridgeo.io.write as gio
from gridgeo.errors import (
    CrsError,
    DataFileError,
    EncodingError,
    LayerError,
    SchemaError,
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
    original = gio._write_frame
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        original(*args, **kwargs)
        if len(calls) == failing:
            raise OSError("disk full")

    monkeypatch.setattr(gio, "_write_frame", flaky)


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
        assert detect_encoding(shp) == encoding
        assert read_layer(shp)["name"].tolist() == names
        gpkg = write_layer(town, Path(folder) / "town.gpkg")
        assert read_layer(gpkg)["name"].tolist() == names


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
