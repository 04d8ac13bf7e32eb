"""``gridgeo repair``: exit codes, outputs written atomically, inputs never modified."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gridgeo.check import check_system
from gridgeo.cli import main
from gridgeo.io import read_system, write_system

CORPUS = Path(__file__).resolve().parent / "corpus" / "cases"
VALID = CORPUS / "01_valid_system" / "grids"


def _tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _dirty(folder: Path, *, big: bool) -> Path:
    """The corpus' small valid system with a 0.5 m sliver overlap (and a 15 m one if ``big``)."""
    system = read_system(VALID)
    grids = system["grid"].copy()
    metric = grids.to_crs(system.metric_crs)
    geoms = metric.geometry.to_numpy().copy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="touches")
    pairs = [(a, b) for a, b in zip(left, right, strict=True) if a < b]
    for (a, b), depth in zip(pairs[:2], [0.5, 15.0] if big else [0.5], strict=False):
        shared = shapely.line_merge(shapely.intersection(geoms[a], geoms[b]))
        geoms[a] = shapely.union(geoms[a], shapely.intersection(shared.buffer(depth), geoms[b]))
    back = gpd.GeoSeries(geoms, crs=system.metric_crs).to_crs(system.crs)
    grids = grids.set_geometry(back.set_axis(grids.index))
    path = folder / "dirty.gpkg"
    write_system(system.replace(grid=grids), path)
    return path


@pytest.fixture(scope="module")
def small_dirty(tmp_path_factory) -> Path:
    return _dirty(tmp_path_factory.mktemp("small"), big=False)


@pytest.fixture(scope="module")
def big_dirty(tmp_path_factory) -> Path:
    return _dirty(tmp_path_factory.mktemp("big"), big=True)


def test_small_defects_are_repaired_exit_0(small_dirty, tmp_path, capsys):
    before = _tree_hash(small_dirty)
    out, audit = tmp_path / "repaired.gpkg", tmp_path / "audit.csv"
    assert main(["repair", str(small_dirty), "-o", str(out), "--audit", str(audit)]) == 0
    text = capsys.readouterr().out
    assert "repair proposal" in text and "checks clean" in text
    assert _tree_hash(small_dirty) == before  # DATA is never modified
    assert check_system(read_system(out), dual=False).ok
    table = pd.read_csv(audit, encoding="utf-8-sig", dtype={"from_code": str, "to_code": str})
    assert {"row", "kind", "action", "rule", "from_code", "to_code", "area_m2", "accepted"} <= set(
        table.columns
    )
    assert table["kind"].tolist() == ["sliver"] and table["accepted"].all()
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_big_defects_wait_for_review_exit_1(big_dirty, tmp_path, capsys):
    out = tmp_path / "repaired.gpkg"
    assert main(["repair", str(big_dirty), "-o", str(out)]) == 1
    assert "remain for review" in capsys.readouterr().out
    report = check_system(read_system(out, strict=False), dual=False)
    assert set(report.defects.query("severity == 'error'")["kind"]) == {"overlap"}
    out_all = tmp_path / "all.gpkg"
    args = ["repair", str(big_dirty), "-o", str(out_all), "--accept", "all", "--rule",
            "largest_area", "--audit", str(tmp_path / "audit.gpkg")]  # fmt: skip
    assert main(args) == 0
    assert check_system(read_system(out_all), dual=False).ok
    pieces = gpd.read_file(tmp_path / "audit.gpkg")
    grid_rows = pieces[pieces["level"] == "grid"]
    assert len(grid_rows) == 2 and set(grid_rows["rule"]) == {"largest_area"}


def test_json_output_lists_the_audit(big_dirty, tmp_path, capsys):
    out = tmp_path / "shapefiles"
    assert main(["repair", str(big_dirty), "-o", str(out), "--format", "json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["for_review"] == 1 and payload["rows"] == payload["accepted"] + 1
    assert payload["errors_before"] == 1 and payload["errors_after"] == 1
    review = [r for r in payload["audit"] if not r["accepted"]]
    assert [(r["kind"], r["action"]) for r in review] == [("overlap", "give")]
    # micro-grids follow their repaired grid: what now lies outside it is cut
    nested = [r for r in payload["audit"] if r["level"] == "micro_grid"]
    assert all(r["kind"] == "outside_parent" and r["depends_on"] for r in nested)
    assert (out / "grid.shp").is_file()


def test_clean_system_needs_nothing(tmp_path, capsys):
    out = tmp_path / "same.gpkg"
    assert main(["repair", str(VALID), "-o", str(out)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["repair", "no/such/folder", "-o", "{tmp}/x.gpkg"], ["no/such/folder", "no such file"]),
        (["repair", "{valid}", "-o", "{valid}/x.gpkg"], ["inside the input"]),
        (["repair", "{valid}", "-o", "{tmp}/x.gpkg", "--audit", "{tmp}/a.txt"], [".csv"]),
        (["repair", "{valid}", "-o", "{tmp}/x.gpkg", "--rule", "households"], ["--households"]),
    ],
)
def test_bad_input_exit_2(args, words, tmp_path, capsys):
    valid = tmp_path / "valid"
    shutil.copytree(VALID, valid)
    before = _tree_hash(valid)
    argv = [a.format(tmp=tmp_path, valid=valid) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert "Traceback" not in err and "households=" not in err
    assert _tree_hash(valid) == before
    assert not (tmp_path / "x.gpkg").exists()


def _broken_cases() -> list[str]:
    """Corpus cases ``gridgeo check DATA`` refuses with exit 2 for their data alone (not for
    an option: ``argv``/``extra``), small ones (no generated inputs)."""
    out = []
    for folder in sorted(CORPUS.iterdir()):
        case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
        expect = case.get("expect", {})
        check = expect.get("check", expect.get("*", {}))
        if (
            check.get("exit") == 2
            and not {"generate", "argv", "extra"} & set(case)
            and (folder / "grids").exists()
        ):
            out.append(folder.name)
    return out


@pytest.mark.parametrize("case", _broken_cases())
def test_corpus_inputs_check_refuses_are_refused_too(case, tmp_path, capsys):
    source = CORPUS / case / "grids"
    data = tmp_path / "grids"
    if source.is_symlink() or any(p.is_symlink() for p in source.rglob("*")):
        data = source  # symlink loops are read where they are; they are never written
    else:
        shutil.copytree(source, data)
    before = _tree_hash(data) if not data.is_symlink() else None
    out = tmp_path / "out.gpkg"
    assert main(["repair", str(data), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err
    assert not out.exists()
    if before is not None:
        assert _tree_hash(data) == before
