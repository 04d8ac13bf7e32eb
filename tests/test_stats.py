"""Statistics per grid: workloads, the household norm, incidents, escalation."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from gridgeo import demo, stats
from gridgeo.assign import assign, build_index
from gridgeo.errors import GridgeoError, SchemaError
from gridgeo.model import GridSystem
from tests.conftest import tiny_layers

A1, A2, B1, B2 = "150823100001", "150823100002", "150823101001", "150823101002"
TOWN_A, TOWN_B = "150823100", "150823101"
MICRO = "150823100001001"


# -- fixtures: the demo, computed once -----------------------------------------
@pytest.fixture(scope="module")
def index(demo_system):
    return build_index(demo_system)


@pytest.fixture(scope="module")
def homes(demo_system):
    return demo.households(demo_system)


@pytest.fixture(scope="module")
def assigned_homes(homes, demo_system, index):
    return assign(homes, demo_system, index=index)


@pytest.fixture(scope="module")
def per_grid(assigned_homes, demo_system):
    return stats.households_per_grid(assigned_homes, demo_system)


@pytest.fixture(scope="module")
def assigned_events(demo_system, homes, index):
    # assign() writes its own "status": keep the case status under another name.
    events = demo.incidents(demo_system, homes).rename(columns={"status": "case_status"})
    return assign(events, demo_system, index=index)


# -- tiny in-code frames ---------------------------------------------------------
@pytest.fixture
def tiny_system() -> GridSystem:
    layers = tiny_layers()
    layers["grid"]["settlement"] = ["urban", "urban", "rural", "institution"]
    layers["grid"]["workers"] = [5, 4, 3, 0]
    return GridSystem.from_layers(layers, origin="tiny")


def tiny_households() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "grid_code": [A1, A1, A1, A2, B2, B2, None],
            "size": [2, 3, 4, 5, 1, 1, 9],
            "registered_grid": [A1, A1, A2, A2, None, B2, A1],
        },
        index=[10, 11, 12, 13, 14, 15, 16],  # not a RangeIndex on purpose
    )


def tiny_incidents() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_class": ["市容环境", "市容环境", "突发事件", "公用设施", "公用设施"],
            "subclass": ["暴露垃圾", "暴露垃圾", "火灾隐患", "路灯", "路灯"],
            "status": ["closed", "reported", "dispatched", "handled", "overdue"],
            "reported_at": pd.to_datetime(
                ["2026-01-03", "2026-01-20", "2026-03-02", "2026-03-05", "2026-03-31"]
            ),
            "deadline": pd.to_datetime(
                ["2026-01-10", "2026-01-27", "2026-03-17", "2026-03-12", "2026-04-07"]
            ),
            "town_code": [TOWN_A, TOWN_A, TOWN_A, TOWN_B, None],
            "grid_code": [A1, A2, A1, B1, None],
            "micro_grid_code": [MICRO, None, MICRO, None, None],
        },
        index=list("abcde"),
    )


# -- households per grid ---------------------------------------------------------
def test_households_per_grid_exact_on_tiny_frames(tiny_system):
    out = stats.households_per_grid(tiny_households(), tiny_system, norm=(2, 2))
    assert isinstance(out, gpd.GeoDataFrame)
    assert out.crs == tiny_system.crs
    assert out["code"].tolist() == [A1, A2, B1, B2]
    assert out["households"].tolist() == [3, 1, 0, 2]  # the unassigned household is left out
    assert out["residents"].tolist() == [9, 5, 0, 2]
    np.testing.assert_allclose(out["households_per_worker"], [3 / 5, 1 / 4, 0, np.nan])
    np.testing.assert_allclose(out["residents_per_worker"], [9 / 5, 5 / 4, 0, np.nan])
    assert out["norm"].tolist() == ["above", "below", "n/a", "n/a"]
    # A missing registration is not counted as "elsewhere".
    assert out["registered_elsewhere"].tolist() == [1, 0, 0, 0]
    assert out.geometry.geom_equals(tiny_system["grid"].geometry).all()


def test_households_per_grid_accepts_categorical_codes_and_bare_systems(tiny, tiny_system):
    homes = tiny_households().drop(columns="registered_grid")
    homes["grid_code"] = homes["grid_code"].astype("category")
    out = stats.households_per_grid(homes, tiny_system)
    assert out["households"].tolist() == [3, 1, 0, 2]
    assert "registered_elsewhere" not in out
    # The conftest system has no settlement attribute: the norm applies nowhere.
    bare = stats.households_per_grid(homes, tiny)
    assert (bare["norm"] == "n/a").all()
    assert bare["settlement"].isna().all()


def test_households_per_grid_refuses_unassigned_points_and_bad_norms(tiny_system):
    with pytest.raises(SchemaError, match="grid_code"):
        stats.households_per_grid(tiny_households().drop(columns="grid_code"), tiny_system)
    with pytest.raises(GridgeoError, match="norm"):
        stats.households_per_grid(tiny_households(), tiny_system, norm=(500, 300))


def test_demo_households_per_grid_equal_the_grid_attributes(per_grid, demo_system):
    grid = demo_system["grid"]
    assert len(per_grid) == 662
    assert per_grid["code"].tolist() == grid["code"].tolist()
    assert per_grid["households"].tolist() == grid["households"].tolist()
    assert per_grid["residents"].tolist() == grid["residents"].tolist()
    assert per_grid["residents"].sum() == 257_826
    assert (per_grid["registered_elsewhere"] == 0).all()


def test_demo_per_worker_ratios(per_grid, demo_system):
    grid = demo_system["grid"]
    assert per_grid["workers"].sum() == 2_999
    np.testing.assert_allclose(
        per_grid["households_per_worker"], grid["households"] / grid["workers"]
    )
    np.testing.assert_allclose(
        per_grid["residents_per_worker"], grid["residents"] / grid["workers"]
    )


def test_demo_norm_flags_match_a_direct_computation(per_grid):
    urban = (per_grid["settlement"] == "urban") & (per_grid["grid_type"] == "comprehensive")
    h = per_grid["households"]
    expected = np.select(
        [~urban, h < 300, h > 500], ["n/a", "below", "above"], default="within"
    ).tolist()
    assert per_grid["norm"].astype(str).tolist() == expected
    # Every urban comprehensive grid is flagged, no other grid is.
    assert (per_grid.loc[urban, "norm"] != "n/a").all()


def test_demo_has_urban_grids_outside_the_norm(per_grid, assigned_homes, demo_system):
    out = stats.outside_norm(per_grid)
    assert isinstance(out, gpd.GeoDataFrame)
    assert len(out) >= 3
    assert (out["settlement"] == "urban").all() and (out["grid_type"] == "comprehensive").all()
    assert ((out["households"] < 300) | (out["households"] > 500)).all()
    assert out["households"].is_monotonic_increasing
    assert out["norm"].tolist() == sorted(out["norm"].tolist(), key=["below", "above"].index)
    # A wider norm leaves fewer grids outside it.
    wider = stats.households_per_grid(assigned_homes, demo_system, norm=(200, 800))
    assert stats.outside_norm(wider)["households"].tolist() == [180]


# -- incidents per grid ----------------------------------------------------------
def test_incidents_per_grid_exact_on_tiny_frames(tiny_system):
    events = tiny_incidents()
    by_class = stats.incidents_per_grid(events, tiny_system)
    assert by_class.index.tolist() == [A1, A2, B1, B2]
    assert by_class.columns.tolist() == ["公用设施", "市容环境", "突发事件"]
    assert by_class.loc[A1].tolist() == [0, 1, 1]
    assert by_class.loc[B2].tolist() == [0, 0, 0]
    by_status = stats.incidents_per_grid(events, by="status")  # grids with incidents only
    assert by_status.columns.tolist() == list(stats.CASE_STATUSES)
    assert by_status.index.tolist() == [A1, A2, B1]
    assert by_status.loc[A1].tolist() == [0, 1, 0, 1, 0]
    by_month = stats.incidents_per_grid(events, tiny_system, by="month")
    assert by_month.columns.tolist() == ["2026-01", "2026-02", "2026-03"]  # empty February kept
    assert by_month.sum().tolist() == [2, 0, 2]
    with pytest.raises(GridgeoError, match="by="):
        stats.incidents_per_grid(events, by="colour")


def test_demo_incidents_per_grid_sum_to_the_assigned_incidents(assigned_events, demo_system):
    assigned = int(assigned_events["grid_code"].notna().sum())
    assert assigned == len(assigned_events)  # the demo's incidents all fall in a grid
    totals = []
    for by in stats.BY:
        table = stats.incidents_per_grid(assigned_events, demo_system, by=by)
        assert len(table) == 662
        assert int(table.to_numpy().sum()) == assigned
        totals.append(table.sum(axis=1))
    for total in totals[1:]:
        pd.testing.assert_series_equal(total, totals[0])
    months = stats.incidents_per_grid(assigned_events, demo_system, by="month").columns
    assert months.tolist() == ["2025-12", *(f"2026-{m:02d}" for m in range(1, 12))]


# -- overdue -------------------------------------------------------------------
def test_overdue_exact_on_tiny_frames():
    out = stats.overdue(tiny_incidents(), "2026-03-20")
    # Closed never (a); open past the deadline (b, c, d); flagged overdue (e) even
    # before its deadline, with 0 days. Most overdue first.
    assert out.index.tolist() == ["b", "d", "c", "e"]
    np.testing.assert_allclose(out["days_overdue"], [52.0, 8.0, 3.0, 0.0])
    # Default as_of: the latest report (2026-03-31).
    default = stats.overdue(tiny_incidents())
    assert default["days_overdue"].to_dict() == {"b": 63.0, "d": 19.0, "c": 14.0, "e": 0.0}
    # Nothing open is late early in the year.
    assert stats.overdue(tiny_incidents(), "2026-01-05").index.tolist() == ["e"]


def test_demo_overdue_rows_are_open_and_past_their_deadline(assigned_events):
    out = stats.overdue(assigned_events, demo.AS_OF)
    assert isinstance(out, gpd.GeoDataFrame)
    assert len(out) > 0
    assert (out["deadline"] < demo.AS_OF).all()
    assert not (out["case_status"] == "closed").any()
    assert (out["days_overdue"] > 0).all()
    assert out["days_overdue"].is_monotonic_decreasing
    # At the demo's own date the generator's "overdue" flag and the deadlines agree.
    assert len(out) == int((assigned_events["case_status"] == "overdue").sum())
    later = stats.overdue(assigned_events, demo.AS_OF + pd.Timedelta(days=30))
    assert len(later) > len(out)
    assert (later["case_status"] != "closed").all()


def test_assignment_status_is_not_taken_for_a_case_status():
    events = tiny_incidents().assign(status="inside")  # what assign() leaves in "status"
    with pytest.raises(SchemaError, match="case_status"):
        stats.overdue(events, "2026-03-20")
    renamed = tiny_incidents().rename(columns={"status": "case_status"}).assign(status="inside")
    assert len(stats.overdue(renamed, "2026-03-20")) == 4
    with pytest.raises(SchemaError, match="not case statuses"):
        stats.overdue(renamed, "2026-03-20", status="status")


# -- escalation ------------------------------------------------------------------
def test_escalation_subclass_overrides_class_and_unknown_goes_to_grid():
    events = pd.DataFrame(
        {
            "event_class": ["市容环境", "市容环境", "突发事件", "突发事件", "其他", "街面秩序"],
            "subclass": ["暴露垃圾", "垃圾箱", "火灾隐患", "邻里纠纷", "无名", "新类"],
        },
        index=[5, 4, 3, 2, 1, 0],
    )
    level = stats.escalation_level(events)
    assert level.index.tolist() == [5, 4, 3, 2, 1, 0]
    assert level.name == "handling_level"
    assert level.tolist() == [
        "refinement",
        "workload",
        "district",
        "workload",
        "workload",
        "workload",
    ]
    # The class decides where the subclass is not listed (新类 under 街面秩序 → workload).
    assert stats.ESCALATION["市容环境"] == "refinement" and stats.ESCALATION["垃圾箱"] == "workload"
    # A user's table changes the result; so does the default.
    mine = {**stats.ESCALATION, "垃圾箱": "refinement", "街面秩序": "district"}
    assert stats.escalation_level(events, mine).tolist() == [
        "refinement",
        "refinement",
        "district",
        "workload",
        "workload",
        "district",
    ]
    assert stats.escalation_level(events, default="district").tolist()[4] == "district"
    # Class only, no subclass column.
    assert stats.escalation_level(events[["event_class"]]).tolist()[:3] == [
        "refinement",
        "refinement",
        "district",
    ]
    with pytest.raises(GridgeoError, match="tiers"):
        stats.escalation_level(events, {"暴露垃圾": "street"})


def test_escalation_table_covers_the_demo_classes_as_the_brief_says():
    for _, event_class, subclass, _ in demo.INCIDENT_CLASSES:
        assert event_class in stats.ESCALATION and subclass in stats.ESCALATION
    expected = {
        "refinement": ["暴露垃圾", "非法小广告", "乱堆物料"],
        "workload": ["占道经营", "井盖", "路灯", "道路破损", "施工扰民", "邻里纠纷"],
        "district": ["火灾隐患", "违章建筑"],
    }
    for level, names in expected.items():
        assert all(stats.ESCALATION[n] == level for n in names)


def test_handling_units_exact_on_tiny_frames():
    out = stats.handling_units(tiny_incidents())
    assert out.index.tolist() == list("abcde")
    # named by the level handling each case; b is a compound case in a grid no
    # micro-grid refines, so its grid handles it (handling_fallback)
    assert out["handling_level"].tolist() == ["micro_grid", "grid", "town", "grid", "grid"]
    assert out["handling_unit"].tolist()[:4] == [MICRO, A2, TOWN_A, B1]
    assert pd.isna(out["handling_unit"].iloc[4])  # no grid: no unit
    assert out["handling_fallback"].tolist() == [False, True, False, False, False]
    summary = stats.handling_summary(tiny_incidents())
    assert summary.index.names == ["handling_level", "handling_unit"]
    assert summary.index.tolist() == [
        ("micro_grid", MICRO),
        ("grid", A2),
        ("grid", B1),
        ("town", TOWN_A),
    ]
    assert summary.loc[("micro_grid", MICRO)].tolist() == [0, 0, 0, 1, 0]
    assert int(summary.to_numpy().sum()) == 4


def test_demo_handling_units_come_from_the_right_level(assigned_events):
    out = stats.handling_units(assigned_events)
    level = out["handling_level"].astype(str)
    unit = out["handling_unit"]
    micro = out["micro_grid_code"].astype(object)
    grid = out["grid_code"].astype(object)
    town = out["town_code"].astype(object)
    tier = stats.escalation_level(assigned_events).astype(str)
    at_micro = level == "micro_grid"
    assert at_micro.any() and (unit[at_micro] == micro[at_micro]).all()
    assert (unit[level == "grid"] == grid[level == "grid"]).all()
    assert (unit[level == "town"] == town[level == "town"]).all()
    assert ((level == "town") == (tier == "district")).all()
    # Micro-grid cases in grids no micro-grid refines (rural, dedicated) fall back to the grid.
    fallback = out["handling_fallback"]
    assert fallback.any()
    assert (fallback == ((tier == "refinement") & micro.isna())).all()
    assert (level[fallback] == "grid").all() and (unit[fallback] == grid[fallback]).all()
    assert (unit.str.slice(0, 9) == town).all()
    assert set(level) == {"micro_grid", "grid", "town"}


def test_demo_handling_summary_counts_every_case_once(assigned_events):
    summary = stats.handling_summary(assigned_events)
    assert int(summary.to_numpy().sum()) == len(assigned_events)
    assert list(summary.columns) == list(stats.CASE_STATUSES)
    per_level = summary.groupby(level="handling_level", sort=False).sum()
    assert per_level.index.tolist() == ["micro_grid", "grid", "town"]
    units = stats.handling_units(assigned_events)
    direct = pd.crosstab(units["handling_level"].astype(str), assigned_events["case_status"])
    for lvl in per_level.index:
        assert per_level.loc[lvl].to_dict() == direct.loc[lvl].reindex(summary.columns).to_dict()


# -- rates -------------------------------------------------------------------------
def test_incident_rates_exact_on_tiny_frames(tiny_system):
    per_grid = stats.households_per_grid(tiny_households(), tiny_system)
    out = stats.incident_rates(tiny_incidents(), per_grid, as_of="2026-03-20")
    assert isinstance(out, gpd.GeoDataFrame)
    assert out["incidents"].tolist() == [2, 1, 1, 0]
    assert out["open"].tolist() == [1, 1, 1, 0]
    assert out["overdue"].tolist() == [1, 1, 1, 0]
    np.testing.assert_allclose(out["per_1000_residents"], [2000 / 9, 200.0, np.nan, 0.0])
    again = stats.incident_rates(tiny_incidents(), out, as_of="2026-03-20")
    assert again.columns.tolist() == out.columns.tolist()


def test_demo_incident_rates(assigned_events, per_grid):
    out = stats.incident_rates(assigned_events, per_grid, as_of=demo.AS_OF)
    assert len(out) == 662
    assert out["incidents"].sum() == len(assigned_events)
    assert out["open"].sum() == int((assigned_events["case_status"] != "closed").sum())
    assert out["overdue"].sum() == len(stats.overdue(assigned_events, demo.AS_OF))
    np.testing.assert_allclose(
        out["per_1000_residents"], out["incidents"] * 1000 / out["residents"].where(lambda r: r > 0)
    )
    # About 0.05 incidents per resident in the demo: roughly 50 per 1,000.
    assert 40 < out["incidents"].sum() * 1000 / out["residents"].sum() < 60


# -- one case-status list; unknown values flagged, not fatal ---------------------------
def test_an_unknown_case_status_is_flagged_and_the_rest_counted():
    events = tiny_incidents()
    events.loc["b", "status"] = "已结案"
    with pytest.warns(stats.CaseStatusWarning, match=r"'已结案' \(rows \['b'\]\)"):
        case = stats.case_status(events)
    assert case.index.equals(events.index)
    assert case.isna().tolist() == [False, True, False, False, False]
    with pytest.warns(stats.CaseStatusWarning):
        by_status = stats.incidents_per_grid(events, by="status")
    assert int(by_status.to_numpy().sum()) == 3  # 4 placed incidents, 1 unknown status
    with pytest.warns(stats.CaseStatusWarning):
        late = stats.overdue(events, "2026-03-20")
    assert set(late.index) == {"c", "d", "e"}  # b (reported, past deadline) unknown now


def test_open_statuses_are_the_case_statuses_but_closed():
    assert set(stats.OPEN_STATUSES) == set(stats.CASE_STATUSES) - {"closed"}


# -- households without a size column --------------------------------------------------
def test_households_without_size_count_one_per_row(tiny_system):
    homes = tiny_households().drop(columns="size")
    with pytest.warns(stats.HouseholdSizeWarning, match="no 'size' column"):
        out = stats.households_per_grid(homes, tiny_system).set_index("code")
    assert out.loc[A1, "households"] == 3 and out.loc[A1, "residents"] == 3
    assert out["households"].sum() == 6  # the unassigned row is not counted
    with pytest.raises(SchemaError, match="'persons'"):
        stats.households_per_grid(homes, tiny_system, size="persons")


def test_a_size_that_is_not_a_number_names_the_row(tiny_system):
    homes = tiny_households()
    homes["size"] = homes["size"].astype(object)
    homes.loc[12, "size"] = "四"
    with pytest.raises(SchemaError, match="row 12: '四'"):
        stats.households_per_grid(homes, tiny_system)
