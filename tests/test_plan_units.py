"""gridgeo.plan.units: the demo's unit layer, derived units, adjacency and validation."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import box
from test_roles import CITY, city_layers

import gridgeo
from conftest import tiny_layers
from gridgeo.config import Role
from gridgeo.crs import project
from gridgeo.demo import UNITS_PATH, load_demo, load_units
from gridgeo.errors import CrsError, GeometryError, PlanError, SchemaError
from gridgeo.model import GridSystem
from gridgeo.plan.units import (
    UNIT_LAYER,
    UnitAdjacency,
    _area_m2,
    derive_units,
    unit_adjacency,
    unit_columns,
    validate_units,
)

WULASHAN = "150823100"
DUST_M2 = 1e-5  # derived units: lattice crossings rounded to the nearest double


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    return load_units()


@pytest.fixture(scope="module")
def wulashan(demo_system) -> gpd.GeoDataFrame:
    return derive_units(demo_system, districts=[WULASHAN])


def _mismatch(units: gpd.GeoDataFrame, system: GridSystem, role: Role) -> pd.DataFrame:
    """Per polygon of the role's level: union of its units vs the polygon (m², exact?)."""
    level = system.config.role(role)
    named = units[units[level.code_column] != ""]
    union = named.groupby(level.code_column).geometry.agg(
        lambda g: shapely.coverage_union_all(g.to_numpy())
    )
    own = system[level.name].set_index("code").geometry
    own = own[own.index.isin(union.index)] if len(union) < len(own) else own
    made = union.reindex(own.index).to_numpy()
    return pd.DataFrame(
        {
            "sym_m2": _area_m2(shapely.symmetric_difference(made, own.to_numpy()), system.crs),
            "equal": shapely.equals(made, own.to_numpy()),
        },
        index=own.index,
    )


# -- the demo's units ---------------------------------------------------------------------
def test_demo_units_have_the_configured_columns(units, demo_system):
    assert tuple(units.columns) == (*unit_columns(demo_system.config), "geometry")
    assert unit_columns(demo_system.config)[1:4] == ("town_code", "grid_code", "micro_grid_code")
    assert units.crs == demo_system.crs
    assert units["unit_id"].is_unique
    assert units["unit_id"].str.fullmatch(r"U\d{5}").all()
    assert units["households"].dtype == np.int64 and units["residents"].dtype == np.int64
    assert (units.geom_type == "Polygon").all()
    assert set(units["kind"]) == {"urban", "rural", "institution"}
    assert 15_000 <= len(units) <= 30_000
    # Rural units carry their administrative village, others none.
    rural = units["kind"] == "rural"
    assert (units.loc[rural, "village"] != "").all() and (units.loc[~rural, "village"] == "").all()
    grid = demo_system["grid"].set_index("code")
    assert (
        units.loc[rural, "village"]
        == grid["community"].reindex(units.loc[rural, "grid_code"]).to_numpy()
    ).all()


def test_demo_units_are_a_valid_coverage(units):
    assert shapely.coverage_is_valid(units.geometry.to_numpy())
    assert units.is_valid.all()


@pytest.mark.parametrize("role", [Role.WORKLOAD, Role.REFINEMENT])
def test_demo_units_tile_every_grid_and_micro_grid_exactly(units, demo_system, role):
    found = _mismatch(units, demo_system, role)
    assert len(found) == len(demo_system[demo_system.config.role_name(role)])
    assert found["equal"].all()
    assert found["sym_m2"].max() < 1e-6


def test_demo_units_nest_in_towns_and_refined_grids(units, demo_system):
    grid = demo_system["grid"].set_index("code")
    assert (units["town_code"] == grid["parent_code"].reindex(units["grid_code"]).to_numpy()).all()
    micro = demo_system["micro_grid"].set_index("code")
    refined = units["grid_code"].isin(set(micro["parent_code"]))
    assert (units.loc[refined, "micro_grid_code"] != "").all()
    assert (units.loc[~refined, "micro_grid_code"] == "").all()
    parents = micro["parent_code"].reindex(units.loc[refined, "micro_grid_code"]).to_numpy()
    assert (parents == units.loc[refined, "grid_code"].to_numpy()).all()


@pytest.mark.parametrize("role", [Role.WORKLOAD, Role.REFINEMENT])
def test_demo_units_add_up_to_the_attributes(units, demo_system, role):
    level = demo_system.config.role(role)
    named = units[units[level.code_column] != ""]
    totals = named.groupby(level.code_column)[["households", "residents"]].sum()
    expected = demo_system[level.name].set_index("code")[["households", "residents"]]
    assert totals.reindex(expected.index).equals(expected.astype(np.int64))


def test_demo_units_count_the_generated_households(units, demo_households, demo_system):
    # Counted where the households stand, in the metric CRS the demo was drawn in.
    metric = units.to_crs(demo_system.metric_crs)
    points = demo_households.to_crs(demo_system.metric_crs).geometry.to_numpy()
    point, unit = shapely.STRtree(metric.geometry.to_numpy()).query(points, predicate="within")
    assert len(point) == len(demo_households) == len(np.unique(point))
    counted = np.bincount(unit, minlength=len(units))
    assert (counted == units["households"].to_numpy()).all()
    size = np.bincount(
        unit, weights=demo_households["size"].to_numpy()[point], minlength=len(units)
    )
    assert (size == units["residents"].to_numpy()).all()


def test_demo_units_pass_validation(units, demo_system):
    validate_units(units, demo_system)


def test_load_units_returns_a_fresh_copy(units):
    first = load_units()
    first.loc[0, "households"] = -1
    first = first.drop(index=[1])
    again = load_units()
    assert again.loc[0, "households"] >= 0 and len(again) == len(first) + 1 == len(units)
    assert gridgeo.load_units().equals(again)


def test_load_demo_carries_the_units_as_a_source_layer(units):
    system = load_demo(units=True)
    assert UNIT_LAYER == "units"
    assert system.sources[UNIT_LAYER].equals(units)
    assert {"party_grid", "sanitation_grid"} < set(system.sources)
    assert UNIT_LAYER not in load_demo().sources
    assert gridgeo.load_demo(units=True).sources[UNIT_LAYER].equals(units)
    dirty = load_demo("dirty", units=True)
    assert len(dirty.sources[UNIT_LAYER]) == len(units)


def test_the_unit_file_is_small_compressed_geoparquet():
    import pyarrow.parquet as pq

    assert UNITS_PATH.name == "units.parquet"
    meta = pq.ParquetFile(UNITS_PATH).metadata
    assert b"geo" in meta.metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert UNITS_PATH.stat().st_size < 1_000_000


# -- adjacency ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adjacency(units) -> UnitAdjacency:
    return unit_adjacency(units)


def test_adjacency_is_symmetric_and_sorted(adjacency, units):
    matrix = adjacency.to_csr()
    assert matrix.shape == (len(units), len(units))
    assert (abs(matrix - matrix.T)).max() == 0
    assert (adjacency.i < adjacency.j).all()
    assert (np.diff(adjacency.i * len(units) + adjacency.j) > 0).all()
    assert (adjacency.length > 0).all()
    # A planar tessellation: about six neighbours per unit on average.
    degree = np.bincount(np.r_[adjacency.i, adjacency.j], minlength=len(units))
    assert (degree >= 1).all() and 4 < degree.mean() < 7


def test_adjacency_matches_brute_force_on_a_block(adjacency, units, demo_system):
    # 300 neighbouring units: every pair compared the slow way.
    seat = units[units["grid_code"] == "150823100040"].geometry.iloc[0].centroid
    near = np.argsort(shapely.distance(units.geometry.to_numpy(), seat))[:300]
    metric = project(
        units.geometry.to_numpy()[near], units.crs, demo_system.metric_crs, spacing=None
    )
    edges = shapely.boundary(metric)
    a, b = np.triu_indices(len(near), 1)
    shared = shapely.length(shapely.intersection(edges[a], edges[b]))
    brute = {(near[x], near[y]) for x, y in zip(a[shared > 0], b[shared > 0], strict=True)}
    brute = {(min(p), max(p)) for p in brute}
    inside = set(near.tolist())
    found = {
        (int(i), int(j))
        for i, j in zip(adjacency.i, adjacency.j, strict=True)
        if i in inside and j in inside
    }
    assert found == brute and len(found) > 500
    lengths = dict(
        zip(
            zip(adjacency.i.tolist(), adjacency.j.tolist(), strict=True),
            adjacency.length,
            strict=True,
        )
    )
    for (x, y), length in zip(
        zip(a[shared > 0], b[shared > 0], strict=True), shared[shared > 0], strict=True
    ):
        pair = (min(near[x], near[y]), max(near[x], near[y]))
        assert lengths[pair] == pytest.approx(length, rel=1e-9)


def test_adjacency_methods_agree(adjacency, units):
    block = units[units["town_code"] == "150823107"]
    edges = unit_adjacency(block, method="edges")
    overlay = unit_adjacency(block, method="overlay")
    assert np.array_equal(edges.i, overlay.i) and np.array_equal(edges.j, overlay.j)
    assert np.allclose(edges.length, overlay.length, rtol=1e-9)
    frame = edges.to_frame()
    assert list(frame.columns) == ["unit_a", "unit_b", "length_m"]
    assert set(frame["unit_a"]) <= set(block["unit_id"])


def test_adjacency_sees_neighbours_that_do_not_share_vertices():
    # b's edge along a has an extra vertex: not a valid coverage, still adjacent.
    crs = "EPSG:4545"
    a = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
    b = shapely.Polygon([(10, 0), (20, 0), (20, 10), (10, 10), (10, 4)])
    c = box(20, 10, 30, 20)  # touches b at a corner only
    frame = gpd.GeoDataFrame({"unit_id": ["a", "b", "c"]}, geometry=[a, b, c], crs=crs)
    found = unit_adjacency(frame)
    assert found.to_frame().values.tolist() == [["a", "b", 10.0]]
    assert len(unit_adjacency(frame, method="edges")) == 0  # identical edges only


def test_adjacency_graph_on_a_subset(adjacency):
    rows = [0, 1, 2, 3, 4, 5, 6, 7]
    graph = adjacency.to_graph(rows)
    assert sorted(graph.nodes) == rows
    for u, v, data in graph.edges(data=True):
        assert adjacency.to_csr()[u, v] == data["length"] > 0
    assert adjacency.to_graph().number_of_edges() == len(adjacency)


# -- derived units --------------------------------------------------------------------------
def test_derived_units_tile_tiny_layers(tiny):
    derived = derive_units(tiny)
    assert tuple(derived.columns) == (*unit_columns(tiny.config), "geometry")
    assert (derived["kind"] == "derived").all() and (derived["village"] == "").all()
    assert shapely.coverage_is_valid(derived.geometry.to_numpy())
    assert (derived.geom_type == "Polygon").all()
    for role in (Role.WORKLOAD, Role.REFINEMENT):
        assert _mismatch(derived, tiny, role)["sym_m2"].max() < DUST_M2
    per_grid = derived.groupby("grid_code").size()
    assert per_grid.between(15, 60).all()
    # Grid attributes spread over the units, exactly (micro-grids have none here).
    totals = derived.groupby("grid_code")[["households", "residents"]].sum()
    expected = tiny["grid"].set_index("code")[["households", "residents"]]
    assert totals.equals(expected.astype(np.int64))
    validate_units(derived, tiny)


def test_derived_units_follow_the_configuration():
    city = GridSystem.from_layers(city_layers(), CITY)
    derived = derive_units(city, cell_m=800)
    assert list(derived.columns[1:4]) == ["county_code", "street_code", "cell_code"]
    assert set(derived["county_code"]) == {"150802", "150821"}
    validate_units(derived, city)


def test_derived_units_tile_wulashan(wulashan, demo_system):
    grids = demo_system["grid"]
    grids = grids[grids["parent_code"] == WULASHAN]
    assert set(wulashan["grid_code"]) == set(grids["code"])
    assert (wulashan["town_code"] == WULASHAN).all()
    assert shapely.coverage_is_valid(wulashan.geometry.to_numpy())
    assert wulashan.is_valid.all() and (wulashan.geom_type == "Polygon").all()
    for role in (Role.WORKLOAD, Role.REFINEMENT):
        found = _mismatch(wulashan, demo_system, role)
        assert found["sym_m2"].max() < DUST_M2, role
    # About 20–40 units per grid, and no sliver left.
    per_grid = wulashan.groupby("grid_code").size()
    assert 25 <= per_grid.median() <= 40
    area = shapely.area(
        project(wulashan.geometry.to_numpy(), demo_system.crs, demo_system.metric_crs)
    )
    assert area.min() >= 5.0
    # Ids in reading order within each grid, unique.
    assert wulashan["unit_id"].is_unique and wulashan["unit_id"].iloc[0] == "U00001"
    assert wulashan["grid_code"].is_monotonic_increasing


def test_derived_units_conserve_households_by_area(wulashan, demo_system):
    for role in (Role.WORKLOAD, Role.REFINEMENT):
        level = demo_system.config.role(role)
        own = demo_system[level.name].set_index("code")[["households", "residents"]]
        named = wulashan[wulashan[level.code_column] != ""]
        totals = named.groupby(level.code_column)[["households", "residents"]].sum()
        assert totals.equals(own.reindex(totals.index).astype(np.int64))
    assert (wulashan["households"] >= 0).all()


def test_derived_units_count_household_points(demo_system, demo_households):
    town = demo_system["grid"][demo_system["grid"]["parent_code"] == "150823201"]
    homes = demo_households[demo_households["registered_grid"].isin(town["code"])]
    derived = derive_units(demo_system, homes, districts="150823201")
    assert derived["households"].sum() == len(homes)
    assert derived["residents"].sum() == homes["size"].sum()
    per_grid = derived.groupby("grid_code")["households"].sum()
    registered = homes.groupby("registered_grid").size()
    assert (per_grid.to_numpy() == registered.reindex(per_grid.index).to_numpy()).all()
    # Without a size column, one resident per household.
    plain = derive_units(demo_system, homes.drop(columns="size"), districts="150823201")
    assert (plain["residents"] == plain["households"]).all()


def test_derived_units_refuse_bad_arguments(tiny):
    with pytest.raises(PlanError, match="cell_m=0"):
        derive_units(tiny, cell_m=0)
    with pytest.raises(PlanError, match="squares"):
        derive_units(tiny, cell_m=0.5)
    with pytest.raises(PlanError, match="999999999") as caught:
        derive_units(tiny, districts=["999999999"])
    assert caught.value.codes == ("999999999",)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell=st.floats(min_value=250.0, max_value=6_000.0), shift=st.integers(0, 3))
def test_any_lattice_tiles_the_leaves(cell, shift):
    """Property: whatever the square size, units tile every leaf and conserve people."""
    layers = tiny_layers()
    if shift:  # a grid edge that is not straight, and a micro-grid it must follow
        layers = {k: v.copy() for k, v in layers.items()}
        bend = shapely.Polygon([(108.55, 40.75), (108.56 + shift * 0.004, 40.74), (108.6, 40.75)])
        grid = layers["grid"]
        grid.loc[0, "geometry"] = grid.geometry[0].union(bend)
        grid.loc[1, "geometry"] = grid.geometry[1].difference(bend)
        micro = layers["micro_grid"]
        micro.loc[2, "geometry"] = micro.geometry[2].union(bend)
    system = GridSystem.from_layers(layers)
    derived = derive_units(system, cell_m=cell)
    assert shapely.coverage_is_valid(derived.geometry.to_numpy())
    assert (derived.geom_type == "Polygon").all()
    for role in (Role.WORKLOAD, Role.REFINEMENT):
        assert _mismatch(derived, system, role)["sym_m2"].max() < DUST_M2
    totals = derived.groupby("grid_code")["households"].sum()
    assert totals.equals(
        system["grid"].set_index("code")["households"].rename_axis("grid_code").astype(np.int64)
    )
    validate_units(derived, system)


# -- validation -----------------------------------------------------------------------------
@pytest.fixture
def broken(units) -> gpd.GeoDataFrame:
    return units.copy()


def _rural_pair(units: gpd.GeoDataFrame) -> tuple[int, str]:
    """A rural unit, and another unrefined grid of its town it does not lie in."""
    k = int(np.flatnonzero((units["kind"] == "rural").to_numpy())[0])
    town, grid = units.loc[k, "town_code"], units.loc[k, "grid_code"]
    other = units[
        (units["town_code"] == town) & (units["kind"] == "rural") & (units["grid_code"] != grid)
    ]
    return k, other["grid_code"].iloc[0]


def test_validate_refuses_a_table_that_is_not_a_layer(units, demo_system):
    with pytest.raises(SchemaError, match="expected a GeoDataFrame"):
        validate_units(pd.DataFrame(units.drop(columns="geometry")), demo_system)
    with pytest.raises(SchemaError, match=r"\['households'\] missing"):
        validate_units(units.drop(columns="households"), demo_system)
    with pytest.raises(CrsError, match="to_crs"):
        validate_units(units.to_crs(demo_system.metric_crs), demo_system)


def test_validate_refuses_missing_and_duplicate_ids(broken, demo_system):
    broken.loc[3, "unit_id"] = ""
    with pytest.raises(SchemaError, match="row 3: the unit has no unit_id"):
        validate_units(broken, demo_system)
    broken.loc[3, "unit_id"] = "U00009"
    with pytest.raises(SchemaError, match=r"\['U00009'\] used by more than one"):
        validate_units(broken, demo_system)


def test_validate_refuses_geometry_that_is_not_one_polygon(broken, demo_system):
    one = broken.copy()
    one.loc[7, "geometry"] = None
    with pytest.raises(GeometryError, match="U00008 has no geometry"):
        validate_units(one, demo_system)
    two = broken.copy()
    two.loc[7, "geometry"] = shapely.MultiPolygon([broken.geometry[7], broken.geometry[500]])
    with pytest.raises(GeometryError, match=r"U00008 is a MultiPolygon.*explode"):
        validate_units(two, demo_system)
    three = broken.copy()
    x, y = shapely.get_coordinates(broken.geometry[7].centroid)[0]
    bowtie = shapely.Polygon([(x, y), (x + 1e-3, y + 1e-3), (x + 1e-3, y), (x, y + 1e-3)])
    three.loc[7, "geometry"] = bowtie
    with pytest.raises(GeometryError, match=r"U00008 is not a valid polygon .*Self-intersection"):
        validate_units(three, demo_system)


@pytest.mark.parametrize(("value", "match"), [(-3, "negative"), (2.5, "not a whole number")])
def test_validate_refuses_bad_people_counts(broken, demo_system, value, match):
    broken["households"] = broken["households"].astype(float)
    broken.loc[11, "households"] = value
    with pytest.raises(SchemaError, match=f"U00012 has households .*{match}"):
        validate_units(broken, demo_system)


def test_validate_refuses_unknown_codes(broken, demo_system):
    broken.loc[20, "grid_code"] = "150823100999"
    with pytest.raises(
        PlanError, match="U00021 names grid '150823100999', which does not exist"
    ) as caught:
        validate_units(broken, demo_system)
    assert caught.value.rule == "unknown" and caught.value.codes == ("150823100999",)


def test_validate_refuses_a_unit_in_the_wrong_district(broken, demo_system):
    broken.loc[20, "town_code"] = "150823101"
    with pytest.raises(PlanError, match="U00021 names town '150823101'") as caught:
        validate_units(broken, demo_system)
    assert caught.value.rule == "district"


def test_validate_refuses_micro_grid_codes_that_do_not_nest(units, demo_system):
    refined = np.flatnonzero((units["micro_grid_code"] != "").to_numpy())
    k = int(refined[0])
    unit = units.loc[k, "unit_id"]
    cases = [
        ("150823100001999", "unknown", "does not exist"),
        (units.loc[int(refined[-1]), "micro_grid_code"], "refinement", "refines grid"),
        ("", "refinement", "names no micro_grid"),
    ]
    for code, rule, match in cases:
        broken = units.copy()
        broken.loc[k, "micro_grid_code"] = code
        with pytest.raises(PlanError, match=f"{unit} .*{match}") as caught:
            validate_units(broken, demo_system)
        assert caught.value.rule == rule


def test_validate_refuses_a_unit_outside_every_grid(broken, demo_system):
    broken.loc[30, "geometry"] = shapely.affinity.translate(broken.geometry[30], xoff=3.0)
    with pytest.raises(GeometryError, match="U00031 lies outside every grid"):
        validate_units(broken, demo_system)


def test_validate_refuses_a_unit_in_another_grid_than_it_names(broken, demo_system):
    k, other = _rural_pair(broken)
    broken.loc[k, "grid_code"] = other
    with pytest.raises(
        GeometryError, match=f"{broken.loc[k, 'unit_id']} names grid {other} but lies in grid"
    ):
        validate_units(broken, demo_system)


def test_validate_refuses_overlapping_units(broken, demo_system):
    # A unit in the middle of an urban grid, moved 5 m east: it overlaps its neighbours.
    k = int(np.flatnonzero((broken["kind"] == "urban").to_numpy())[40])
    broken.loc[k, "geometry"] = shapely.affinity.translate(broken.geometry[k], xoff=6e-5)
    uid = broken.loc[k, "unit_id"]
    pair = rf"units ({uid} and U\d+|U\d+ and {uid}) overlap by [0-9.]+ m²"
    with pytest.raises(GeometryError, match=pair):
        validate_units(broken, demo_system)


def test_validate_refuses_gaps_with_their_area(units, demo_system):
    k = 5
    area = _area_m2(units.geometry.to_numpy()[[k]], units.crs)[0]
    with pytest.raises(
        GeometryError,
        match=r"grid 150823100001 is not covered by its units: a gap of ([0-9.e+]+) m²",
    ) as caught:
        validate_units(units.drop(index=[k]), demo_system)
    shown = float(str(caught.value).split("a gap of ")[1].split(" m²")[0])
    assert shown == pytest.approx(area, rel=1e-3)


def test_validate_refuses_units_reaching_outside_their_grid(broken, demo_system):
    outline = demo_system["banner"].geometry.iloc[0]
    on_edge = shapely.length(shapely.intersection(broken.boundary.to_numpy(), outline.boundary)) > 0
    k = int(np.flatnonzero(on_edge)[0])
    bigger = shapely.union(
        broken.geometry[k], shapely.buffer(broken.geometry[k], 2e-4).difference(outline)
    )
    assert bigger.geom_type == "Polygon"
    broken.loc[k, "geometry"] = bigger
    with pytest.raises(
        GeometryError, match=f"reach .* m² outside it \\(most: \\['{broken.loc[k, 'unit_id']}'"
    ):
        validate_units(broken, demo_system)


def test_validate_refuses_units_that_do_not_tile_their_micro_grid(units, demo_system):
    micro = units[units["micro_grid_code"] != ""]
    k = micro.index[0]
    sibling = micro.loc[
        (micro["grid_code"] == micro.loc[k, "grid_code"])
        & (micro["micro_grid_code"] != micro.loc[k, "micro_grid_code"]),
        "micro_grid_code",
    ].iloc[0]
    broken = units.copy()
    broken.loc[k, "micro_grid_code"] = sibling
    with pytest.raises(GeometryError, match="micro_grid 1508231000"):
        validate_units(broken, demo_system)


def test_validate_tolerates_floating_point_dust(wulashan, demo_system):
    # Derived units miss their grids by nanometres: within the default tolerance, not zero.
    grid, micro = demo_system["grid"], demo_system["micro_grid"]
    town_only = demo_system.replace(
        grid=grid[grid["parent_code"] == WULASHAN],
        micro_grid=micro[micro["parent_code"].str.startswith(WULASHAN)],
    )
    validate_units(wulashan, town_only)
    with pytest.raises(GeometryError, match="a gap of"):
        validate_units(wulashan, demo_system)  # the other towns have no units
    with pytest.raises(GeometryError, match="grid 150823100"):
        validate_units(wulashan, town_only, tolerance_m2=0.0)  # dust is there
