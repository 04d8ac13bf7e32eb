"""The gridgeo command: summaries, exit codes, errors without tracebacks."""

import json
import shutil
import subprocess
import sys

import pytest

from gridgeo.cli import main
from gridgeo.demo import DATA_DIR


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "gridgeo.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
    )


def test_info_prints_the_levels_with_chinese_names():
    result = run("info", str(DATA_DIR / "shapefiles"))
    assert result.returncode == 0, result.stderr
    assert "662" in result.stdout and "897" in result.stdout
    assert "乌拉山镇" in result.stdout and "额尔登布拉格苏木" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["info", "no/such/folder"], "no/such/folder"),
        (["info", str(DATA_DIR / "dirty" / "urad_front_dirty.gpkg")], "duplicate"),
    ],
)
def test_bad_input_exits_2_without_traceback(args, needle):
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr


def test_lenient_info_loads_the_dirty_variant(capsys):
    assert main(["info", "--lenient", str(DATA_DIR / "dirty" / "urad_front_dirty.gpkg")]) == 0
    assert "898" in capsys.readouterr().out  # 897 micro-grids + the orphan


def test_missing_level_names_the_file_and_level(tmp_path):
    folder = tmp_path / "shp"
    shutil.copytree(DATA_DIR / "shapefiles", folder)
    for f in folder.glob("micro_grid.*"):
        f.unlink()
    result = run("info", str(folder))
    assert result.returncode == 2
    assert "micro_grid" in result.stderr and str(folder) in result.stderr


def test_demo_runs_end_to_end(tmp_path):
    result = run("demo", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "乌拉山镇" in result.stdout
    summary = json.loads((tmp_path / "out" / "demo_summary.json").read_text(encoding="utf-8"))
    assert summary["levels"] == {"banner": 1, "town": 11, "grid": 662, "micro_grid": 897}
    assert summary["residents"] == 257_826
    assert (tmp_path / "out" / "households.parquet").stat().st_size > 1_000_000


def test_check_dirty_exits_1_and_writes_defects(tmp_path):
    out = tmp_path / "defects.gpkg"
    result = run("check", str(DATA_DIR / "dirty" / "urad_front_dirty.gpkg"), "-o", str(out))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "gap" in result.stdout and "150823104007" in result.stdout
    import geopandas as gpd

    defects = gpd.read_file(out)
    assert len(defects) == 11 and defects.crs.to_epsg() == 4490
    summary = json.loads((tmp_path / "defects.summary.json").read_text(encoding="utf-8"))
    assert summary["ok"] is False and summary["by_kind"]["gap"] == 2


def test_check_clean_exits_0_and_geojson_output(tmp_path):
    out = tmp_path / "defects.geojson"
    result = run(
        "check", str(DATA_DIR / "shapefiles"), "-o", str(out), "--summary", str(tmp_path / "s.json")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert summary["ok"] is True and summary.get("by_severity", {}).get("error", 0) == 0
