"""gridgeo.plan: the Plan model, its operations, refusals, codes, history and compare.

Built on a lattice banner made in code: two towns side by side, each 6 × 6
units of 0.001° squares, each town four 3 × 3 grids; grid 150823100001 is
refined into three micro-grids (one per unit row). Households per unit vary
so balance can be measured.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import LineString, box

from gridgeo.check import check_system
from gridgeo.errors import PlanError, PlanWarning
from gridgeo.model import GridSystem
from gridgeo.plan import Plan, compare, export_plan, import_plan

X0, Y0, D = 108.5, 40.7, 0.001
TOWNS = ("150823100", "150823101")


def _unit_id(town: int, i: int, j: int) -> str:
    return f"U{town}{i}{j}"


def lattice_system() -> GridSystem:
    """Two towns × four 3×3 grids × 9 units; grid …100001 refined by rows."""
    rows = []
    for t, town in enumerate(TOWNS):
        for i in range(6):  # column (west → east)
            for j in range(6):  # row (south → north)
                gi = (0 if j >= 3 else 2) + (0 if i < 3 else 1)  # NW, NE, SW, SE
                grid = f"{town}{gi + 1:03d}"
                micro = f"{grid}{6 - j:03d}" if gi == 0 and t == 0 else ""
                x0, x1 = (round(X0 + (t * 6 + k) * D, 6) for k in (i, i + 1))
                y0, y1 = (round(Y0 + k * D, 6) for k in (j, j + 1))
                rows.append(
                    {
                        "unit_id": _unit_id(t, i, j),
                        "town_code": town,
                        "grid_code": grid,
                        "micro_grid_code": micro,
                        "households": 20 + (i * 7 + j * 3 + t * 5) % 23,
                        "village": f"村{t}{gi}",
                        "kind": "urban",
                        "geometry": box(x0, y0, x1, y1),
                    }
                )
    units = gpd.GeoDataFrame(rows, crs="EPSG:4490")
    units["residents"] = units["households"] * 2 + 1

    def dissolve(column):
        g = units[units[column] != ""].dissolve(column, aggfunc="sum", method="coverage")
        return g.reset_index()

    banner = gpd.GeoDataFrame(
        {"code": ["150823"], "name": ["乌拉特前旗"], "parent_code": [""]},
        geometry=[shapely.coverage_union_all(units.geometry.to_numpy())],
        crs="EPSG:4490",
    )
    towns = dissolve("town_code").rename(columns={"town_code": "code"})
    towns = towns[["code", "geometry"]].assign(name=["乌拉山镇", "白彦花镇"], parent_code="150823")
    grids = dissolve("grid_code").rename(columns={"grid_code": "code"})[["code", "geometry"]]
    grids["parent_code"] = grids["code"].str[:9]
    grids["name"] = [f"第{k + 1}网格" for k in range(len(grids))]
    grids["leader"] = "王伟"
    grids["workers"] = 3
    grids["grid_type"] = "comprehensive"
    grids["settlement"] = "urban"
    micros = dissolve("micro_grid_code").rename(columns={"micro_grid_code": "code"})
    micros = micros[["code", "geometry"]].assign(
        parent_code=lambda f: f["code"].str[:12], name="微"
    )
    layers = {"banner": banner, "town": towns, "grid": grids, "micro_grid": micros, "units": units}
    return GridSystem.from_layers(layers, origin="lattice")


@pytest.fixture(autouse=True)
def _quiet_norms():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        yield


@pytest.fixture(scope="module")
def base() -> Plan:
    return Plan.from_system(lattice_system(), author="tester")


def _gap_overlap(plan: Plan) -> pd.DataFrame:
    report = check_system(plan.to_system(), dual=False)
    d = report.defects
    return d[d["kind"].isin(["gap", "overlap", "orphan", "duplicate_code", "outside_parent"])]


# -- building and deriving --------------------------------------------------------
def test_from_system_derives_the_grids_exactly(base):
    system = lattice_system()
    assert len(base.grid_table) == 8 and len(base.micro_table) == 3
    grids = base.grids.set_index("code")
    for code, geom in zip(system["grid"]["code"], system["grid"].geometry, strict=True):
        assert grids.loc[code, "geometry"].equals(geom)
        assert grids.loc[code, "units"] == 9
    units = system.sources["units"]
    by_grid = units.groupby("grid_code")["households"].sum()
    assert (grids["households"] == by_grid.reindex(grids.index)).all()
    assert _gap_overlap(base).empty


def test_record_round_trip(base):
    moved = base.move([_unit_id(0, 2, 5)], to="150823100002")
    again = Plan.from_record(moved.to_record())
    assert (again.workload == moved.workload).all()
    assert (again.refinement == moved.refinement).all()
    assert again.grids.drop(columns="geometry").equals(moved.grids.drop(columns="geometry"))
    assert [s.to_dict() for s in again.steps] == [s.to_dict() for s in moved.steps]


# -- move ---------------------------------------------------------------------------
def test_move_changes_both_grids_and_leaves_the_old_plan(base):
    unit = _unit_id(0, 2, 5)  # NW grid's east column, top row: borders NE grid
    before = base.grids.set_index("code")["households"]
    hh = int(base.units.set_index("unit_id").loc[unit, "households"])
    new = base.move([unit], to="150823100002")
    after = new.grids.set_index("code")["households"]
    assert after["150823100001"] == before["150823100001"] - hh
    assert after["150823100002"] == before["150823100002"] + hh
    assert base.grids.set_index("code")["households"].equals(before)  # untouched
    step = new.steps[-1]
    assert (step.op, step.households_moved, step.units_moved, step.by) == ("move", hh, 1, "tester")
    assert new.units.set_index("unit_id").loc[unit, "micro_grid_code"] == ""
    assert _gap_overlap(new).empty


def test_move_into_a_refined_grid_joins_its_adjacent_micro_grid(base):
    unit = _unit_id(0, 3, 5)  # NE grid, west column, top row: touches micro …001001
    new = base.move([unit], to="150823100001")
    assert new.units.set_index("unit_id").loc[unit, "micro_grid_code"] == "150823100001001"
    assert _gap_overlap(new).empty


@pytest.mark.parametrize(
    ("units", "to", "rule"),
    [
        # an inner unit of the NW grid, not adjacent to the SW grid
        ([_unit_id(0, 1, 4)], "150823100003", "contiguity"),
        ([_unit_id(0, 5, 2)], "150823101003", "district"),  # across the town line
        ([_unit_id(0, i, j) for i in range(3, 6) for j in range(3, 6)], "150823100001", "empty"),
    ],
)
def test_refused_moves_name_the_rule_and_leave_the_plan(base, units, to, rule):
    with pytest.raises(PlanError) as info:
        base.move(units, to=to)
    assert info.value.rule == rule
    assert "unchanged" in str(info.value)
    assert len(base.steps) == 0


def test_a_move_that_splits_a_grid_is_refused_unless_forced(base):
    # the middle column of the SW grid: taking it leaves two pieces
    middle = [_unit_id(0, 1, j) for j in range(3)]
    with pytest.raises(PlanError) as info:
        base.move(middle, to="150823100004")
    assert info.value.rule == "contiguity" and "150823100003" in str(info.value)
    assert len(base.steps) == 0


def test_force_records_the_breach(base):
    middle = [_unit_id(0, 1, j) for j in range(3)]
    new = base.move(middle, to="150823100004", force=True)
    assert all("fall apart" in b for b in new.steps[-1].breaches)
    assert len(new.steps[-1].breaches) == 2  # the SW grid and the SE grid both fall apart
    assert "fall apart" in new.history.loc[0, "forced"]


def test_locked_grids_refuse_edits(base):
    locked = base.lock(["150823100002"])
    with pytest.raises(PlanError) as info:
        locked.move([_unit_id(0, 2, 5)], to="150823100002")
    assert info.value.rule == "locked"
    assert locked.unlock("150823100002").move([_unit_id(0, 2, 5)], to="150823100002")


def test_unknown_codes_are_named(base):
    with pytest.raises(PlanError, match="unknown grid code 150823100099"):
        base.move([_unit_id(0, 0, 0)], to="150823100099")
    with pytest.raises(PlanError, match="unknown unit id"):
        base.move(["nope"], to="150823100001")


# -- split, merge, refine ------------------------------------------------------------------
def test_split_is_balanced_contiguous_and_takes_the_next_free_code(base):
    new = base.split("150823100003", parts=2)
    grids = new.grids.set_index("code")
    assert "150823100005" in grids.index and "150823100003" in grids.index
    a, b = grids.loc["150823100003", "households"], grids.loc["150823100005", "households"]
    total = base.grids.set_index("code").loc["150823100003", "households"]
    assert a + b == total and abs(a - b) <= max(23, total * 0.2)
    assert a >= b  # the bigger part keeps the code
    assert grids.loc["150823100005", "parent_code"] == "150823100"
    assert grids["workers"].loc[["150823100003", "150823100005"]].min() >= 1
    assert _gap_overlap(new).empty
    # codes elsewhere unchanged
    others = set(base.grid_table.index) - {"150823100003"}
    assert others <= set(new.grid_table.index)
    cw = new.crosswalk()
    assert cw[["old_code", "new_code"]].values.tolist() == [["150823100003", "150823100005"]]


def test_split_of_a_refined_grid_moves_whole_micro_grids(base):
    new = base.split("150823100001", parts=2)
    m = new.micro_grids
    assert len(m) == 3
    assert set(m["parent_code"]) == {"150823100001", "150823100005"}
    assert all(
        code.startswith(parent) for code, parent in zip(m["code"], m["parent_code"], strict=True)
    )
    moved = new.crosswalk().query("level == 'micro_grid'")
    assert len(moved) >= 1 and moved["new_code"].str.startswith("150823100005").all()
    assert _gap_overlap(new).empty


def test_split_by_a_drawn_line_snaps_to_unit_edges(base):
    # a line a third of a unit off the edge between columns 1 and 2 of the SW grid
    x = X0 + 2 * D + D / 3
    new = base.split("150823100003", line=LineString([(x, Y0 - D), (x, Y0 + 3.5 * D)]))
    units = new.units.set_index("unit_id")
    assert {units.loc[_unit_id(0, 2, j), "grid_code"] for j in range(3)} != {
        units.loc[_unit_id(0, 0, j), "grid_code"] for j in range(3)
    }
    assert len({units.loc[_unit_id(0, i, j), "grid_code"] for i in range(2) for j in range(3)}) == 1
    with pytest.raises(PlanError, match="does not cut"):
        base.split("150823100003", line=LineString([(X0 - 1, Y0 - 1), (X0 - 0.5, Y0 - 1)]))


def test_merge_keeps_the_lowest_code_and_retires_the_others(base):
    new = base.merge(["150823100004", "150823100003"])
    assert "150823100004" not in new.grid_table.index
    assert new.grid_table.loc["150823100003", "workers"] == 6
    assert "150823100004" in new.retired
    # a later split never reuses the retired code
    again = new.split("150823100003", parts=2)
    assert "150823100005" in again.grid_table.index and "150823100004" not in again.grid_table.index
    assert _gap_overlap(again).empty


def test_merge_with_a_refined_grid_cascades_micro_codes(base):
    new = base.merge(["150823100001", "150823100002"])
    m = new.micro_grids
    assert (m["parent_code"] == "150823100001").all() and len(m) == 4  # NE became one micro-grid
    assert _gap_overlap(new).empty


def test_merge_refusals(base):
    with pytest.raises(PlanError) as info:
        base.merge(["150823100001", "150823100004"])  # diagonal: touch at a point only
    assert info.value.rule == "contiguity"
    with pytest.raises(PlanError) as info:
        base.merge(["150823100002", "150823101001"])
    assert info.value.rule == "district"


def test_refine_and_dissolve(base):
    new = base.refine("150823100003", parts=3)
    m = new.micro_grids.query("parent_code == '150823100003'")
    assert (
        len(m) == 3
        and m["households"].sum() == base.grids.set_index("code").loc["150823100003", "households"]
    )
    for code in m["code"]:
        members = np.flatnonzero(new.refinement == code)
        assert nx.is_connected(new._units.graph.subgraph(members.tolist()))
    assert _gap_overlap(new).empty
    back = new.dissolve_micro("150823100003")
    assert back.micro_grids.query("parent_code == '150823100003'").empty
    with pytest.raises(PlanError, match="already refined"):
        base.refine("150823100001")


def test_set_attributes(base):
    new = base.set("150823100002", leader="李芳", workers=5)
    row = new.grid_table.loc["150823100002"]
    assert (row["leader"], row["workers"]) == ("李芳", 5)
    with pytest.raises(PlanError, match="at least one"):
        base.set("150823100002", workers=0)


def test_norm_warnings_carry_numbers(base):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = base.merge(["150823100003", "150823100004"])
    texts = [str(w.message) for w in caught if issubclass(w.category, PlanWarning)]
    hh = new.grids.set_index("code").loc["150823100003", "households"]
    # the lattice grids hold ~300 households; merged they exceed 500
    assert hh > 500 and any(f"{hh} households" in t for t in texts)


# -- history, codes ------------------------------------------------------------------------
def test_undo_and_redo(base):
    a = base.move([_unit_id(0, 2, 5)], to="150823100002")
    b = a.split("150823100003")
    back = b.undo()
    assert back.grid_table.index.equals(a.grid_table.index)
    assert back.undo().grid_table.index.equals(base.grid_table.index)
    again = back.redo()
    assert again.grid_table.index.equals(b.grid_table.index)
    with pytest.raises(PlanError, match="nothing to redo"):
        again.redo()
    with pytest.raises(PlanError, match="nothing to undo"):
        base.undo()
    hist = b.history
    assert hist["op"].tolist() == ["move", "split"] and (hist["by"] == "tester").all()


def test_an_edit_in_one_town_changes_no_code_in_another(base):
    new = base.split("150823100003").merge(["150823100001", "150823100002"])
    other = base.units.query("town_code == '150823101'")
    after = new.units.set_index("unit_id").loc[other["unit_id"]]
    assert (after["grid_code"].to_numpy() == other["grid_code"].to_numpy()).all()


def test_renumber_returns_a_cascading_crosswalk(base):
    shuffled = base.merge(["150823100001", "150823100002"])  # …002 retired: a hole
    new = shuffled.renumber()
    cw = new.crosswalk().query("op == 'renumber'")
    grids = cw.query("level == 'grid'")
    assert dict(zip(grids["old_code"], grids["new_code"], strict=True)) == {
        "150823100003": "150823100002",
        "150823100004": "150823100003",
    }
    micro = cw.query("level == 'micro_grid'")
    assert len(micro) == 0 or micro["new_code"].str.startswith("150823100001").all()
    units = new.units.set_index("unit_id")
    assert units.loc[_unit_id(0, 0, 0), "grid_code"] == "150823100002"
    assert _gap_overlap(new).empty


# -- compare --------------------------------------------------------------------------------
def test_compare_known_edits(base):
    new = base.split("150823100003").merge(["150823101001", "150823101002"])
    new = new.move([_unit_id(0, 2, 5)], to="150823100002")
    c = compare(base, new)
    rel = c.grids.set_index("code")["relation"]
    assert rel["150823100005"] == "split"
    assert rel["150823100003"] == "redrawn"
    assert rel["150823101001"] == "merged" and rel["150823101002"] == "retired"
    assert rel["150823100002"] == "redrawn" and rel["150823101003"] == "unchanged"
    moved_units = c.units.query("old_code != new_code")
    assert set(moved_units["new_code"]) == {"150823100005", "150823101001", "150823100002"}
    assert c.summary["households_moved"] == int(moved_units["households"].sum())
    # points: one household in each moved unit
    pts = gpd.GeoDataFrame(
        {"household_id": moved_units["unit_id"].to_numpy()},
        geometry=shapely.point_on_surface(moved_units.geometry.to_numpy()),
        crs="EPSG:4490",
    )
    c2 = compare(base, new, households=pts)
    assert len(c2.households) == len(pts)
    assert (c2.households["old_code"].to_numpy() == moved_units["old_code"].to_numpy()).all()


# -- desktop round trip ---------------------------------------------------------------------
def test_export_edit_import_round_trip(base, tmp_path):
    path = export_plan(base.split("150823100003"), tmp_path / "plan.gpkg")
    layers = set(pyogrio.list_layers(path)[:, 0])
    assert {"grid", "micro_grid", "units", "crosswalk", "town"} <= layers
    units = pyogrio.read_dataframe(path, layer="units")
    start = Plan.from_system(lattice_system()).split("150823100003")
    unit = _unit_id(0, 2, 5)
    units.loc[units["unit_id"] == unit, "grid_code"] = "150823100002"
    units.loc[units["unit_id"] == unit, "micro_grid_code"] = ""
    edited = tmp_path / "edited.gpkg"
    pyogrio.write_dataframe(units, edited, layer="units")
    new = import_plan(edited, start)
    assert new.units.set_index("unit_id").loc[unit, "grid_code"] == "150823100002"
    assert new.steps[-1].op == "import" and new.steps[-1].units_moved == 1
    assert compare(start, new).summary["units_moved"] == 1
    # a code of the other town is refused like an edit
    units.loc[units["unit_id"] == unit, "grid_code"] = "150823101001"
    pyogrio.write_dataframe(units, tmp_path / "bad.gpkg", layer="units")
    with pytest.raises(PlanError) as info:
        import_plan(tmp_path / "bad.gpkg", start)
    assert info.value.rule in {"district", "contiguity"}


# -- property: random edit sequences ----------------------------------------------------------
@st.composite
def edits(draw):
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["move", "split", "merge", "refine", "dissolve", "set"]))
        ops.append((kind, draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000))))
    return ops


def _apply(plan: Plan, kind: str, a: int, b: int) -> Plan:
    grids = list(plan.grid_table.index)
    grid = grids[a % len(grids)]
    if kind == "move":
        units = plan.units
        members = units[units["grid_code"] == grid]
        unit = members["unit_id"].iloc[b % len(members)]
        pos = plan._units.position[unit]
        neighbours = [
            plan.workload[n] for n in plan._units.graph.neighbors(pos) if plan.workload[n] != grid
        ]
        if not neighbours:
            return plan
        return plan.move([unit], to=neighbours[b % len(neighbours)])
    if kind == "split":
        return plan.split(grid, parts=2 + b % 2)
    if kind == "merge":
        same = [
            g
            for g in grids
            if g != grid
            and plan.grid_table.loc[g, "parent_code"] == plan.grid_table.loc[grid, "parent_code"]
        ]
        if not same:
            return plan
        return plan.merge([grid, same[b % len(same)]])
    if kind == "refine":
        return plan.refine(grid, parts=2 + b % 2)
    if kind == "dissolve":
        return plan.dissolve_micro(grid)
    return plan.set(grid, leader=f"L{b}")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits())
def test_random_edit_sequences_keep_the_system_valid(base, ops):
    plan = base
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        for kind, a, b in ops:
            try:
                plan = _apply(plan, kind, a, b)
            except PlanError as exc:
                assert exc.rule  # refused with a named rule; the plan is unchanged
    grids = plan.grids
    assert grids["households"].sum() == base.grids["households"].sum()
    assert grids["residents"].sum() == base.grids["residents"].sum()
    assert not grids["code"].duplicated().any()
    units = plan.units
    refined = units[units["micro_grid_code"] != ""]
    assert (refined["micro_grid_code"].str[:12] == refined["grid_code"]).all()
    assert _gap_overlap(plan).empty
    for code in grids["code"]:
        members = np.flatnonzero(plan.workload == code)
        assert nx.is_connected(plan._units.graph.subgraph(members.tolist()))
