"""The dual grid (双网合一) against its party-building and sanitation source layers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgeo import demo
from gridgeo.crs import to_metric
from gridgeo.defects import COLUMNS
from gridgeo.dual import CROSSWALK_COLUMNS, check_dual_grid, check_system_dual
from gridgeo.errors import CrsError, LayerError

METRIC = "EPSG:4545"
TOWN = "150823100"
CELL = 100.0  # metres: far wider than the defect tolerance


# -- the demo ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def system():
    return demo.load_demo()


@pytest.fixture(scope="module")
def report(system):
    return check_system_dual(system)


@pytest.fixture(scope="module")
def truth():
    return to_metric(demo.load_truth("dual"))


def _found(report, kind: str, layer: str) -> gpd.GeoDataFrame:
    d = report.defects
    return d[(d["kind"] == kind) & (d["level"] == layer)]


def _holder(truth_rows, layer: gpd.GeoDataFrame) -> list[str]:
    """Code of the source grid holding most of each truth block."""
    tree = shapely.STRtree(layer.geometry.to_numpy())
    block, grid = tree.query(truth_rows.geometry.to_numpy(), predicate="intersects")
    area = shapely.area(
        shapely.intersection(truth_rows.geometry.to_numpy()[block], layer.geometry.to_numpy()[grid])
    )
    order = np.lexsort((-area, block))
    first = order[np.r_[True, block[order][1:] != block[order][:-1]]]
    return layer["code"].to_numpy()[grid[first]].tolist()


def test_party_splits_are_exactly_the_grids_that_received_a_village(report, truth):
    rows = truth[truth["layer"] == "party_grid"]
    found = _found(report, "source_split", "party_grid")
    assert sorted(found["message_en"].str.split().str[3]) == sorted(rows["dual_to"])
    # Each row names the receiving grid first, then the dual grid the village came from.
    expected = sorted(f"{a},{b}" for a, b in zip(rows["dual_to"], rows["dual_from"], strict=True))
    assert sorted(found["codes"]) == expected


def test_sanitation_splits_are_the_merged_grids_and_the_village_holders(report, truth, system):
    sanitation = to_metric(system.sources["sanitation_grid"])
    merged = truth[(truth["layer"] == "sanitation_grid") & (truth["kind"] == "merged")]
    moved = truth[(truth["layer"] == "sanitation_grid") & (truth["kind"] == "reassigned")]
    # The truth names the sanitation grid now holding each village; the
    # geometry agrees (the holder covers most of the block).
    holders = _holder(moved, sanitation)
    assert holders == moved["source_to"].tolist()
    expected = set(merged["source_to"]) | set(holders)
    assert len(expected) == 26
    found = _found(report, "source_split", "sanitation_grid")
    assert set(found["message_en"].str.split().str[3]) == expected
    assert len(found) == 26


def test_split_geometry_is_the_part_outside_the_main_grid(report, truth):
    found = to_metric(_found(report, "source_split", "party_grid"))
    rows = truth[truth["layer"] == "party_grid"].set_index("dual_to")
    for row in found.itertuples():
        block = rows.geometry[row.codes.split(",")[0]]
        # The moved village, minus noise, and nothing of the main grid.
        assert row.geometry.intersection(block).area / block.area > 0.98
        assert row.geometry.difference(block).area < 0.02 * block.area


def test_displacements_only_where_the_truth_changed_something(report, truth):
    for layer in ("party_grid", "sanitation_grid"):
        rows = truth[truth["layer"] == layer]
        involved = set(rows["dual_from"]) | set(rows["dual_to"])
        found = _found(report, "displacement", layer)
        assert set(found["codes"]) == involved
        assert (found["width_m"] > 5.0).all()
    lines = to_metric(report.defects[report.defects["kind"] == "displacement"])
    assert (lines.geom_type == "LineString").all()
    assert np.allclose(lines.length, lines["width_m"], rtol=1e-6)


def test_noise_is_one_info_row_per_town_and_layer(report, system):
    noise = report.defects[report.defects["kind"] == "digitising_noise"]
    assert (noise["severity"] == "info").all()
    assert sorted(noise["district"]) == sorted(list(system["town"]["code"]) * 2)
    assert (noise["width_m"] <= 5.0).all()
    grids = noise["message_en"].str.extract(r"over (\d+) grids")[0].astype(int)
    displaced = report.defects["kind"] == "displacement"
    assert grids.sum() + displaced.sum() == 2 * len(system["grid"])


def test_no_source_mismatch_on_the_demo(report):
    assert not (report.defects["kind"] == "source_mismatch").any()


def test_crosswalk_shares_of_untouched_grids_sum_to_one(report, truth):
    cw = report.crosswalk
    assert list(cw.columns) == list(CROSSWALK_COLUMNS)
    touched = set(truth["dual_from"]) | set(truth["dual_to"])
    untouched = cw[~cw["dual_code"].isin(touched)]
    sums = untouched.groupby(["dual_code", "layer"])["share_of_dual"].sum()
    assert len(sums) == 2 * (662 - len(touched))
    # Shares fall short of 1 only by the digitising-noise slivers left out.
    assert sums.between(0.97, 1.0 + 1e-9).all()
    # Party grids came from the dual grid one to one, with the same code.
    main = report.main_sources("party_grid")
    same = main[~main.index.isin(touched)]
    assert (same.index == same).all()


def test_defects_are_in_the_input_crs_with_the_shared_schema(report, system):
    assert report.defects.crs == system["grid"].crs
    assert tuple(report.defects.columns) == COLUMNS


# -- small coverages built in code ----------------------------------------------
def _cells(nx: int, ny: int) -> np.ndarray:
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    x0, y0 = 480_000.0 + x.ravel() * CELL, 4_500_000.0 + y.ravel() * CELL
    return shapely.box(x0, y0, x0 + CELL, y0 + CELL)


def _layer(cells: np.ndarray, labels: np.ndarray, noise: float = 0.0, phase: float = 0.0):
    """One polygon per label: the union of its cells, optionally with digitising noise."""
    present = np.unique(labels)
    geoms = np.array([shapely.coverage_union_all(cells[labels == g]) for g in present])
    if noise:

        def field(xy):
            dx = np.sin(xy[:, 0] / 97.0 + phase) + 0.5 * np.sin(xy[:, 1] / 61.0)
            dy = np.cos(xy[:, 1] / 113.0 - phase) + 0.5 * np.cos(xy[:, 0] / 71.0)
            return xy + noise / 1.5 * np.column_stack([dx, dy])

        geoms = shapely.transform(geoms, field)
    return gpd.GeoDataFrame(
        {
            "code": [f"{TOWN}{g + 1:03d}" for g in present],
            "name": [f"网格{g + 1}" for g in present],
            "parent_code": TOWN,
        },
        geometry=geoms,
        crs=METRIC,
    )


def _blocks(nx: int, ny: int, bx: int, by: int) -> np.ndarray:
    x, y = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    return ((x // bx) * -(-ny // by) + y // by).ravel()


def test_identical_sources_give_no_warnings():
    merged = _layer(_cells(6, 4), _blocks(6, 4, 2, 2))
    report = check_dual_grid(merged, merged.copy(), merged.copy())
    assert set(report.defects["kind"]) == {"digitising_noise"}
    assert (report.defects["width_m"] == 0).all()
    assert len(report.crosswalk) == 2 * len(merged)
    assert np.allclose(report.crosswalk[["share_of_dual", "share_of_source"]], 1.0)


def test_noise_alone_gives_no_warnings():
    cells, labels = _cells(6, 4), _blocks(6, 4, 2, 2)
    merged = _layer(cells, labels)
    party = _layer(cells, labels, noise=2.0, phase=0.3)
    sanitation = _layer(cells, labels, noise=2.0, phase=1.7)
    report = check_dual_grid(merged, party, sanitation)
    assert set(report.defects["kind"]) == {"digitising_noise"}
    assert len(report.crosswalk) == 2 * len(merged)


def test_layers_in_different_crs_are_refused():
    merged = _layer(_cells(4, 4), _blocks(4, 4, 2, 2))
    with pytest.raises(CrsError, match=r"party_grid: EPSG:4326.*to_crs"):
        check_dual_grid(merged, merged.to_crs(4326), merged.copy())
    with pytest.raises(CrsError, match="no coordinate reference system"):
        check_dual_grid(merged, merged.copy(), merged.set_crs(None, allow_override=True))


def test_a_missing_source_layer_is_named(system):
    del system.sources["sanitation_grid"]
    with pytest.raises(LayerError, match="sanitation_grid"):
        check_system_dual(system)


def test_area_in_one_source_layer_only_is_a_mismatch():
    cells, labels = _cells(4, 4), _blocks(4, 4, 2, 2)
    merged = _layer(cells, labels)
    party = merged.copy()
    extra = shapely.box(480_400, 4_500_000, 480_450, 4_500_050)  # beyond the east edge
    party.loc[1, "geometry"] = party.geometry[1].union(extra)
    report = check_dual_grid(merged, party, merged.copy())
    found = report.defects[report.defects["kind"] == "source_mismatch"]
    assert len(found) == 1
    row = found.iloc[0]
    assert row["level"] == "party_grid" and row["codes"] == party.loc[1, "code"]
    assert row["area_m2"] == pytest.approx(2500)
    assert row["width_m"] == pytest.approx(50, abs=0.2)
    assert "covered by party_grid only" in row["message_en"]


def test_sanitation_grid_covering_two_dual_grids_is_split():
    cells, labels = _cells(4, 2), _blocks(4, 2, 1, 2)  # four columns
    merged = _layer(cells, labels)
    coarse = _layer(cells, np.where(labels == 1, 0, labels), noise=1.5)  # columns 0+1 merged
    report = check_dual_grid(merged, merged.copy(), coarse)
    split = report.defects[report.defects["kind"] == "source_split"]
    assert split["codes"].tolist() == [f"{TOWN}001,{TOWN}002"]
    assert split["level"].tolist() == ["sanitation_grid"]
    moved = report.defects[report.defects["kind"] == "displacement"]
    assert sorted(moved["codes"]) == [f"{TOWN}001", f"{TOWN}002"]
    shares = report.crosswalk.query("layer == 'sanitation_grid'").set_index("dual_code")
    assert shares.loc[f"{TOWN}001", "share_of_source"] == pytest.approx(0.5, abs=0.01)


@st.composite
def moved_cells(draw):
    """A block grouping of a small cell grid, and a copy with some cells moved."""
    nx, ny = draw(st.integers(3, 7)), draw(st.integers(3, 7))
    bx, by = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    labels = _blocks(nx, ny, bx, by)
    # Cells next to a cell of another grid (edge neighbours: east and north).
    index = np.arange(nx * ny).reshape(nx, ny)
    pairs = np.vstack(
        [
            np.column_stack([index[:-1].ravel(), index[1:].ravel()]),
            np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()]),
        ]
    )
    pairs = pairs[labels[pairs[:, 0]] != labels[pairs[:, 1]]]
    pairs = np.vstack([pairs, pairs[:, ::-1]])  # either cell may move
    picks = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=5)) if len(pairs) else []
    source = labels.copy()
    for k in picks:
        cell, neighbour = pairs[k % len(pairs)]
        source[cell] = labels[neighbour]  # redrawn into the neighbouring grid
    noise = draw(st.floats(0.0, 2.0))
    return nx, ny, labels, source, noise


@settings(max_examples=40, deadline=None)
@given(moved_cells())
def test_moved_cells_are_found_as_exactly_the_split_grids(case):
    nx, ny, labels, source, noise = case
    cells = _cells(nx, ny)
    merged = _layer(cells, labels)
    party = _layer(cells, source, noise=noise, phase=float(nx))
    report = check_dual_grid(merged, party, _layer(cells, labels, noise=noise, phase=1.0))
    # A source grid is split when its cells lie in two or more dual grids.
    expected = {
        f"{TOWN}{g + 1:03d}" for g in np.unique(source) if len(set(labels[source == g])) > 1
    }
    found = report.defects[report.defects["kind"] == "source_split"]
    assert set(found["message_en"].str.split().str[3]) == expected
    assert set(found["level"]) <= {"party_grid"}
    # Only the dual grids that lost or gained a cell can be displaced.
    changed = labels != source
    involved = {f"{TOWN}{g + 1:03d}" for g in np.r_[labels[changed], source[changed]]}
    moved = report.defects[report.defects["kind"] == "displacement"]
    assert set(moved["codes"]) <= involved
    assert not (report.defects["kind"] == "source_mismatch").any()


def test_overlapping_source_grids_still_compare():
    cells, labels = _cells(4, 4), _blocks(4, 4, 2, 2)
    merged = _layer(cells, labels)
    party = merged.copy()
    # Grid 0 (x 0-200, y 0-200) drawn 20 m into grid 2 (x 200-400): no longer a coverage.
    party.loc[0, "geometry"] = shapely.box(480_000, 4_500_000, 480_220, 4_500_200)
    report = check_dual_grid(merged, party, merged.copy())
    split = report.defects[report.defects["kind"] == "source_split"]
    assert split["codes"].tolist() == [f"{TOWN}001,{TOWN}003"]
    assert split["area_m2"].iloc[0] == pytest.approx(20 * 200)
    assert not (report.defects["kind"] == "source_mismatch").any()
