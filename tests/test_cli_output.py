"""What the gridgeo command prints: tables that fit 80 columns, JSON/CSV for scripts, the demo."""

import io
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
from rich.cells import cell_len

from gridgeo.cli import main
from gridgeo.demo import DATA_DIR

SHAPEFILES = DATA_DIR / "shapefiles"
DIRTY = DATA_DIR / "dirty" / "urad_front_dirty.gpkg"


def narrow(capsys, monkeypatch, args) -> tuple[int, str]:
    """Run in-process on an 80-column console; every printed line must fit."""
    monkeypatch.setenv("COLUMNS", "80")
    code = main([str(a) for a in args])
    out = capsys.readouterr().out
    too_wide = [line for line in out.splitlines() if cell_len(line) > 80]
    assert not too_wide, too_wide
    assert "…" not in out.replace("… ", "")  # no cell cut short with an ellipsis
    return code, out


def test_info_fits_80_columns_with_whole_numbers(capsys, monkeypatch):
    code, out = narrow(capsys, monkeypatch, ["info", SHAPEFILES])
    assert code == 0
    for whole in ("7,483.5", "100,099", "257,826", "2,999", "133,334", "662", "897"):
        assert whole in out
    for town in ("150823100", "乌拉山镇", "150823200", "额尔登布拉格苏木", "108,850", "41,503"):
        assert town in out


def test_check_fits_80_columns_with_every_code(capsys, monkeypatch):
    code, out = narrow(capsys, monkeypatch, ["check", DIRTY])
    assert code == 1
    from gridgeo.check import check_system
    from gridgeo.demo import load_demo

    codes = ("150823104007", "150823107045", "150823107033", "150823100099004", "150823201999001")
    areas = check_system(load_demo("dirty"))
    largest = areas.defects["area_m2"].nlargest(2)  # the widest numbers, printed whole
    for whole in (*codes, *(f"{a:,.1f}" for a in largest), "150823108"):
        assert whole in out


def test_assign_table_fits_80_columns(capsys, monkeypatch, tmp_path, tiny):
    from gridgeo.io import write_system

    grids = write_system(tiny, tmp_path / "g.gpkg")
    points = tmp_path / "p.csv"
    points.write_text("lon,lat\n108.55,40.72\n108.65,40.78\n120,30\n,\n", encoding="utf-8")
    code, out = narrow(
        capsys, monkeypatch, ["assign", points, "--grids", grids, "-o", tmp_path / "o.csv"]
    )
    assert code == 0
    for status, rows in (("inside", 2), ("outside", 1), ("invalid", 1)):
        assert re.search(rf"(?m)^{status} +{rows} ", out), out


def test_info_json_and_csv_are_alone_on_stdout(capsys):
    assert main(["info", str(SHAPEFILES), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["levels"]["grid"]["count"] == 662
    assert info["levels"]["banner"]["households"] is None  # NaN is null, the JSON is valid
    assert len(info["towns"]) == 11
    assert sum(t["residents"] for t in info["towns"]) == 257_826
    assert main(["info", str(SHAPEFILES), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), index_col="level")
    assert table.loc["micro_grid", "count"] == 897


def test_check_csv_lists_every_defect_and_still_exits_1(capsys, tmp_path):
    out = tmp_path / "d.gpkg"
    assert main(["check", str(DIRTY), "--format", "csv", "-o", str(out)]) == 1
    captured = capsys.readouterr()
    table = pd.read_csv(io.StringIO(captured.out), dtype={"codes": str})
    assert len(table) == 11 and (table["kind"] == "gap").sum() == 2
    assert "150823201999001" in set(table["codes"])
    assert "wrote" in captured.err  # the rest went to stderr
    assert main(["check", str(DIRTY), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 11 and len(report["defects"]) == 11


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One `gridgeo demo` in a real process on an 80-column terminal."""
    out = tmp_path_factory.mktemp("demo") / "out"
    result = subprocess.run(
        [sys.executable, "-m", "gridgeo.cli", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
    )
    return result, out


def test_demo_runs_end_to_end(demo_run):
    result, out = demo_run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "乌拉山镇" in result.stdout
    summary = json.loads((out / "demo_summary.json").read_text(encoding="utf-8"))
    assert summary["levels"] == {"banner": 1, "town": 11, "grid": 662, "micro_grid": 897}
    assert summary["residents"] == 257_826
    assert (out / "households.parquet").stat().st_size > 1_000_000
    assert [line for line in result.stdout.splitlines() if cell_len(line) > 80] == []


def test_demo_writes_households_and_incidents_as_csv(demo_run):
    _, out = demo_run
    summary = json.loads((out / "demo_summary.json").read_text(encoding="utf-8"))
    homes = pd.read_csv(out / "households.csv", encoding="utf-8-sig", usecols=["size", "lon"])
    events = pd.read_csv(out / "incidents.csv", encoding="utf-8-sig", usecols=["lon", "lat"])
    assert len(homes) == summary["households"] and homes["size"].sum() == 257_826
    assert len(events) == summary["incidents"] and events["lon"].between(108, 110).all()


def test_demo_map_shows_the_clean_banners_findings_only(demo_run):
    """The dirty variant's defects (its orphan micro-grid, its duplicate code) are not
    drawn on the clean banner's map."""
    _, out = demo_run
    html = (out / "coverage_map.html").read_text(encoding="utf-8")
    assert "150823201999001" not in html  # the dirty variant's orphan
    assert "duplicate_code" not in html and "orphan" not in html
