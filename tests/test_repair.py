"""gridgeo.repair: propose, review, apply — and the guarantees of issue 13."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import box

from gridgeo import load_demo
from gridgeo.check import check_system
from gridgeo.config import BANNER
from gridgeo.crs import project
from gridgeo.demo.dirty import spike
from gridgeo.errors import GridgeoError, SchemaError
from gridgeo.model import GridSystem
from gridgeo.repair import apply, apply_plan_repair, propose_plan_repair, propose_repair

REPAIRED_KINDS = {"gap", "overlap", "sliver", "invalid_geometry", "outside_parent", "orphan",
                  "duplicate_code"}  # fmt: skip
X0, Y0 = 500_000.0, 4_500_000.0


# -- helpers -----------------------------------------------------------------------
def metric_areas(system: GridSystem, level: str) -> np.ndarray:
    return shapely.area(project(system[level].geometry.to_numpy(), system.crs, system.metric_crs))


def assert_guarantees(system: GridSystem, proposal, fixed: GridSystem) -> None:
    """Clean, nested, area accounted for, untouched polygons bit-identical, idempotent."""
    report = check_system(fixed, dual=False)
    left = report.defects[report.defects["kind"].isin(REPAIRED_KINDS)]
    assert left.empty, left[["kind", "level", "codes", "area_m2"]].to_string()
    audit = proposal.audit
    for level in system.config.level_names[1:]:
        parent = system.config.parent(level).name
        kids = fixed[level].assign(area=metric_areas(fixed, level)).groupby("parent_code")["area"]
        mothers = fixed[parent].assign(area=metric_areas(fixed, parent)).set_index("code")["area"]
        sums = kids.sum()
        np.testing.assert_allclose(sums.to_numpy(), mothers.reindex(sums.index).to_numpy(),
                                   rtol=1e-6)  # fmt: skip
        # audit areas add up to each polygon's change (positions: codes may be renumbered)
        before, after = metric_areas(system, level), metric_areas(fixed, level)
        mine = audit[audit["level"] == level]
        codes_after = fixed[level]["code"].to_numpy()
        expected = np.zeros(len(before))
        for r in mine.itertuples():
            if r.action == "make_valid":
                expected[codes_after == r.to_code] += r.area_m2
            if r.action in ("cut", "give", "move"):
                expected[codes_after == r.from_code] -= r.area_m2
            if r.action in ("fill", "move"):
                expected[codes_after == r.to_code] += r.area_m2
        valid = shapely.is_valid(system[level].geometry.to_numpy())
        np.testing.assert_allclose((after - before)[valid], expected[valid], atol=1.0)
        # nothing the audit does not name changed, bit for bit
        named = set(mine["from_code"]) | set(mine["to_code"])
        untouched = ~np.isin(codes_after, list(named))
        old = shapely.to_wkb(system[level].geometry.to_numpy()[untouched])
        new = shapely.to_wkb(fixed[level].geometry.to_numpy()[untouched])
        assert (old == new).all()
    assert len(propose_repair(fixed)) == 0  # idempotent


# -- the dirty demo -------------------------------------------------------------------
@pytest.fixture(scope="session")
def dirty():
    return load_demo("dirty")


@pytest.fixture(scope="session")
def dirty_report(dirty):
    return check_system(dirty, dual=False)


@pytest.fixture(scope="session")
def proposal(dirty, dirty_report):
    return propose_repair(dirty, dirty_report)


@pytest.fixture(scope="session")
def repaired(proposal):
    return apply(proposal, "all")


def test_dirty_demo_rows_answer_the_check(proposal, dirty_report):
    audit = proposal.audit
    assert set(audit["kind"]) == {"invalid_geometry", "duplicate_code", "outside_parent",
                                  "overlap", "sliver", "gap", "orphan"}  # fmt: skip
    # every row but the fill a reparented orphan needs answers a row of the check
    derived = audit["depends_on"] != ""
    assert (audit.loc[~derived, "defect"] >= 0).all()
    assert set(audit.loc[~derived, "defect"]) <= set(dirty_report.defects.index)
    dup = audit[audit["kind"] == "duplicate_code"].iloc[0]
    assert (dup["from_code"], dup["to_code"]) == ("150823104007", "150823104034")
    orphan = audit[audit["kind"] == "orphan"].iloc[0]
    assert orphan["to_code"].startswith("150823201") and orphan["to_code"].endswith("001")
    assert "parent_code=150823201" in orphan["params"]
    # the 15 m overlap goes back to the grid it was drawn into (the longest border)
    over = audit[audit["kind"] == "overlap"].iloc[0]
    assert (over["from_code"], over["to_code"]) == ("150823101057", "150823101052")
    assert over["area_m2"] == pytest.approx(54_948.5, abs=1)


def test_big_changes_wait_for_a_person(proposal, dirty):
    audit = proposal.audit
    big = audit["kind"].isin(["gap", "overlap", "outside_parent"]) & (audit["width_m"] >= 10)
    assert big.any() and not audit.loc[big, "accepted"].any()
    assert audit.loc[~big & (audit["depends_on"] == ""), "accepted"].all()
    after = check_system(apply(proposal, "small"), dual=False).defects
    errors = after[after["severity"] == "error"]
    assert set(errors["kind"]) == {"gap", "overlap", "outside_parent"}
    assert (errors["width_m"] >= 10).all()
    # the 5,018 m² hole between two grids is proposed, never filled silently
    hole = audit[(audit["kind"] == "gap") & (audit["rule"] == "split")]
    assert hole["area_m2"].sum() == pytest.approx(5_018.5, abs=1)


def test_apply_all_meets_every_guarantee(dirty, proposal, repaired):
    assert_guarantees(dirty, proposal, repaired)


def test_original_is_untouched_and_accept_forms_agree(dirty, proposal):
    before = shapely.to_wkb(dirty["grid"].geometry.to_numpy())
    small = set(proposal.audit.index[proposal.audit["accepted"]])
    by_list = apply(proposal, sorted(small))
    by_function = apply(proposal, lambda audit: audit["accepted"])
    for level in dirty.config.level_names:
        a, b = by_list[level].geometry.to_numpy(), by_function[level].geometry.to_numpy()
        assert (shapely.to_wkb(a) == shapely.to_wkb(b)).all()
    assert (shapely.to_wkb(dirty["grid"].geometry.to_numpy()) == before).all()
    assert apply(proposal, []) is not dirty
    nothing = apply(proposal, [])
    assert all(nothing[n] is dirty[n] for n in dirty.config.level_names)


def test_a_row_without_its_dependency_is_skipped(dirty, proposal):
    audit = proposal.audit
    child = audit.index[audit["depends_on"] != ""][0]
    alone = apply(proposal, [child])
    assert all(alone[n] is dirty[n] for n in dirty.config.level_names)


def test_dirty_demo_is_repaired_in_under_a_second(dirty):
    start = time.perf_counter()
    apply(propose_repair(dirty), "all")
    assert time.perf_counter() - start < 2.0  # 0.6 s + 0.3 s measured; headroom for CI


def test_rules_choose_the_keeper(dirty):
    lowest = propose_repair(dirty, rule="lowest_code").audit
    over = lowest[lowest["kind"] == "overlap"].iloc[0]
    assert over["to_code"] < over["from_code"]
    largest = propose_repair(dirty, rule="largest_area").audit
    over = largest[largest["kind"] == "overlap"].iloc[0]
    grids = dirty["grid"].set_index("code")
    assert grids.loc[over["to_code"]].geometry.area >= grids.loc[over["from_code"]].geometry.area


def test_fill_by_longest_border_gives_a_hole_whole(dirty):
    audit = propose_repair(dirty, fill="longest_border").audit
    hole = audit[(audit["kind"] == "gap") & audit["to_code"].str.startswith("150823107")]
    assert len(hole) == 1 and hole["area_m2"].iloc[0] == pytest.approx(5_018.5, abs=1)


# -- a small system built in code, for rules and properties ---------------------------
def lattice(xs: list[float], rows: int, size: float = 200.0) -> GridSystem:
    """Two towns side by side, each ``len(xs) - 1`` × ``rows`` grids, in EPSG:4545."""
    towns, grids = [], []
    width = xs[-1]
    for t, town in enumerate(["150823100", "150823101"]):
        dx = X0 + t * width
        towns.append({"code": town, "name": town, "parent_code": "150823",
                      "geometry": box(dx, Y0, dx + width, Y0 + rows * size)})  # fmt: skip
        k = 0
        for j in range(rows):
            for i in range(len(xs) - 1):
                k += 1
                grids.append({"code": f"{town}{k:03d}", "name": "g", "parent_code": town,
                              "geometry": box(dx + xs[i], Y0 + j * size, dx + xs[i + 1],
                                              Y0 + (j + 1) * size)})  # fmt: skip
    frame = lambda rows_: gpd.GeoDataFrame(rows_, geometry="geometry", crs=4545)  # noqa: E731
    banner = frame([{"code": "150823", "name": "b", "parent_code": "",
                     "geometry": box(X0, Y0, X0 + 2 * width, Y0 + rows * size)}])  # fmt: skip
    micro = gpd.GeoDataFrame({"code": [], "name": [], "parent_code": []},
                             geometry=gpd.GeoSeries([], crs=4545))  # fmt: skip
    layers = {"banner": banner, "town": frame(towns), "grid": frame(grids), "micro_grid": micro}
    return GridSystem.from_layers(layers, BANNER, strict=False)


def inject(system: GridSystem, cells: list[int], kinds: list[str]) -> GridSystem:
    """Defects in grids of town 100 (left), each at the east edge of its grid."""
    grids = system["grid"].copy()
    geoms = grids.geometry.to_numpy().copy()
    for cell, kind in zip(cells, kinds, strict=True):
        x0, y0, x1, y1 = geoms[cell].bounds
        east = box(x1, y0, x1 + 1, y1)
        (b,) = [j for j in range(len(geoms)) if j != cell and
                shapely.intersection(geoms[j], east).area > 0] or [None]  # fmt: skip
        mid = (y0 + y1) / 2
        if kind == "sliver_gap":
            geoms[cell] = geoms[cell] - box(x1 - 0.4, y0 + 40, x1, y1 - 40)
        elif kind in ("overlap", "sliver_overlap"):
            depth = 15 if kind == "overlap" else 0.5
            geoms[cell] = geoms[cell] | box(x1, y0 + 40, x1 + depth, y1 - 40)
        elif kind == "inner_gap":
            disc = shapely.Point(x1, mid).buffer(20)
            geoms[cell] = geoms[cell] - disc
            geoms[b] = geoms[b] - disc
        elif kind == "edge_gap":  # at the south edge of the banner
            geoms[cell] = geoms[cell] - shapely.Point((x0 + x1) / 2, y0).buffer(6)
        elif kind == "spike":
            geoms[cell] = spike(shapely.Polygon(shapely.segmentize(geoms[cell], 50).exterior))
    grids = grids.set_geometry(gpd.GeoSeries(geoms, index=grids.index, crs=grids.crs))
    return system.replace(grid=grids)


KINDS = ["sliver_gap", "overlap", "sliver_overlap", "inner_gap", "edge_gap", "spike"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.floats(120, 300), min_size=4, max_size=5),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3),
    fill=st.sampled_from(["auto", "split", "longest_border"]),
    rule=st.sampled_from(["longest_border", "largest_area", "lowest_code"]),
)
def test_random_coverages_with_random_defects_come_out_clean(cuts, kinds, fill, rule):
    xs = list(np.cumsum([0.0, *cuts]))
    system = lattice(xs, rows=3)
    ncol = len(xs) - 1
    # cells two apart (never neighbours), each with an east neighbour in its town
    cells = [0, 2 + 2 * ncol, 2 * ncol][: len(kinds)]
    dirty = inject(system, cells, kinds)
    proposal = propose_repair(dirty, rule=rule, fill=fill)
    assert (proposal.audit["status"] == "proposed").all()
    fixed = apply(proposal, "all")
    assert_guarantees(dirty, proposal, fixed)


def test_inlet_open_to_the_parent_edge_is_filled():
    dirty = inject(lattice([0, 200, 400, 600], rows=2), [1], ["edge_gap"])
    audit = propose_repair(dirty).audit
    assert audit[["kind", "action", "to_code"]].values.tolist() == [["gap", "fill",
                                                                     "150823100002"]]  # fmt: skip
    assert audit["accepted"].all()  # a half disc of radius 6 m is 6 m wide: below 10 m
    assert audit["area_m2"].iloc[0] == pytest.approx(np.pi * 36 / 2, rel=0.01)


def test_households_rule_follows_registrations():
    dirty = inject(lattice([0, 200, 400, 600], rows=2), [0], ["overlap"])
    x1 = X0 + 200
    points = gpd.GeoDataFrame(
        {"grid_code": ["150823100001"] * 3},
        geometry=shapely.points([[x1 + 5, Y0 + 100], [x1 + 6, Y0 + 110], [x1 + 7, Y0 + 90]]),
        crs=4545,
    )
    audit = propose_repair(dirty, rule="households", households=points).audit
    row = audit[audit["kind"] == "overlap"].iloc[0]
    assert (row["to_code"], row["rule"], row["households"]) == ("150823100001", "households", 3)
    plain = propose_repair(dirty).audit
    assert plain[plain["kind"] == "overlap"]["to_code"].iloc[0] == "150823100002"


def test_a_change_that_would_split_a_polygon_is_refused():
    system = lattice([0, 200, 400, 600], rows=1)
    grids = system["grid"].copy()
    geoms = grids.geometry.to_numpy().copy()
    # grid 2 is drawn over a full-height band of grid 3: cut from 2 it would stay whole,
    # but the band cuts grid 3 in two if 3 loses it, so 3 keeps it and 2 gives way
    geoms[1] = geoms[1] | box(X0 + 450, Y0, X0 + 460, Y0 + 200)
    dirty = system.replace(grid=grids.set_geometry(gpd.GeoSeries(geoms, crs=4545)))
    audit = propose_repair(dirty).audit
    give = audit[audit["action"] == "give"]
    assert give["from_code"].tolist() == ["150823100002"]
    assert (audit["status"] == "refused").sum() == 0 or (audit["reason"] != "").all()


def test_an_overlap_that_would_split_either_side_takes_the_cut_off_part_along():
    system = lattice([0, 200, 400, 600], rows=1)
    grids = system["grid"].copy()
    geoms = grids.geometry.to_numpy().copy()
    x, y = X0, Y0
    # grid 2 reaches into grid 1 with a bar that cuts it in two, and only through
    # that bar joins a strip under grid 1: losing the bar splits either one
    geoms[0] = box(x, y + 20, x + 200, y + 200)
    geoms[1] = shapely.union_all([
        box(x + 200, y + 20, x + 400, y + 200), box(x, y, x + 150, y + 20),
        box(x + 150, y, x + 170, y + 200), box(x + 170, y + 180, x + 200, y + 200),
    ])  # fmt: skip
    dirty = system.replace(grid=grids.set_geometry(gpd.GeoSeries(geoms, crs=4545)))
    proposal = propose_repair(dirty)
    audit = proposal.audit
    assert (audit["status"] == "proposed").all()
    move = audit[audit["action"] == "move"]
    assert move[["kind", "rule"]].values.tolist() == [["overlap", "cut_off"]]
    give = audit[(audit["action"] == "give") & (audit["from_code"] == move["from_code"].iloc[0])]
    assert str(move.index[0]) in give["depends_on"].iloc[0].split(",")
    fixed = apply(proposal, "all")
    assert_guarantees(dirty, proposal, fixed)
    after = check_system(fixed, dual=False).defects
    assert not (after["kind"] == "multipart").any()
    # the give alone is never applied: it needs the move
    alone = apply(proposal, [int(give.index[0])])
    assert alone["grid"] is dirty["grid"]


def test_bad_options_are_named_errors(dirty, proposal):
    with pytest.raises(GridgeoError, match=r"rule=.nearest.*longest_border"):
        propose_repair(dirty, rule="nearest")
    with pytest.raises(GridgeoError, match="fill='smear'"):
        propose_repair(dirty, fill="smear")
    with pytest.raises(GridgeoError, match="needs household points"):
        propose_repair(dirty, rule="households")
    with pytest.raises(SchemaError, match="GeoDataFrame of points"):
        propose_repair(dirty, households=[(1, 2)])
    with pytest.raises(GridgeoError, match="needs a GridSystem"):
        propose_repair(dirty["grid"])
    with pytest.raises(GridgeoError, match="no such audit row"):
        apply(proposal, [999])
    with pytest.raises(GridgeoError, match="accept='most'"):
        apply(proposal, "most")
    with pytest.raises(GridgeoError, match="one bool per row"):
        apply(proposal, lambda audit: [True])


# -- plans ---------------------------------------------------------------------------
def test_plan_repair_moves_units_not_edges():
    from test_plan import lattice_system

    from gridgeo.plan import Plan

    plan = Plan.from_system(lattice_system())
    assert len(propose_plan_repair(plan)) == 0
    grid = "150823100004"  # SE grid of town 1: take one corner unit from the NE grid
    ne = plan.units.query("grid_code == '150823100002'")
    corner = ne[(ne.geometry.bounds["maxy"] == ne.geometry.bounds["maxy"].max())
                & (ne.geometry.bounds["maxx"] == ne.geometry.bounds["maxx"].max())]  # fmt: skip
    broken = plan.move(corner["unit_id"].tolist(), to=grid, force=True)
    proposal = propose_plan_repair(broken)
    rows = proposal.audit
    assert rows[["kind", "from_code", "to_code", "units"]].values.tolist() == [
        ["multipart", grid, "150823100002", 1]
    ]
    assert rows["households"].iloc[0] > 0 and not rows["accepted"].iloc[0]
    assert apply_plan_repair(proposal, "small") is broken  # nothing small to apply
    fixed = apply_plan_repair(proposal, "all", by="test")
    assert fixed.steps[-1].op == "repair" and not fixed.steps[-1].breaches
    assert len(propose_plan_repair(fixed)) == 0
    with pytest.raises(GridgeoError, match=r"needs a gridgeo\.plan\.Plan"):
        propose_plan_repair(lattice_system())


def test_a_sliver_with_a_hair_thin_spur_goes_back_to_the_polygon_it_was_cut_from():
    """The strip was cut from the square above; a spur of it a ten-millionth of a
    metre thin runs on along the square below. Summed rim segments count the spur
    twice for the square below (both its sides lie on it); the border is what the
    two squares share with the strip, each stretch once."""
    from gridgeo.config import Coverage
    from gridgeo.repair.geometry import repair_level

    strip = shapely.Polygon([(10, 0), (95, 0), (60, 1e-7), (60, 0.4), (10, 0.4)])
    above = shapely.difference(box(0, 0, 100, 10), strip)
    below = box(0, -10, 100, 0)
    geoms = np.array([above, below], dtype=object)
    changes, final = repair_level(
        geoms, np.array([0, 0]), np.array([box(0, -10, 100, 10)]), Coverage.FULL,
        BANNER.tolerances, codes=np.array(["1", "2"]),
    )  # fmt: skip
    fills = [c for c in changes if c.action == "fill"]
    assert [(c.kind, c.target) for c in fills] == [("sliver", 0)]
    assert shapely.symmetric_difference(final[0], box(0, 0, 100, 10)).area < 1e-6


def test_an_overlap_and_a_gap_of_the_same_area_are_both_repaired():
    # The town's grids add up to the town before the overlap is given back, so the
    # union of its grids, worked out ahead for the gaps, is left to the gap step.
    system = lattice([0, 200, 400, 600], rows=2)
    grids = system["grid"].copy()
    geoms = grids.geometry.to_numpy().copy()
    _, y0, x1, y1 = geoms[0].bounds
    geoms[0] = geoms[0] | box(x1, y0 + 40, x1 + 5, y1 - 40)  # 600 m² over grid 2
    _, y0, x1, y1 = geoms[4].bounds
    geoms[4] = geoms[4] - box(x1 - 3, y0, x1, y1)  # 600 m² of gap beside grid 6
    grids = grids.set_geometry(gpd.GeoSeries(geoms, index=grids.index, crs=grids.crs))
    dirty = system.replace(grid=grids)
    town = metric_areas(dirty, "town")[0]
    assert metric_areas(dirty, "grid")[:6].sum() == pytest.approx(town, abs=1e-6)
    proposal = propose_repair(dirty)
    audit = proposal.audit
    assert set(audit["kind"]) == {"gap", "overlap"}
    assert audit.loc[audit["kind"] == "gap", "area_m2"].sum() == pytest.approx(600, rel=1e-6)
    fixed = apply(proposal, "all")
    assert_guarantees(dirty, proposal, fixed)
