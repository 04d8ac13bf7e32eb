"""gridgeo.plan on the demo banner: the new user's merge, code stability, the CLI's plan views."""

from __future__ import annotations

import json
import warnings

import pytest

from gridgeo.check import check_system
from gridgeo.cli import main
from gridgeo.errors import PlanWarning
from gridgeo.plan import Plan, PlanStore, compare

TOWN = "150823100"
ERRORS = ["gap", "overlap", "orphan", "duplicate_code", "outside_parent", "sliver", "invalid"]


@pytest.fixture(scope="module")
def plan() -> Plan:
    from gridgeo import load_demo

    return Plan.from_system(load_demo(units=True), author="planner A")


def _errors(system) -> list[str]:
    d = check_system(system, dual=False).defects
    return sorted(d.loc[d["kind"].isin(ERRORS), "kind"])


def test_the_demo_plan_derives_the_shipped_grids(plan, demo_system):
    derived = plan.grids.set_index("code")
    shipped = demo_system["grid"].set_index("code")
    assert derived.index.equals(shipped.index.sort_values()) or set(derived.index) == set(
        shipped.index
    )
    assert (derived["households"] == shipped["households"].reindex(derived.index)).all()
    assert (derived["residents"] == shipped["residents"].reindex(derived.index)).all()
    # coverage unions of the units are the shipped polygons (same vertices, maybe another start)
    sample = shipped.index[::37]
    for code in sample:
        assert derived.loc[code, "geometry"].equals(shipped.loc[code, "geometry"])


def test_the_new_users_merge_leaves_no_error(plan):
    """The issue's case: grid 150823100018 merged into its neighbour gave 7 errors by hand."""
    code = "150823100018"
    partner = plan.neighbours(code).query("parent_code == @TOWN")["code"].iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        merged = plan.merge([code, partner])
    assert _errors(merged.to_system()) == []
    kept = min(code, partner)
    micro = merged.micro_grids
    assert all(c.startswith(p) for c, p in zip(micro["code"], micro["parent_code"], strict=True))
    assert (micro["parent_code"] != max(code, partner)).all()
    # no other grid's code changed
    before = set(plan.grid_table.index) - {code, partner}
    assert before <= set(merged.grid_table.index) and kept in merged.grid_table.index
    assert merged.grids["households"].sum() == plan.grids["households"].sum()


def test_plan_system_round_trips_through_from_system(plan):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        edited = plan.split("150823100017", parts=2)
    system = edited.to_system()
    again = Plan.from_system(system)
    assert (again.workload == edited.workload).all()
    assert again.grid_table.index.equals(edited.grid_table.index)
    town = system["town"].set_index("code")
    assert town["households"].sum() == plan.grids["households"].sum()


def test_compare_lists_the_households_to_reroute(plan, demo_households):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        edited = plan.split("150823100017", parts=2)
    c = compare(plan, edited, households=demo_households)
    new_code = c.grids.query("relation == 'split'")["code"].iloc[0]
    moved = c.units["households"].sum()
    assert len(c.households) == moved  # every household of a moved unit, and no other
    assert set(c.households["new_code"]) == {new_code}
    assert set(c.households["old_code"]) == {"150823100017"}


@pytest.fixture(scope="module")
def store_path(plan, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "plans.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        edited = plan.split("150823100017", parts=2)
    with PlanStore(path) as store:
        v1 = store.save(plan, message="as shipped", author="planner A")
        store.save(edited, message="split 017", author="planner B", parent=v1)
    return path


def test_cli_plan_log_show_diff_export(store_path, tmp_path, capsys):
    assert main(["plan", "log", str(store_path), "--format", "json"]) == 0
    log = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in log] == ["v1", "v2"]
    assert [v["author"] for v in log] == ["planner A", "planner B"]
    assert main(["plan", "show", str(store_path), "v2", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["summary"]["grids"] == 663 and shown["history"][0]["op"] == "split"
    assert main(["plan", "diff", str(store_path), "v1", "v2", "--format", "json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["summary"]["split"] == 1 and diff["summary"]["redrawn"] == 1
    assert main(["plan", "diff", str(store_path), "v1", "v2"]) == 0
    table = capsys.readouterr().out
    assert "150823100017" in table and max(len(line) for line in table.splitlines()) <= 80
    out = tmp_path / "v2.gpkg"
    assert main(["plan", "export", str(store_path), "v2", "-o", str(out)]) == 0
    assert out.stat().st_size > 100_000


def test_cli_plan_bad_input(store_path, tmp_path, capsys):
    assert main(["plan", "show", str(store_path), "v9"]) == 2
    err = capsys.readouterr().err
    assert "v9" in err and "Traceback" not in err
    bogus = tmp_path / "notes.gpkg"
    bogus.write_text("not a store")
    assert main(["plan", "log", str(bogus)]) == 2
    assert "notes.gpkg" in capsys.readouterr().err
    assert bogus.read_text() == "not a store"
    assert main(["plan", "export", str(store_path), "v2", "-o", str(store_path)]) == 2
    assert "input" in capsys.readouterr().err
    assert main(["plan", "log", str(tmp_path / "missing.gpkg")]) == 2
    assert "no such file" in capsys.readouterr().err
