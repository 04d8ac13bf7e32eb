"""The gridgeo command: exit codes, errors without tracebacks, outputs checked up front,
streamed assignment."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from gridgeo.cli import main
from gridgeo.demo import DATA_DIR

SHAPEFILES = DATA_DIR / "shapefiles"
DIRTY = DATA_DIR / "dirty" / "urad_front_dirty.gpkg"
GRIDGEO = shutil.which("gridgeo") or str(Path(sys.executable).with_name("gridgeo"))


def run(*args, cwd=None, columns=200):
    """The installed ``gridgeo`` console script, in a fresh process."""
    return subprocess.run(
        [GRIDGEO, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={
            "COLUMNS": str(columns),
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "PYTHONIOENCODING": "utf-8",
        },
    )


def texts(values) -> list[str]:
    return ["" if pd.isna(v) else str(v) for v in values]


def fingerprint(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file under a folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def grids(tiny, tmp_path) -> Path:
    """The tiny grid system of conftest as a GeoPackage (fast to read)."""
    from gridgeo.io import write_system

    return write_system(tiny, tmp_path / "grids.gpkg")


@pytest.fixture
def points_csv(tmp_path, tiny) -> Path:
    """60 households inside the tiny banner, one outside it, two without coordinates."""
    rng = np.random.default_rng(8)
    inside = gpd.GeoSeries(
        gpd.points_from_xy(rng.uniform(108.5, 108.7, 60), rng.uniform(40.7, 40.8, 60))
    )
    table = pd.DataFrame(
        {
            "household_id": np.arange(63),
            "head_name": ["王伟"] * 62 + ["=cmd|' /C calc'!A0"],
            "lon": [*inside.x, 108.9, None, 108.6],
            "lat": [*inside.y, 40.75, 40.7, None],
        }
    )
    path = tmp_path / "in" / "pts.csv"
    path.parent.mkdir()
    table.to_csv(path, index=False)
    return path


# -- what already worked ------------------------------------------------------------------------
def test_info_prints_the_levels_with_chinese_names():
    result = run("info", SHAPEFILES)
    assert result.returncode == 0, result.stderr
    assert "662" in result.stdout and "897" in result.stdout
    assert "乌拉山镇" in result.stdout and "额尔登布拉格苏木" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["info", "no/such/folder"], "no/such/folder"),
        (["info", str(DIRTY)], "duplicate"),
    ],
)
def test_bad_input_exits_2_without_traceback(args, needle):
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr


def test_lenient_info_loads_the_dirty_variant(capsys):
    assert main(["info", "--lenient", str(DIRTY)]) == 0
    assert "898" in capsys.readouterr().out  # 897 micro-grids + the orphan


def test_missing_level_names_the_file_and_level(tmp_path):
    folder = tmp_path / "shp"
    shutil.copytree(SHAPEFILES, folder)
    for f in folder.glob("micro_grid.*"):
        f.unlink()
    result = run("info", folder)
    assert result.returncode == 2
    assert "micro_grid" in result.stderr and str(folder) in result.stderr


def test_check_dirty_exits_1_and_writes_defects(tmp_path):
    out = tmp_path / "defects.gpkg"
    result = run("check", DIRTY, "-o", out)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "gap" in result.stdout and "150823104007" in result.stdout
    defects = gpd.read_file(out)
    assert len(defects) == 11 and defects.crs.to_epsg() == 4490
    summary = json.loads((tmp_path / "defects.summary.json").read_text(encoding="utf-8"))
    assert summary["ok"] is False and summary["by_kind"]["gap"] == 2


def test_check_clean_exits_0_and_geojson_output(tmp_path, capsys):
    out = tmp_path / "defects.geojson"
    code = main(["check", str(SHAPEFILES), "-o", str(out), "--summary", str(tmp_path / "s.json")])
    assert code == 0, capsys.readouterr()
    summary = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert summary["ok"] is True and summary.get("by_severity", {}).get("error", 0) == 0


# -- errors: flag names, exit 2, nothing written, inputs unchanged --------------------------------
def refused(capsys, args, inputs, needles, written=()):
    """Run ``args`` in-process; it must exit 2 naming ``needles``, write nothing, touch no input."""
    before = {str(p): fingerprint(Path(p)) for p in inputs}
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in captured.err, captured.err
    for path in written:
        assert not Path(path).exists(), path
    assert {str(p): fingerprint(Path(p)) for p in inputs} == before
    return captured.err


def test_check_refuses_to_write_onto_its_input_geopackage(tmp_path, capsys):
    data = tmp_path / "data.gpkg"
    shutil.copy(DIRTY, data)
    refused(
        capsys,
        ["check", data, "-o", data],
        [data],
        ["-o/--out", "is the input", str(data)],
        [tmp_path / "data.summary.json"],
    )


def test_assign_refuses_to_overwrite_its_points(points_csv, capsys, grids):
    refused(
        capsys,
        ["assign", points_csv, "--grids", grids, "-o", points_csv],
        [points_csv],
        ["-o/--out", "is the input"],
    )


def test_output_through_a_symlink_to_the_input_is_refused(points_csv, tmp_path, capsys, grids):
    link = tmp_path / "link.csv"
    link.symlink_to(points_csv)
    refused(
        capsys,
        ["assign", points_csv, "--grids", grids, "-o", link],
        [points_csv],
        ["-o/--out", "is the input"],
    )


def test_output_inside_a_shapefile_folder_input_is_refused(tmp_path, capsys):
    folder = tmp_path / "shp"
    shutil.copytree(SHAPEFILES, folder)
    refused(
        capsys,
        ["check", folder, "-o", folder / "defects.gpkg"],
        [folder],
        ["-o/--out", "is inside the input", str(folder)],
        [folder / "defects.gpkg", folder / "defects.summary.json"],
    )


def test_output_folder_holding_the_input_is_refused(tmp_path, capsys):
    folder = tmp_path / "shp"
    shutil.copytree(SHAPEFILES, folder)
    demo_out = tmp_path
    refused(
        capsys,
        ["demo", "--data-dir", folder.parent, "--out", demo_out / "shp"],
        [folder],
        ["--out", "the input"],
    )


def test_missing_points_table_is_named(tmp_path, capsys, grids):
    missing = tmp_path / "nope.csv"
    refused(
        capsys,
        ["assign", missing, "--grids", grids, "-o", tmp_path / "out.csv"],
        [],
        ["points table", str(missing), "no such file"],
        [tmp_path / "out.csv"],
    )


def test_symlink_loop_is_not_called_missing(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    err = refused(capsys, ["info", loop], [], [str(loop)])
    assert "no such file" not in err and "symbolic links" in err


def test_output_that_is_a_folder_is_refused_before_the_check(tmp_path, capsys):
    folder = tmp_path / "defects.gpkg"
    folder.mkdir()
    refused(
        capsys,
        ["check", DIRTY, "-o", folder],
        [DIRTY],
        ["-o/--out", "is a folder"],
        [tmp_path / "defects.summary.json"],
    )
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("summary", "needle"),
    [("blocker/s.json", "is a file, not a folder"), ("s.txt", "cannot write '.txt'")],
)
def test_bad_summary_path_is_refused_before_writing_the_defects(tmp_path, capsys, summary, needle):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    refused(
        capsys,
        ["check", DIRTY, "-o", tmp_path / "d.gpkg", "--summary", tmp_path / summary],
        [DIRTY],
        ["--summary", needle],
        [tmp_path / "d.gpkg"],
    )


@pytest.fixture
def read_only(tmp_path):
    """A folder on a read-only bind mount (root ignores chmod), unmounted afterwards."""
    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "--bind", folder, folder], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", folder], check=True)
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


def test_read_only_output_folder_is_refused_up_front(read_only, points_csv, capsys, grids):
    err = refused(
        capsys,
        ["assign", points_csv, "--grids", grids, "-o", read_only / "out.csv"],
        [points_csv],
        ["-o/--out", "Read-only file system", str(read_only)],
    )
    assert "assigning" not in err
    assert list(read_only.iterdir()) == []


def test_read_only_folder_in_a_real_process(read_only, points_csv):
    """The installed console script: exit 2, one message, no traceback."""
    result = run("check", DIRTY, "-o", read_only / "new" / "d.gpkg")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "-o/--out" in result.stderr and "Read-only file system" in result.stderr
    assert result.stdout == ""


def test_bad_crs_names_the_flag(points_csv, tmp_path, capsys, grids):
    refused(
        capsys,
        ["assign", points_csv, "--grids", grids, "-o", tmp_path / "o.csv", "--crs", "EPSG:99"],
        [points_csv],
        ["--crs", "EPSG:99"],
        [tmp_path / "o.csv"],
    )


def test_shapefile_output_of_check_gets_a_hint(tmp_path, capsys):
    """Defects mix geometry types, so ``check -o`` still refuses a Shapefile (assign takes one)."""
    refused(
        capsys,
        ["check", DIRTY, "-o", tmp_path / "d.shp"],
        [DIRTY],
        ["-o/--out", ".gpkg", "Shapefile cannot hold"],
        [tmp_path / "d.shp", tmp_path / "d.summary.json"],
    )


def test_unknown_map_layer_is_refused_with_the_valid_names(tmp_path, capsys):
    from gridgeo.maps import LAYERS

    err = refused(
        capsys,
        ["map", SHAPEFILES, "-o", tmp_path / "m.html", "--layers", "grid,nonsense"],
        [SHAPEFILES],
        ["--layers", "nonsense"],
        [tmp_path / "m.html"],
    )
    assert all(name in err for name in LAYERS)


def test_messages_name_flags_not_python_keywords(tmp_path, capsys, grids):
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n", encoding="utf-8")
    err = refused(
        capsys,
        ["assign", table, "--grids", grids, "-o", tmp_path / "o.csv"],
        [table],
        ["--lon"],
        [tmp_path / "o.csv"],
    )
    assert "lon=" not in err


def test_output_onto_input_in_a_real_process(tmp_path):
    data = tmp_path / "data.gpkg"
    shutil.copy(DIRTY, data)
    before = fingerprint(data)
    result = run("check", data, "-o", data)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "is the input" in result.stderr
    assert fingerprint(data) == before


# -- help, version ------------------------------------------------------------------------------
def test_version(capsys):
    import gridgeo

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"gridgeo {gridgeo.__version__}"


@pytest.mark.parametrize("command", ["demo", "check", "assign", "map", "info"])
def test_every_subcommand_has_a_description_and_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:\n  gridgeo " in text
    description = text.split("\n\n")[1]
    assert len(description) > 80 and not description.startswith(("positional", "options"))


def test_help_explains_overlap_households_and_layers(capsys):
    from gridgeo.maps import LAYERS

    with pytest.raises(SystemExit):
        main(["assign", "--help"])
    assign_help = " ".join(capsys.readouterr().out.split())
    assert "--on-overlap {rule,review} a point inside overlapping grids" in assign_help
    with pytest.raises(SystemExit):
        main(["map", "--help"])
    map_help = " ".join(capsys.readouterr().out.split())
    assert "one household per row" in map_help and "size column" in map_help
    assert all(name in map_help for name in LAYERS)


def test_tiles_say_they_need_the_network(tiny, tmp_path, capsys):
    from gridgeo.io import write_system

    data = write_system(tiny, tmp_path / "tiny.gpkg")
    assert main(["map", str(data), "-o", str(tmp_path / "m.html"), "--tiles", "osm"]) == 0
    out = capsys.readouterr().out
    assert "needs the network" in " ".join(out.split()) and "works offline" not in out
    assert main(["map", str(data), "-o", str(tmp_path / "n.html")]) == 0
    assert "works offline" in capsys.readouterr().out


# -- streamed assignment ------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".gpkg", ".parquet", ".shp"])
def test_streamed_assignment_equals_the_api(points_csv, grids, tiny, tmp_path, capsys, suffix):
    from gridgeo.assign import assign
    from gridgeo.io import read_layer, read_points

    out = tmp_path / "out" / f"assigned{suffix}"  # the folder is created after the checks
    assert main(["assign", str(points_csv), "--grids", str(grids), "-o", str(out),
                 "--chunk-size", "7", "--format", "json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    expected = assign(read_points(points_csv), tiny)
    if suffix == ".csv":
        codes = {"grid_code": str, "micro_grid_code": str}
        got = pd.read_csv(out, encoding="utf-8-sig", dtype=codes)
        assert got["head_name"].iloc[-1].startswith("'=")  # write_table's formula rule
    else:
        got = read_layer(out)  # a Shapefile's short DBF names come back long
        assert set(got.columns) == set(expected.columns)
        assert got.crs.to_epsg() == 4326
        assert got.geometry.iloc[:60].geom_equals(expected.geometry.iloc[:60]).all()
        assert got["lon"].dtype == np.float64  # numbers stay numbers
    assert len(got) == 63
    assert got["household_id"].tolist() == list(range(63))
    for column in ("grid_code", "micro_grid_code", "assign_status", "assign_reason"):
        assert texts(got[column]) == texts(expected[column]), column
    counts = expected["assign_status"].value_counts()
    assert summary["rows"] == 63
    assert summary["by_status"] == {k: int(v) for k, v in counts.items()}
    listing = sorted(p.name for p in out.parent.iterdir())  # no staging left
    assert listing == (
        [f"assigned{s}" for s in (".cpg", ".dbf", ".prj", ".shp", ".shx")]
        if suffix == ".shp"
        else [out.name]
    )


def test_streamed_output_equals_one_write_of_the_api_result(points_csv, grids, tiny, tmp_path):
    """Chunk by chunk, the CLI writes the very file the API's whole result writes."""
    from gridgeo.assign import assign
    from gridgeo.io import read_layer, read_points, write_layer, write_table

    expected = assign(read_points(points_csv), tiny)
    write_table(expected, tmp_path / "api.csv")
    write_layer(expected, tmp_path / "api.parquet")
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"cli{suffix}"
        assert main(["assign", str(points_csv), "--grids", str(grids), "-o", str(out),
                     "--chunk-size", "5"]) == 0  # fmt: skip
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "api.csv").read_bytes()
    got, want = read_layer(tmp_path / "cli.parquet"), read_layer(tmp_path / "api.parquet")
    # No point lies on a boundary, so "candidates" has no category at all: pyarrow reads
    # the one-shot file's column back as object, the streamed one (typed by its first
    # chunk, before later chunks are known) stays categorical. Every other dtype matches.
    assert isinstance(got.pop("candidates").dtype, pd.CategoricalDtype)
    assert want.pop("candidates").isna().all()
    pd.testing.assert_frame_equal(got, want, check_categorical=False)
    assert str(got["household_id"].dtype) == "Int64"


def _sorted_points(tmp_path: Path, inside: bool) -> Path:
    """30 points east of the banner first (a file sorted by longitude), then 10 in it."""
    lon = [109.5 + i / 100 for i in range(30)] + [108.555 + i / 100 for i in range(10)]
    lat = [40.77] * 40  # off the grids' shared edge at 40.75
    if not inside:
        lon[30:] = [110.5] * 10
    table = pd.DataFrame({"id": range(40), "lon": lon, "lat": lat})
    path = tmp_path / "in" / "sorted.csv"
    path.parent.mkdir()
    table.to_csv(path, index=False)
    return path


def test_a_chunk_wholly_outside_the_banner_does_not_stop_the_run(grids, tiny, tmp_path, capsys):
    from gridgeo.assign import assign
    from gridgeo.errors import CrsError
    from gridgeo.io import read_points

    points = _sorted_points(tmp_path, inside=True)
    first = read_points(points).iloc[:10]
    with pytest.raises(CrsError, match="none of the 10 valid points"):
        assign(first, tiny)  # alone, the first chunk looks like a wrong CRS
    alone = assign(first, tiny, require_placed=False)
    assert alone["assign_status"].tolist() == ["outside"] * 10
    out = tmp_path / "o.csv"
    assert main(["assign", str(points), "--grids", str(grids), "-o", str(out),
                 "--chunk-size", "10", "--format", "json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["by_status"]["outside"] == 30 and summary["by_status"]["inside"] == 10
    expected = assign(read_points(points), tiny)  # one call: the same statuses
    got = pd.read_csv(out, encoding="utf-8-sig")
    assert got["assign_status"].tolist() == expected["assign_status"].astype(str).tolist()


@pytest.mark.parametrize("suffix", [".csv", ".shp"])
def test_no_point_placed_in_any_chunk_is_a_crs_error_and_writes_nothing(
    grids, tmp_path, capsys, suffix
):
    points = _sorted_points(tmp_path, inside=False)
    out = tmp_path / "out" / f"o{suffix}"
    err = refused(
        capsys,
        ["assign", points, "--grids", grids, "-o", out, "--chunk-size", "10"],
        [points, grids],
        ["none of the 40 valid points falls inside 乌拉特前旗", "EPSG:4326", "--coords"],
    )
    assert "coords=" not in err  # the flag, not the Python keyword
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grids.gpkg", "in"]


def test_full_disk_during_streamed_assignment_exits_2(grids, tmp_path, capsys, small_disk):
    """A real 2 MB tmpfs: a named error, exit 2, nothing at the target, no temporary."""
    rng = np.random.default_rng(2)
    n = 100_000  # more than 2 MB in every format
    table = pd.DataFrame(
        {"id": np.arange(n), "lon": rng.uniform(108.5, 108.7, n), "lat": rng.uniform(40.7, 40.8, n)}
    )
    points = tmp_path / "pts.csv"
    table.to_csv(points, index=False)
    for suffix in (".csv", ".gpkg", ".parquet", ".shp"):
        out = small_disk / f"o{suffix}"
        args = ["assign", points, "--grids", grids, "-o", out, "--chunk-size", "20000"]
        needles = ["the disk is full", str(out), "Nothing was written"]
        refused(capsys, args, [points, grids], needles)
        assert list(small_disk.iterdir()) == []


def test_failed_assignment_leaves_no_output(grids, tmp_path, capsys):
    """A chunk that fails midway (a bad row after the first chunk) writes nothing."""
    table = tmp_path / "t.csv"
    rows = [f"{i},108.63,40.74" for i in range(10)] + ["007,108.63,40.74"]
    table.write_text("code,lon,lat\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "o.gpkg"
    code = main(["assign", str(table), "--grids", str(grids), "-o", str(out),
                 "--chunk-size", "4"])  # fmt: skip
    assert code == 2, capsys.readouterr()
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grids.gpkg", "t.csv"]


def test_cli_voice_is_reset_after_a_run(points_csv, tmp_path, capsys):
    from gridgeo.errors import option

    main(["info", str(tmp_path / "missing")])
    assert option("lon", "x") == "lon='x'"


# -- --config ---------------------------------------------------------------------------
def test_config_error_names_the_file_and_key(tmp_path, capsys):
    from gridgeo.config import BANNER

    toml = tmp_path / "mine.toml"
    toml.write_text(BANNER.to_toml().replace("[tolerances]", "[tolerances]\nnoize = 4"), "utf-8")
    assert main(["info", str(DATA_DIR / "shapefiles"), "--config", str(toml)]) == 2
    err = capsys.readouterr().err
    assert "mine.toml" in err and "'tolerances.noize'" in err and "noise" in err


def test_missing_config_file_is_named(tmp_path, capsys):
    missing = tmp_path / "none.toml"
    assert main(["check", str(DATA_DIR / "shapefiles"), "--config", str(missing)]) == 2
    assert "--config" in capsys.readouterr().err


def test_banner_config_file_gives_the_default_result(tmp_path, capsys):
    from gridgeo.config import BANNER

    toml = tmp_path / "banner.toml"
    toml.write_text(BANNER.to_toml(), "utf-8")
    assert main(["info", str(DATA_DIR / "shapefiles"), "--format", "json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert (
        main(["info", str(DATA_DIR / "shapefiles"), "--config", str(toml), "--format", "json"]) == 0
    )
    assert json.loads(capsys.readouterr().out) == default


def test_init_writes_the_banner_configuration(tmp_path, capsys):
    from gridgeo.config import BANNER, GridConfig

    out = tmp_path / "sub" / "banner.toml"
    assert main(["init", str(DATA_DIR / "shapefiles"), "-o", str(out)]) == 0
    config = GridConfig.from_toml(out)
    assert config.level_names == BANNER.level_names
    assert [lv.code_digits for lv in config.levels] == [6, 3, 3, 3]
    assert config.level("micro_grid").coverage == "refined"
    assert set(config.dual_sources) == set(BANNER.dual_sources)
    assert config.root_code == BANNER.root_code and config.root_name == BANNER.root_name
    printed = capsys.readouterr()
    assert "wrote" in printed.out + printed.err


def test_init_refuses_other_outputs(tmp_path, capsys):
    assert main(["init", str(DATA_DIR / "shapefiles"), "-o", str(tmp_path / "x.json")]) == 2
    assert ".toml" in capsys.readouterr().err
    inside = DATA_DIR / "shapefiles" / "gridgeo.toml"
    assert main(["init", str(DATA_DIR / "shapefiles"), "-o", str(inside)]) == 2
    assert "inside the input" in capsys.readouterr().err
    assert not inside.exists()


def test_coords_converts_gcj02_grid_layers_on_read(tmp_path, capsys):
    """A grid system downloaded in GCJ-02 (AMap) puts households in the right grids with
    --grids-coords, and reads with the original areas with --coords."""
    import shapely

    from gridgeo import load_demo
    from gridgeo.crs import wgs84_to_gcj02
    from gridgeo.demo import households
    from gridgeo.io import write_system

    system = load_demo()

    def shift(frame):
        moved = frame.copy()
        moved.geometry = shapely.transform(
            frame.geometry.to_numpy(),
            lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1])),
        )
        return moved

    write_system(system.replace(**{n: shift(f) for n, f in system.items()}), tmp_path / "a.gpkg")
    homes = households(system).iloc[::400]
    table = pd.DataFrame({"lon": homes.geometry.x, "lat": homes.geometry.y})
    table.to_csv(tmp_path / "hh.csv", index=False)

    def grid_codes(grids, *extra):
        out = tmp_path / f"out{len(extra)}.csv"
        assert (
            main(["assign", str(tmp_path / "hh.csv"), "--grids", grids, "-o", str(out), *extra])
            == 0
        )
        return pd.read_csv(out, dtype=str)["grid_code"].tolist()

    truth = grid_codes(str(DATA_DIR / "shapefiles"))
    assert grid_codes(str(tmp_path / "a.gpkg"), "--grids-coords", "gcj02") == truth
    unconverted = grid_codes(str(tmp_path / "a.gpkg"))
    assert sum(a != b for a, b in zip(unconverted, truth, strict=True)) > len(truth) // 20
    capsys.readouterr()
    assert main(["info", str(tmp_path / "a.gpkg"), "--coords", "gcj02", "--format", "json"]) == 0
    converted = json.loads(capsys.readouterr().out)
    assert main(["info", str(DATA_DIR / "shapefiles"), "--format", "json"]) == 0
    original = json.loads(capsys.readouterr().out)
    assert converted["levels"]["grid"]["area_km2"] == pytest.approx(
        original["levels"]["grid"]["area_km2"], rel=1e-7
    )


def test_check_one_plain_layer(tmp_path, capsys):
    """`check FILE.shp` and `check FILE.gpkg --layer L --within FILE.gpkg:L2` check one layer."""
    assert main(["check", str(DATA_DIR / "shapefiles" / "grid.shp"), "--id", "code"]) == 0
    dirty = DATA_DIR / "dirty" / "urad_front_dirty.gpkg"
    capsys.readouterr()
    code = main(
        ["check", str(dirty), "--layer", "grid", "--within", f"{dirty}:banner", "--id", "code",
         "--format", "json"]
    )  # fmt: skip
    found = json.loads(capsys.readouterr().out)
    assert code == 1
    kinds = pd.Series([d["kind"] for d in found["defects"]]).value_counts().to_dict()
    assert kinds["gap"] == 2 and kinds["overlap"] == 2 and kinds["invalid_geometry"] == 1
    # the codes come from --id, not row numbers
    assert any(d["codes"] == "150823101052,150823101057" for d in found["defects"])
    assert (
        main(["check", str(dirty), "--layer", "grid", "--within", str(tmp_path / "no.gpkg")]) == 2
    )
    assert "--within" in capsys.readouterr().err


def test_check_adds_up_pieces_along_one_border(tmp_path, capsys):
    """Three sliver notches along the border of two cells read as one border with 3 pieces."""
    from shapely import box

    right = box(100, 0, 200, 100)
    for y0, y1 in ((10, 30), (60, 90), (92, 95)):
        right = right - box(100, y0, 100.4, y1)
    cells = gpd.GeoDataFrame({"id": ["甲", "乙"]}, geometry=[box(0, 0, 100, 100), right], crs=4545)
    cells.translate(500_000, 4_500_000).to_frame("geometry").assign(id=cells["id"]).to_file(
        tmp_path / "cells.gpkg", layer="cells"
    )
    assert main(["check", str(tmp_path / "cells.gpkg"), "--layer", "cells", "--id", "id"]) == 0
    out = capsys.readouterr().out
    assert "pieces along one" in out
    row = next(line for line in out.splitlines() if line.startswith("乙,甲"))
    assert row.split()[1:3] == ["sliver", "3"]
