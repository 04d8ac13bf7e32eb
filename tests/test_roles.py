"""One non-banner configuration through every capability and the CLI.

巴彦淖尔市 (city, root code 150800, whose children extend 1508) → county (+2)
→ street (+3, the workload level) → cell (+3, refining some streets), with
two dual-grid source layers of its own names. Built on conftest's tiny layers,
renamed and recoded.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely import box

import gridgeo
from conftest import tiny_layers
from gridgeo import stats
from gridgeo.assign import assign
from gridgeo.check import check_system
from gridgeo.cli import main
from gridgeo.config import Coverage, GridConfig, Level, Role
from gridgeo.dual import check_system_dual
from gridgeo.io import write_layer
from gridgeo.model import GridSystem

CITY = GridConfig(
    root_code="150800",
    root_name="巴彦淖尔市",
    levels=(
        Level("city", "市", "city", 4, Coverage.ROOT),
        Level("county", "旗县区", "county", 2, Coverage.FULL),
        Level("street", "街道网格", "street", 3, Coverage.FULL),
        Level("cell", "单元", "cell", 3, Coverage.REFINED),
    ),
    metric_crs="EPSG:4545",
    dual_sources=("party_net", "clean_net"),
)
BANNER_NAMES = ("banner", "town", "grid", "micro_grid", "party_grid", "sanitation_grid")
COUNTY = {"150823100": "150802", "150823101": "150821"}


def _recode(code: str) -> str:
    if code == "150823":
        return "150800"
    return COUNTY[code[:9]] + code[9:] if len(code) > 6 else ""


def city_layers() -> dict[str, gpd.GeoDataFrame]:
    """The tiny layers as city → county → street → cell, plus two dual sources."""
    old = tiny_layers()
    out = {}
    for new, name in zip(CITY.level_names, ("banner", "town", "grid", "micro_grid"), strict=True):
        frame = old[name].copy()
        frame["code"] = frame["code"].map(_recode)
        frame["parent_code"] = frame["parent_code"].map(_recode)
        out[new] = frame
    out["city"]["name"] = "巴彦淖尔市"
    out["party_net"] = out["street"][["code", "name", "parent_code", "geometry"]].copy()
    clean = out["party_net"].copy()
    # the sanitation side drew street 150802001 300 m (0.0027°) into its southern neighbour
    moved = {
        "150802001": box(108.5, 40.7473, 108.6, 40.8),
        "150802002": box(108.5, 40.7, 108.6, 40.7473),
    }
    clean["geometry"] = [
        moved.get(c, g) for c, g in zip(clean["code"], clean.geometry, strict=True)
    ]
    out["clean_net"] = clean
    return out


def _points(lon, lat, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4490")


@pytest.fixture
def city() -> GridSystem:
    return GridSystem.from_layers(city_layers(), CITY, origin="city")


def test_roles_follow_the_levels():
    assert CITY.role_name(Role.ROOT) == "city"
    assert CITY.role_name(Role.DISTRICT) == "county"
    assert CITY.role_name(Role.WORKLOAD) == "street"
    assert CITY.role_name(Role.REFINEMENT) == "cell"
    assert CITY.root_prefix == "1508"
    assert [lv.code_width for lv in CITY.levels] == [6, 6, 9, 12]


def test_model_accepts_the_padded_root_code(city):
    assert city.counts() == {"city": 1, "county": 2, "street": 4, "cell": 3}
    assert list(city.lineage("cell").columns) == ["city", "county", "street", "cell"]
    assert city.lineage("cell")["city"].unique().tolist() == ["150800"]
    assert city.summary().loc["street", "label"] == "街道网格"


def test_model_still_rejects_codes_outside_the_root_prefix():
    layers = city_layers()
    layers["county"].loc[1, "code"] = "150921"  # not 1508xx
    layers["street"]["parent_code"] = layers["street"]["parent_code"].replace("150821", "150921")
    with pytest.raises(gridgeo.errors.CodeError, match=r"150921.*first 4 digits.*1508"):
        GridSystem.from_layers(layers, CITY)


def test_check_reports_in_the_configuration_names(city):
    layers = city_layers()
    # a 0.01° strip of county 150821 missing from its streets: a gap on level "street"
    layers["street"].loc[3, "geometry"] = box(108.6, 40.71, 108.7, 40.75)
    system = GridSystem.from_layers(layers, CITY, strict=False)
    report = check_system(system, dual=False)
    levels = set(report.defects["level"])
    assert levels <= set(CITY.level_names)
    gaps = report.defects[report.defects["kind"] == "gap"]
    big = gaps[gaps["area_m2"] > 1e5]
    assert big["level"].tolist() == ["street"]
    assert big["area_m2"].iloc[0] == pytest.approx(0.1 * 0.01 * 111_320**2 * 0.757, rel=0.02)
    text = " ".join(report.defects["message_en"]) + " ".join(report.defects["message_zh"])
    assert "banner" not in text and "旗" not in text


def test_check_accepts_the_padded_root_code(city):
    report = check_system(city, dual=False)
    assert report.defects[report.defects["kind"] == "bad_code"].empty


def test_assign_writes_one_code_column_per_level(city):
    out = assign(_points([108.52, 108.65, 108.55], [40.79, 40.72, 40.76]), city)
    assert "city_code" not in out  # the root holds every placed point
    assert out["county_code"].tolist() == ["150802", "150821", "150802"]
    assert out["street_code"].tolist() == ["150802001", "150821002", "150802001"]
    assert out["cell_code"].tolist()[:1] == ["150802001001"]
    assert out["assign_status"].tolist() == ["inside"] * 3


def test_stats_count_per_workload_unit(city):
    homes = assign(_points([108.52, 108.53, 108.65], [40.79, 40.79, 40.72], size=[3, 2, 4]), city)
    per_unit = stats.households_per_grid(homes, city).set_index("code")
    assert per_unit.index.tolist() == city["street"]["code"].tolist()
    assert per_unit.loc["150802001", ["households", "residents"]].tolist() == [2, 5]
    assert per_unit.loc["150821002", "households"] == 1
    events = homes.assign(event_class=["市容环境", "街面秩序", "房屋土地"], subclass="")
    table = stats.incidents_per_grid(events, city)
    assert table.index.name == "street_code"
    assert table.loc["150802001"].sum() == 2
    units = stats.handling_units(events, config=CITY)
    assert units["handling_level"].astype(str).tolist() == ["cell", "street", "county"]
    assert units["handling_unit"].tolist() == ["150802001001", "150802001", "150821"]


def test_stats_without_a_refinement_level_fall_back_to_the_workload_unit():
    config = GridConfig(
        root_code="150800",
        levels=CITY.levels[:3],
        metric_crs="EPSG:4545",
        dual_sources=(),
    )
    events = pd.DataFrame(
        {"subclass": ["暴露垃圾"], "county_code": ["150802"], "street_code": ["150802001"]}
    )
    units = stats.handling_units(events, config=config)
    assert units["handling_level"].astype(str).tolist() == ["street"]
    assert units["handling_fallback"].tolist() == [True]


def test_dual_uses_the_configured_source_layers(city):
    report = check_system_dual(city)
    assert set(report.crosswalk["layer"]) == {"party_net", "clean_net"}
    moved = report.defects[report.defects["kind"] == "displacement"]
    assert set(moved["level"]) == {"clean_net"}
    # the sanitation side moved the edge 0.0027° ≈ 300 m south
    assert moved["width_m"].max() == pytest.approx(0.0027 * 111_000, rel=0.03)
    assert set(moved["district"]) <= {"150802"}


def test_dual_names_missing_sources_from_the_configuration():
    layers = city_layers()
    del layers["clean_net"]
    system = GridSystem.from_layers(layers, CITY)
    with pytest.raises(gridgeo.errors.LayerError, match=r"\['clean_net'\].*clean_net\.shp"):
        check_system_dual(system)


def test_coverage_map_draws_the_configured_levels(city):
    from gridgeo.maps import coverage_map

    html = coverage_map(city).get_root().render()
    assert "街道网格" in html


# -- the command line -----------------------------------------------------------------------
@pytest.fixture
def city_files(tmp_path) -> tuple[Path, Path]:
    gpkg = tmp_path / "city.gpkg"
    for name, frame in city_layers().items():
        write_layer(frame, gpkg, name)
    toml = tmp_path / "city.toml"
    toml.write_text(CITY.to_toml(), encoding="utf-8")
    return gpkg, toml


def test_cli_info_with_config(city_files, capsys):
    gpkg, toml = city_files
    assert main(["info", str(gpkg), "--config", str(toml), "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["code"] == "150800"
    assert {k: int(v["count"]) for k, v in payload["levels"].items()} == {
        "city": 1,
        "county": 2,
        "street": 4,
        "cell": 3,
    }


def test_cli_without_config_expects_the_banner(city_files, capsys):
    gpkg, _ = city_files
    assert main(["info", str(gpkg)]) == 2
    assert "missing" in capsys.readouterr().err


def test_cli_check_with_config(city_files, tmp_path, capsys):
    gpkg, toml = city_files
    out = tmp_path / "defects.gpkg"
    main(["check", str(gpkg), "--config", str(toml), "-o", str(out), "--format", "json"])
    payload = json.loads(capsys.readouterr().out)
    kinds = {d["kind"] for d in payload["defects"] if d["level"] == "clean_net"}
    assert "displacement" in kinds
    assert {d["level"] for d in payload["defects"]} <= {*CITY.level_names, *CITY.dual_sources}


def test_cli_assign_with_config(city_files, tmp_path):
    gpkg, toml = city_files
    points = tmp_path / "points.csv"
    pd.DataFrame({"lon": [108.52, 108.65], "lat": [40.79, 40.72]}).to_csv(points, index=False)
    out = tmp_path / "placed.csv"
    assert (
        main(["assign", str(points), "--grids", str(gpkg), "--config", str(toml), "-o", str(out)])
        == 0
    )
    placed = pd.read_csv(out, dtype=str)
    assert placed["street_code"].tolist() == ["150802001", "150821002"]
    assert placed["county_code"].tolist() == ["150802", "150821"]


def test_cli_init_infers_the_city(city_files, tmp_path, capsys):
    gpkg, _ = city_files
    out = tmp_path / "inferred.toml"
    assert main(["init", str(gpkg), "-o", str(out)]) == 0
    config = GridConfig.from_toml(out)
    assert config.level_names == ["city", "county", "street", "cell"]
    assert config.root_code == "150800" and config.root_prefix == "1508"
    assert [lv.code_digits for lv in config.levels] == [4, 2, 3, 3]
    assert config.level("cell").coverage == Coverage.REFINED
    assert config.dual_sources == ("party_net", "clean_net") or set(config.dual_sources) == {
        "party_net",
        "clean_net",
    }
    assert config.root_name == "巴彦淖尔市" and config.metric_crs == "auto"
    assert '# workload = "street"' in out.read_text(encoding="utf-8")


def test_cli_init_refuses_to_overwrite_its_input(city_files, capsys):
    gpkg, _ = city_files
    before = gpkg.read_bytes()
    assert main(["init", str(gpkg), "-o", str(gpkg)]) == 2
    assert "never writes into its inputs" in capsys.readouterr().err
    assert gpkg.read_bytes() == before


# -- no level names in the code -------------------------------------------------------------
def _level_literals(path: Path, root: Path) -> list[str]:
    """``file:line 'name'`` for each string literal that is a banner level name (not docstrings)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.relative_to(root)}:{node.lineno} {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and node.value in BANNER_NAMES
        and id(node) not in docstrings
    ]


def test_no_level_names_outside_the_configuration():
    package = Path(gridgeo.__file__).parent
    files = [
        f
        for f in sorted(package.rglob("*.py"))
        if f.name != "config.py" and "demo" not in f.relative_to(package).parts
    ]
    offenders = [hit for f in files for hit in _level_literals(f, package.parent)]
    assert not offenders, "level names hard-coded outside config.py:\n" + "\n".join(offenders)
