"""Build the broken-input corpus of issue 8: ``python tests/corpus/build.py [OUT_DIR]``.

Every case is a folder ``OUT_DIR/NN_name/`` holding its input file(s) and a
``case.json`` that says which commands to run on it and what must happen
(exit code, words the message must contain, per-row statuses, files written).
``tests/test_corpus.py`` runs them.

The inputs are cut from the committed demo Shapefiles (``data/shapefiles``):
one town (沙德格苏木, 150823201) with the nine grids around its only refined
grid and that grid's seven micro-grids; the town and banner polygons are the
union of those grids, so the small system is a clean coverage. Files are
written with real writers (pyogrio/GDAL with gridgeo's declared DBF field
names, geopandas for GeoParquet, pandas, openpyxl), not gridgeo's own writer,
which refuses most of these inputs, and then damaged byte by byte where a case
needs it. Timestamps inside DBF, GeoPackage and xlsx files are pinned, so a
rebuild is byte-identical.

Inputs too large to commit (a 2 GiB CSV of NUL bytes, a DBF claiming millions
of records) are not built here: the case lists them under ``"generate"`` and
the test makes them sparse (no disk cost) with :func:`generate`.

The default OUT_DIR is ``tests/corpus/cases``; building there also rewrites
``tests/corpus/README.md``, the table of cases.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

HERE = Path(__file__).resolve().parent
CASES_DIR = HERE / "cases"
DEMO_DIR = HERE.parent.parent / "data" / "shapefiles"
README = HERE / "README.md"

TOWN = "150823201"  # 沙德格苏木: a small town with one refined grid
STORAGE_CRS = "EPSG:4490"
METRIC_CRS = "EPSG:4545"
PINNED_DATE = (124, 1, 1)  # DBF "last update" 2024-01-01 (years since 1900)
PINNED_TIME = "2024-01-01T00:00:00.000Z"

TEMPLATE_PAYLOAD = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
COMMENT_PAYLOAD = "幸福里{#3}号网格"
BLOCK_PAYLOAD = "{% for x in range(3) %}循环{% endfor %}"
EXPR_PAYLOAD = "{{ 7*7 }}号"
CLOSE_COMMENT_PAYLOAD = "#}{{ config }}{#"

# Roles of a case's input: which default command lines run it (see test_corpus.argv_for).
GRIDS, HOUSEHOLDS, INCIDENTS = "grids", "households", "incidents"
ALL = ("info", "check", "assign", "map")
POINT_COMMANDS = ("assign", "map")

_REGISTRY: list[tuple[str, str, Callable[[Path], dict]]] = []


def case(name: str, area: str) -> Callable:
    """Register a case builder: ``builder(folder) -> case description``."""

    def register(builder: Callable[[Path], dict]) -> Callable[[Path], dict]:
        _REGISTRY.append((name, area, builder))
        return builder

    return register


# -- the small valid system ----------------------------------------------------------------
_BASE: dict[str, gpd.GeoDataFrame] = {}


def _read_demo_layer(name: str) -> gpd.GeoDataFrame:
    """A committed demo layer read with pyogrio, long column names, text as ``object``."""
    from gridgeo.config import BANNER

    frame = pyogrio.read_dataframe(DEMO_DIR / f"{name}.shp", encoding="UTF-8")
    frame = frame.rename(columns={short: long for long, short in BANNER.shapefile_fields})
    for column in frame.columns:
        if column != "geometry" and not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    return frame


def base_layers() -> dict[str, gpd.GeoDataFrame]:
    """banner, town, grid, micro_grid of the small valid system (fresh copies)."""
    if not _BASE:
        demo = {name: _read_demo_layer(name) for name in ("banner", "town", "grid", "micro_grid")}
        grid = demo["grid"][demo["grid"]["parent_code"] == TOWN]
        micro = demo["micro_grid"][demo["micro_grid"]["parent_code"].str[:9] == TOWN]
        refined = grid[grid["code"].isin(micro["parent_code"])]
        grid = grid[grid.intersects(refined.union_all())].sort_values("code")
        outline = shapely.coverage_union_all(grid.geometry.to_numpy())
        town = demo["town"][demo["town"]["code"] == TOWN].copy()
        town["geometry"] = [outline]
        banner = demo["banner"].copy()
        banner["geometry"] = [outline]
        for name, frame in (("banner", banner), ("town", town), ("grid", grid)):
            _BASE[name] = frame.reset_index(drop=True)
        _BASE["micro_grid"] = micro.sort_values("code").reset_index(drop=True)
    return {name: frame.copy() for name, frame in _BASE.items()}


def households() -> pd.DataFrame:
    """Eight households, one inside each of the first eight grids (lon/lat as text)."""
    grid = base_layers()["grid"]
    points = grid.geometry.representative_point().iloc[:8]
    return pd.DataFrame(
        {
            "household_id": [f"H{k:02d}" for k in range(1, 9)],
            "head_name": ["彭和日", "方海尔", "王伟", "李芳", "张敏", "巴特尔", "刘洋", "赵丽"],
            "size": [3, 2, 5, 1, 4, 2, 3, 6],
            "lon": [f"{v:.6f}" for v in points.x],
            "lat": [f"{v:.6f}" for v in points.y],
        }
    )


def incidents() -> pd.DataFrame:
    """Six incidents in the first six grids, every case status once (and one more)."""
    grid = base_layers()["grid"]
    points = grid.geometry.representative_point().iloc[:6]
    return pd.DataFrame(
        {
            "incident_id": [f"E{k:02d}" for k in range(1, 7)],
            "category": ["事件", "部件", "事件", "事件", "部件", "事件"],
            "event_class": ["突发事件", "公用设施", "市容环境", "突发事件", "公用设施", "市容环境"],
            "subclass": ["火灾隐患", "路灯", "占道经营", "火灾隐患", "井盖", "垃圾"],
            "description": [
                "村委会旁楼道堆放易燃物",
                "路灯不亮已有数日",
                "路口占道经营",
                "仓库电线老化",
                "井盖缺失",
                "垃圾未清运",
            ],
            "reported_at": [f"2025-12-0{k} 08:00:00" for k in range(1, 7)],
            "deadline": [f"2025-12-1{k} 08:00:00" for k in range(1, 7)],
            "status": ["reported", "dispatched", "handled", "closed", "overdue", "reported"],
            "lon": [f"{v:.6f}" for v in points.x],
            "lat": [f"{v:.6f}" for v in points.y],
        }
    )


# -- writers (real ones) and pinning of timestamps -------------------------------------------
def write_shapefiles(layers: dict[str, gpd.GeoDataFrame], folder: Path) -> Path:
    """A Shapefile folder as gridgeo writes one: declared DBF field names, UTF-8 .cpg."""
    return write_raw_folder(layers, folder)


def write_raw_shapefile(
    frame: gpd.GeoDataFrame, path: Path, *, encoding: str = "UTF-8", rename: bool = True
) -> Path:
    """One Shapefile written by pyogrio directly (for data gridgeo's writer would refuse)."""
    from gridgeo.config import BANNER

    if rename:
        fields = dict(BANNER.shapefile_fields)
        frame = frame.rename(columns={k: v for k, v in fields.items() if k in frame.columns})
    options = {"geometry_type": "Polygon"} if frame.empty else {}
    pyogrio.write_dataframe(frame, path, driver="ESRI Shapefile", encoding=encoding, **options)
    pin_dbf(path.with_suffix(".dbf"))
    return path


def write_raw_folder(layers: dict[str, gpd.GeoDataFrame], folder: Path, **options) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in layers.items():
        write_raw_shapefile(frame, folder / f"{name}.shp", **options)
    return folder


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], path: Path) -> Path:
    """A GeoPackage with one layer per level (pyogrio, as gridgeo writes it)."""
    for name, frame in layers.items():
        pyogrio.write_dataframe(
            frame, path, layer=name, driver="GPKG", append=path.exists(), promote_to_multi=False
        )
    pin_gpkg(path)
    return path


def write_parquet_folder(layers: dict[str, gpd.GeoDataFrame], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in layers.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def write_csv(frame: pd.DataFrame, path: Path, encoding: str = "utf-8") -> Path:
    path.write_bytes(frame.to_csv(index=False, lineterminator="\n").encode(encoding))
    return path


def write_xlsx(frame: pd.DataFrame, path: Path) -> Path:
    """An .xlsx written by openpyxl, with pinned document and zip-entry times."""
    import datetime

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        sheet.append(list(row))
    pinned = datetime.datetime(2024, 1, 1)
    book.properties.created = book.properties.modified = pinned
    buffer = io.BytesIO()
    book.save(buffer)
    # Rewrite the zip with fixed entry times so the bytes do not depend on the clock.
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = _pin_core_xml(data)
            info = zipfile.ZipInfo(item.filename, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    return path


def _pin_core_xml(data: bytes) -> bytes:
    import re

    return re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2024-01-01T00:00:00Z", data)


def pin_dbf(dbf: Path) -> None:
    """Set the DBF header's last-update date to a fixed day."""
    with open(dbf, "r+b") as f:
        f.seek(1)
        f.write(bytes(PINNED_DATE))


def set_ldid(dbf: Path, ldid: int) -> None:
    """Set the DBF language driver id (header byte 29)."""
    with open(dbf, "r+b") as f:
        f.seek(29)
        f.write(bytes([ldid]))


def pin_gpkg(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE gpkg_contents SET last_change = ?", (PINNED_TIME,))
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "gpkg_metadata_reference" in tables:
            db.execute("UPDATE gpkg_metadata_reference SET timestamp = ?", (PINNED_TIME,))
    # Small pages: a GeoPackage is mostly near-empty pages of its many tables.
    db = sqlite3.connect(path)
    db.execute("PRAGMA page_size = 1024")
    db.execute("VACUUM")
    db.close()


def truncate_to(path: Path, fraction: float) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * fraction))


def map_coords(frame: gpd.GeoDataFrame, row: int, fn: Callable) -> gpd.GeoDataFrame:
    """``frame`` with the coordinates of one row passed through ``fn`` (an (n, 2) array)."""
    frame = frame.copy()
    geoms = frame.geometry.to_numpy().copy()
    geoms[row] = shapely.transform(geoms[row], fn)
    frame["geometry"] = geoms
    return frame


# -- generated at test time (never committed) -----------------------------------------------
def sparse_nul_csv(path: Path, size: int = 2 * 1024**3) -> Path:
    """A file of ``size`` NUL bytes, sparse: it takes no disk space."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def sparse_dbf(path: Path, size: int = 2 * 1024**3) -> Path:
    """Blow up an existing DBF: its header claims as many records as ``size`` holds,
    and the file is extended (sparse, all NUL) to ``size`` bytes."""
    head = bytearray(path.read_bytes()[:32])
    header_len = int.from_bytes(head[8:10], "little")
    record_len = int.from_bytes(head[10:12], "little")
    records = (size - header_len) // record_len
    head[4:8] = records.to_bytes(4, "little")
    with open(path, "r+b") as f:
        f.write(bytes(head))
        f.truncate(size)
    return path


GENERATORS: dict[str, Callable[[Path], Path]] = {
    "sparse_nul_csv": sparse_nul_csv,
    "sparse_dbf": sparse_dbf,
}


def generate(case_dir: Path) -> list[Path]:
    """Make the large inputs a case lists under ``"generate"`` (inside ``case_dir``)."""
    spec = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    made = []
    for item in spec.get("generate", []):
        made.append(GENERATORS[item["function"]](case_dir / item["path"]))
    return made


# -- message patterns shared by cases ----------------------------------------------------------
NO_MOJIBAKE = r"[\ue000-\uf8ff]|锟斤拷|�"


# ================================================================================================
# Grid systems
# ================================================================================================
@case("01_valid_system", "control")
def _valid(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    write_csv(households(), folder / "households.csv")
    write_csv(incidents(), folder / "incidents.csv")
    return {
        "about": "The small valid system and point tables every other case borrows: all succeed.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "info": {"exit": 0, "message": ["沙德格"]},
            "check": {
                "exit": 0,
                "writes": ["{out}/defects.gpkg"],
            },
            "assign": {
                "exit": 0,
                "writes": ["{out}/out.csv"],
                "rows": {
                    "file": "{out}/out.csv",
                    "key": "household_id",
                    "expect": {f"H{k:02d}": {"assign_status": "inside"} for k in range(1, 9)},
                },
            },
            "map": {"exit": 0, "writes": ["{out}/map.html"], "html": {"contains": ["沙德格苏木"]}},
        },
    }


def _traditional(layers: dict[str, gpd.GeoDataFrame], script: str) -> dict:
    """Only code/name/parent_code, names a Big5 (or CP949) file can hold."""
    names = {
        "big5": ("烏拉特前旗", "沙德格蘇木", "沙德格蘇木第{}網格", "第{}微網格"),
        "cp949": ("우라특전기", "사덕격소목", "제{}격자", "제{}미세격자"),
    }[script]
    out = {}
    for (level, frame), name in zip(layers.items(), names, strict=True):
        keep = [c for c in frame.columns if c in ("code", "name", "parent_code", "geometry")]
        if level == "town":  # numbers and pinyin: `gridgeo info` then prints the town names
            keep += ["pinyin", "households", "residents", "workers"]
        frame = frame[keep].copy()
        frame["name"] = [name.format(k + 1) for k in range(len(frame))]
        out[level] = frame
    return out


def _big5_folder(folder: Path, *, ldid: int, cpg: str | None) -> Path:
    layers = _traditional(base_layers(), "big5")
    write_raw_folder(layers, folder, encoding="CP950")
    for name in layers:
        set_ldid(folder / f"{name}.dbf", ldid)
        cpg_file = folder / f"{name}.cpg"
        if cpg is None:
            cpg_file.unlink()
        else:
            cpg_file.write_text(cpg, encoding="ascii")
    return folder


def _decoded_or_ask(name_part: str, html_name: str) -> dict:
    """Either the names are read right, or the command stops and asks for the encoding."""
    return {
        "info": {
            "accept": [
                {"exit": 0, "message": [name_part], "message_not": [NO_MOJIBAKE]},
                {"exit": 2, "message": [r"\.(dbf|shp|cpg)", "--encoding"]},
            ]
        },
        "check": {
            "accept": [
                {"exit": 0, "message_not": [NO_MOJIBAKE]},
                {"exit": 2, "message": [r"\.(dbf|shp|cpg)", "--encoding"]},
            ]
        },
        "assign": {
            "accept": [
                {"exit": 0, "writes": ["{out}/out.csv"], "message_not": [NO_MOJIBAKE]},
                {"exit": 2, "message": [r"\.(dbf|shp|cpg)", "--encoding"]},
            ]
        },
        "map": {
            "accept": [
                {
                    "exit": 0,
                    "html": {"contains": [html_name], "not_contains_regex": [NO_MOJIBAKE]},
                },
                {"exit": 2, "message": [r"\.(dbf|shp|cpg)", "--encoding"]},
            ]
        },
    }


@case("02_big5_shapefile_without_cpg", "io read")
def _big5_no_cpg(folder: Path) -> dict:
    _big5_folder(folder / "grids", ldid=0x00, cpg=None)
    return {
        "about": "Big5 (CP950) DBFs with no .cpg and no language byte: detect Big5 or stop "
        "and ask for the encoding; never mojibake (GB18030 'succeeds' with PUA characters).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": _decoded_or_ask("沙德格", "沙德格蘇木"),
    }


@case("03_big5_dbf_ldid_0x78", "io read")
def _big5_ldid(folder: Path) -> dict:
    _big5_folder(folder / "grids", ldid=0x78, cpg=None)
    return {
        "about": "Big5 DBFs whose language driver byte is 0x78 (CP950): read them right.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "info": {"exit": 0, "message": ["沙德格"], "message_not": [NO_MOJIBAKE]},
            "check": {"exit": 0, "message_not": [NO_MOJIBAKE]},
            "assign": {"exit": 0, "writes": ["{out}/out.csv"]},
            "map": {
                "exit": 0,
                "html": {
                    "contains": ["沙德格蘇木", "沙德格蘇木第1網格", "第1微網格"],
                    "not_contains_regex": [NO_MOJIBAKE],
                },
            },
        },
    }


@case("04_big5_cpg_says_gbk", "io read")
def _big5_cpg_gbk(folder: Path) -> dict:
    _big5_folder(folder / "grids", ldid=0x00, cpg="GBK")
    return {
        "about": "Big5 DBFs with a wrong .cpg saying GBK: the bytes decode as GBK into Private "
        "Use Area characters (mojibake); stop and name the .cpg instead.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"\w+\.(cpg|dbf)", r"GBK", r"(--encoding|\.cpg)"],
            },
        },
    }


@case("05_cp949_dbf_ldid_0x79", "io read")
def _cp949(folder: Path) -> dict:
    layers = _traditional(base_layers(), "cp949")
    write_raw_folder(layers, folder / "grids", encoding="CP949")
    for name in layers:
        set_ldid(folder / "grids" / f"{name}.dbf", 0x79)
        (folder / "grids" / f"{name}.cpg").unlink()
    return {
        "about": "Korean DBFs whose language driver byte is 0x79 (CP949): read them right.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "info": {"exit": 0, "message": ["사덕"], "message_not": [NO_MOJIBAKE]},
            "check": {"exit": 0},
            "assign": {"exit": 0, "writes": ["{out}/out.csv"]},
            "map": {
                "exit": 0,
                "html": {
                    "contains": ["사덕격소목", "제1격자"],
                    "not_contains_regex": [NO_MOJIBAKE],
                },
            },
        },
    }


@case("06_cpg_with_null_byte", "io read")
def _cpg_null(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    (folder / "grids" / "town.cpg").write_bytes(b"UT\x00F-8")
    return {
        "about": "town.cpg holds a NUL byte inside its text (ValueError: embedded null character).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"town\.cpg", r"encoding"]}},
    }


@case("07_cpg_garbage", "io read")
def _cpg_garbage(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    (folder / "grids" / "grid.cpg").write_bytes(bytes(range(0x80, 0xC0)) + b"\xff\xfe{}")
    return {
        "about": "grid.cpg holds binary garbage instead of an encoding name.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid\.cpg", r"encoding"]}},
    }


@case("08_prj_garbage", "io read")
def _prj_garbage(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    (folder / "grids" / "grid.prj").write_text("this is not a projection, it is a shopping list")
    return {
        "about": "grid.prj holds text that is no CRS: say the .prj is unreadable, not missing.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"grid\.prj", r"(EPSG:4490|CGCS2000|\.prj)"],
                "message_not": [r"has no \.prj", r"no \.prj file"],
            }
        },
    }


@case("09_prj_missing", "io read")
def _prj_missing(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    (folder / "grids" / "grid.prj").unlink()
    return {
        "about": "grid.prj is missing: no CRS for that layer.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid\.(shp|prj)", r"\.prj", r"EPSG:4490"]}},
    }


@case("10_shp_truncated", "io read")
def _shp_truncated(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    truncate_to(folder / "grids" / "grid.shp", 0.5)
    return {
        "about": "grid.shp cut to half its length: say the file is truncated, not that a "
        "polygon should be drawn.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [
                    r"grid\.s(hp|hx)",
                    r"(truncated|incomplete|damaged|corrupt|cut off|shorter|broken)",
                ],
                "message_not": [r"draw the polygon"],
            }
        },
    }


@case("11_dbf_missing", "io read")
def _dbf_missing(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    (folder / "grids" / "grid.dbf").unlink()
    return {
        "about": "grid.dbf (the attribute table) is missing.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid\.dbf"]}},
    }


@case("12_shx_missing", "io read")
def _shx_missing(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    (folder / "grids" / "grid.shx").unlink()
    return {
        "about": "grid.shx (the shape index) is missing; gridgeo must not write one beside "
        "the input (inputs stay unchanged).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid\.shx"]}},
    }


@case("13_dbf_header_damaged", "io read")
def _dbf_damaged(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    dbf = folder / "grids" / "grid.dbf"
    data = bytearray(dbf.read_bytes())
    data[8:12] = b"\xff\xff\x01\x00"  # header length 65535, record length 1
    dbf.write_bytes(bytes(data))
    return {
        "about": "grid.dbf with a damaged header (impossible header and record lengths).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid\.dbf"]}},
    }


@case("14_sparse_dbf_2gb", "io read")
def _sparse_dbf(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    return {
        "about": "grid.dbf claims ~2 GiB of records (sparse, all NUL; generated at test time, "
        "never committed). Refuse it with bounded memory (the .shp has 9 shapes).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "generate": [{"function": "sparse_dbf", "path": "grids/grid.dbf"}],
        "large": True,
        "expect": {"*": {"exit": 2, "message": [r"grid\.(dbf|shp)"]}},
    }


@case("15_symlink_loop_data", "io read")
def _symlink_data(folder: Path) -> dict:
    os.symlink("grids", folder / "grids")
    return {
        "about": "The data path is a symbolic link to itself: say it is a link loop, not that "
        "it does not exist.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"grids", r"(symbolic link|symlink|link loop|loop)"],
                "message_not": [r"does not exist"],
            }
        },
    }


@case("16_symlink_loop_layer", "io read")
def _symlink_layer(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    (folder / "grids" / "grid.shp").unlink()
    os.symlink("grid.shp", folder / "grids" / "grid.shp")
    return {
        "about": "grid.shp inside the folder is a symbolic link to itself.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"grid\.shp", r"(symbolic link|symlink|link loop|loop)"],
            }
        },
    }


def _relabelled(layers: dict, fn: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame]) -> dict:
    return {name: fn(frame) for name, frame in layers.items()}


@case("17_metres_labelled_4490", "model-check-assign")
def _metres(folder: Path) -> dict:
    layers = _relabelled(
        base_layers(),
        lambda f: f.to_crs(METRIC_CRS).set_crs(STORAGE_CRS, allow_override=True),
    )
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "Layers in projected metres (EPSG:4545) whose .prj says EPSG:4490: check "
        "printed a zip() traceback with exit 1, map a GEOSException, assign tried 143 GiB.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [
                    r"(banner|town|grid|micro_grid)",
                    r"(EPSG:4490|CGCS2000)",
                    r"(metre|meter|projected|area of use|outside|out of range|range)",
                ],
            }
        },
    }


@case("18_lat_lon_swapped", "model-check-assign")
def _swapped(folder: Path) -> dict:
    layers = _relabelled(
        base_layers(),
        lambda f: f.set_geometry(shapely.transform(f.geometry.to_numpy(), lambda c: c[:, ::-1])),
    )
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "Every layer with latitude and longitude swapped (labelled EPSG:4490).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [
                    r"(banner|town|grid|micro_grid)",
                    r"(swap|latitude|longitude|area of use|out of range|outside)",
                ],
            }
        },
    }


def _bad_vertex(folder: Path, value: float) -> None:
    """grid row 3 with one vertex's x set to ``value``.

    GDAL refuses to write non-finite coordinates, so the vertex is written as a
    sentinel number and its 8 bytes in grid.shp (vertex and bounding boxes) are
    then replaced by ``value``'s.
    """
    sentinel = 987654.0
    layers = base_layers()

    def poke(coords: np.ndarray) -> np.ndarray:
        coords = coords.copy()
        coords[2, 0] = sentinel
        return coords

    layers["grid"] = map_coords(layers["grid"], 3, poke)
    write_raw_folder(layers, folder / "grids")
    shp = folder / "grids" / "grid.shp"
    data = shp.read_bytes()
    old, new = struct.pack("<d", sentinel), struct.pack("<d", value)
    assert data.count(old) >= 1
    shp.write_bytes(data.replace(old, new))


def _bad_vertex_expect(code: str) -> dict:
    return {
        "*": {
            "exit": 2,
            "message": [r"grid", rf"(row 3\b|{code})", r"(coordinate|vertex|vertices|finite)"],
        }
    }


@case("19_nan_coordinate", "model-check-assign")
def _nan(folder: Path) -> dict:
    _bad_vertex(folder, float("nan"))
    return {
        "about": "One vertex of grid row 3 is NaN: GEOSException tracebacks in check and assign.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": _bad_vertex_expect(base_layers()["grid"].loc[3, "code"]),
    }


@case("20_inf_coordinate", "model-check-assign")
def _inf(folder: Path) -> dict:
    _bad_vertex(folder, float("inf"))
    return {
        "about": "One vertex of grid row 3 is +inf.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": _bad_vertex_expect(base_layers()["grid"].loc[3, "code"]),
    }


@case("21_1e300_coordinate", "model-check-assign")
def _huge(folder: Path) -> dict:
    _bad_vertex(folder, 1e300)
    return {
        "about": "One vertex of grid row 3 is 1e300 (absurd bounds: build_index sized its "
        "lattice from them, 143 GiB).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [
                    r"grid",
                    rf"(row 3\b|{base_layers()['grid'].loc[3, 'code']})",
                    r"(coordinate|vertex|vertices|range|area of use|outside)",
                ],
            }
        },
    }


@case("22_micro_grid_level_with_zero_features", "model-check-assign")
def _empty_micro(folder: Path) -> dict:
    layers = base_layers()
    layers["micro_grid"] = layers["micro_grid"].iloc[:0]
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "micro_grid.shp has zero features (TypeError: ufunc 'invert' in check). A "
        "refined level may be empty (no grid is refined): a valid system.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {"exit": 0},
            "check": {"exit": 0, "writes": ["{out}/defects.gpkg"]},
            "assign": {
                "exit": 0,
                "rows": {
                    "file": "{out}/out.csv",
                    "key": "household_id",
                    "expect": {"H01": {"assign_status": "inside", "micro_grid_code": ""}},
                },
            },
        },
    }


@case("39_grid_level_with_zero_features", "model-check-assign")
def _empty_level(folder: Path) -> dict:
    layers = base_layers()
    layers["grid"] = layers["grid"].iloc[:0]
    layers["micro_grid"] = layers["micro_grid"].iloc[:0]
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "grid.shp (and micro_grid.shp) have zero features: name the empty level. "
        "Commands that need the grids (info, assign) refuse it; check reports every town as "
        "one gap (exit 1); map draws what there is and says the level is empty.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"grid", r"(no features|zero features|empty|no polygons|no rows)"],
            },
            "check": {"exit": 1, "message": [r"gap", r"150823201"]},
            "map": {"exit": 0, "message": [r"'grid'", r"no features"]},
        },
    }


@case("23_level_missing", "model-check-assign")
def _missing_level(folder: Path) -> dict:
    layers = base_layers()
    del layers["micro_grid"]
    write_shapefiles(layers, folder / "grids")
    return {
        "about": "The micro_grid layer is absent from the folder.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"micro_grid", r"missing"]}},
    }


@case("24_mixed_crs", "model-check-assign")
def _mixed_crs(folder: Path) -> dict:
    layers = base_layers()
    layers["grid"] = layers["grid"].to_crs("EPSG:4326")
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "grid.shp in EPSG:4326 while the other layers are in EPSG:4490.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid", r"EPSG:4326", r"EPSG:4490"]}},
    }


@case("25_duplicate_codes", "model-check-assign")
def _duplicates(folder: Path) -> dict:
    layers = base_layers()
    grid = layers["grid"]
    code = grid.loc[0, "code"]
    grid.loc[1, "code"] = code
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "Two grids share one code. Documented: info, assign (strict) exit 2; check "
        "exits 1 listing the defect; map (lenient) draws the system.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "info": {"exit": 2, "message": [code, r"duplicate"]},
            "check": {
                "exit": 1,
                "message": [code],
                "writes": ["{out}/defects.gpkg"],
            },
            "assign": {"exit": 2, "message": [code, r"duplicate"]},
            "map": {"exit": 0, "writes": ["{out}/map.html"]},
        },
    }


@case("26_orphan_codes", "model-check-assign")
def _orphans(folder: Path) -> dict:
    layers = base_layers()
    grid = layers["grid"]
    refined = set(layers["micro_grid"]["parent_code"])
    row = int(np.flatnonzero(~grid["code"].isin(refined))[0])
    grid.loc[row, "parent_code"] = "150823999"
    write_raw_folder(layers, folder / "grids")
    code = grid.loc[row, "code"]
    return {
        "about": "A grid whose parent_code names no town. Documented: info, assign exit 2; "
        "check exits 1 with the defect; map (lenient) draws the system.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "info": {"exit": 2, "message": [r"150823999", code]},
            "check": {"exit": 1, "message": [code], "writes": ["{out}/defects.gpkg"]},
            "assign": {"exit": 2, "message": [r"150823999"]},
            "map": {"exit": 0, "writes": ["{out}/map.html"]},
        },
    }


@case("27_gpkg_with_unrelated_layers", "io read")
def _gpkg_extra(folder: Path) -> dict:
    layers = base_layers()
    path = write_gpkg(layers, folder / "grids.gpkg")
    outline = layers["town"].geometry.iloc[0]
    x0, y0, x1, y1 = outline.bounds
    roads = gpd.GeoDataFrame(
        {"road": ["G6", "S212"], "lanes": [4, 2]},
        geometry=[
            shapely.LineString([(x0, y0), (x1, y1)]),
            shapely.LineString([(x0, y1), (x1, y0)]),
        ],
        crs=STORAGE_CRS,
    )
    centre = outline.representative_point()
    buildings = gpd.GeoDataFrame(
        {"osm_id": [101, 102], "building": ["school", "house"]},
        geometry=[centre.buffer(0.001, 4), centre.buffer(0.0005, 4)],
        crs=STORAGE_CRS,
    )
    pyogrio.write_dataframe(roads, path, layer="roads", driver="GPKG", append=True)
    pyogrio.write_dataframe(buildings, path, layer="buildings", driver="GPKG", append=True)
    pin_gpkg(path)
    return {
        "about": "A GeoPackage that also holds unrelated layers roads and buildings: read the "
        "configured layers and say which were ignored.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": list(ALL),
        "expect": {"*": {"exit": 0, "message": [r"roads", r"buildings", r"ignor"]}},
    }


@case("28_gpkg_truncated", "io read")
def _gpkg_truncated(folder: Path) -> dict:
    path = write_gpkg(base_layers(), folder / "grids.gpkg")
    truncate_to(path, 0.4)
    return {
        "about": "grids.gpkg cut to 40% of its length.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [
                    r"grids\.gpkg",
                    r"(truncated|incomplete|damaged|corrupt|malformed|not a GeoPackage|cannot open)",
                ],
            }
        },
    }


@case("29_gpkg_empty_file", "io read")
def _gpkg_empty(folder: Path) -> dict:
    (folder / "grids.gpkg").write_bytes(b"")
    return {
        "about": "grids.gpkg is a 0-byte file.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grids\.gpkg", r"(empty|0 bytes|no layers)"]}},
    }


@case("30_gpkg_is_text", "io read")
def _gpkg_text(folder: Path) -> dict:
    (folder / "grids.gpkg").write_text("code,name\n150823,乌拉特前旗\n", encoding="utf-8")
    return {
        "about": "A text (CSV) file named grids.gpkg.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"grids\.gpkg", r"(not a GeoPackage|not an SQLite|text|cannot open)"],
            }
        },
    }


@case("31_parquet_without_crs", "io read")
def _parquet_no_crs(folder: Path) -> dict:
    layers = {n: f.set_crs(None, allow_override=True) for n, f in base_layers().items()}
    write_parquet_folder(layers, folder / "grids")
    return {
        "about": "A GeoParquet folder whose files carry no CRS.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"\w+\.parquet", r"(coordinate reference system|CRS)", r"EPSG:4490"],
            }
        },
    }


@case("32_field_names_truncated_by_desktop_gis", "io read")
def _truncated_fields(folder: Path) -> dict:
    # Written with the long column names: GDAL truncates them to 10 characters
    # as desktop GIS does (parent_code -> parent_cod, general_grid -> general_gr).
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_raw_folder(base_layers(), folder / "grids", rename=False)
    recognised = {"exit": 0, "message_not": [r"parent_code.*missing"]}
    asked = {"exit": 2, "message": [r"parent_cod\b", r"parent_code"]}
    return {
        "about": "Field names truncated to 10 characters by a desktop GIS (parent_cod): read "
        "them as the long names they stand for, or name both and say how to map them.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"accept": [recognised, asked]}},
    }


@case("33_template_injection_in_names", "maps")
def _injection_names(folder: Path) -> dict:
    layers = base_layers()
    layers["town"].loc[0, "name"] = TEMPLATE_PAYLOAD
    grid = layers["grid"]
    grid.loc[0, "name"] = COMMENT_PAYLOAD
    grid.loc[1, "name"] = BLOCK_PAYLOAD
    grid.loc[2, "leader"] = EXPR_PAYLOAD
    grid.loc[3, "community"] = CLOSE_COMMENT_PAYLOAD
    layers["micro_grid"].loc[0, "name"] = TEMPLATE_PAYLOAD
    write_shapefiles(layers, folder / "grids")
    payloads = [TEMPLATE_PAYLOAD, COMMENT_PAYLOAD, BLOCK_PAYLOAD, EXPR_PAYLOAD]
    return {
        "about": "Jinja2 payloads in town/grid/micro-grid names and grid fields: the map "
        "shows them as text; nothing runs (no 'uid=' anywhere), no TemplateSyntaxError.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {"exit": 0, "message_not": [r"uid="]},
            "map": {
                "exit": 0,
                "message_not": [r"uid="],
                "html": {"contains": payloads, "not_contains": ["uid="]},
            },
        },
    }


@case("34_path_does_not_exist", "io read")
def _not_found(folder: Path) -> dict:
    (folder / "README").write_text("the input of this case is absent on purpose\n")
    return {
        "about": "The grid-system path does not exist.",
        "role": GRIDS,
        "input": "no_such_folder",
        "commands": list(ALL),
        "expect": {
            "*": {"exit": 2, "message": [r"no_such_folder", r"(does not exist|not found|no such)"]}
        },
    }


@case("35_point_geometry_in_a_level", "model-check-assign")
def _points_layer(folder: Path) -> dict:
    layers = base_layers()
    layers["grid"] = layers["grid"].set_geometry(layers["grid"].geometry.representative_point())
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "grid.shp holds points where polygons are required.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid", r"Point", r"polygon"]}},
    }


@case("36_null_geometry_row", "model-check-assign")
def _null_geometry(folder: Path) -> dict:
    layers = base_layers()
    grid = layers["grid"]
    refined = set(layers["micro_grid"]["parent_code"])
    row = int(np.flatnonzero(~grid["code"].isin(refined))[0])
    geoms = grid.geometry.to_numpy().copy()
    geoms[row] = None
    grid["geometry"] = geoms
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "One grid row has no geometry (a real missing polygon, unlike a truncated .shp).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {
            "*": {"exit": 2, "message": [r"grid", rf"(row {row}\b|{grid.loc[row, 'code']})"]}
        },
    }


@case("37_code_column_missing", "model-check-assign")
def _no_code(folder: Path) -> dict:
    layers = base_layers()
    layers["town"] = layers["town"].rename(columns={"code": "xzqh_dm"})
    write_raw_folder(layers, folder / "grids")
    return {
        "about": "town.shp has no code column (it is called xzqh_dm).",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"town", r"\bcode\b", r"xzqh_dm"]}},
    }


@case("38_parquet_is_text", "io read")
def _parquet_text(folder: Path) -> dict:
    write_parquet_folder(base_layers(), folder / "grids")
    (folder / "grids" / "grid.parquet").write_text("not parquet at all\n")
    return {
        "about": "grid.parquet in a GeoParquet folder is a text file.",
        "role": GRIDS,
        "input": "grids",
        "commands": list(ALL),
        "expect": {"*": {"exit": 2, "message": [r"grid\.parquet", r"(Parquet|GeoParquet)"]}},
    }


# ================================================================================================
# Point tables
# ================================================================================================
def _points_case(about: str, role: str, file: str, expect: dict, **more) -> dict:
    return {
        "about": about,
        "role": role,
        "input": file,
        "commands": list(POINT_COMMANDS),
        "expect": expect,
        **more,
    }


@case("40_xlsx_truncated", "tables")
def _xlsx_truncated(folder: Path) -> dict:
    path = write_xlsx(households(), folder / "households.xlsx")
    truncate_to(path, 0.6)
    return _points_case(
        "households.xlsx cut to 60% of its length (zipfile.BadZipFile traceback).",
        HOUSEHOLDS,
        "households.xlsx",
        {
            "*": {
                "exit": 2,
                "message": [
                    r"households\.xlsx",
                    r"(truncated|incomplete|damaged|corrupt|not a valid|cannot read)",
                ],
            }
        },
    )


@case("41_sparse_nul_csv_2gb", "tables")
def _sparse_csv(folder: Path) -> dict:
    (folder / "README").write_text("households.csv is generated at test time (2 GiB of NUL).\n")
    return _points_case(
        "A 2 GiB CSV of NUL bytes (sparse; generated at test time, never committed): refuse "
        "binary junk early, with bounded memory and a short message.",
        HOUSEHOLDS,
        "households.csv",
        {
            "*": {
                "exit": 2,
                "message": [r"households\.csv", r"(binary|NUL|not a text|not text|not a table)"],
                "max_output": 4000,
            }
        },
        generate=[{"function": "sparse_nul_csv", "path": "households.csv"}],
        large=True,
    )


@case("42_big5_csv", "tables")
def _big5_csv(folder: Path) -> dict:
    frame = households()
    names = ["陳大文", "黃志強", "張國榮", "劉德華", "梁朝偉", "鄭秀文", "謝霆鋒", "蘇永康"]
    frame["head_name"] = names
    write_csv(frame, folder / "households.csv", encoding="big5")
    ask = {"exit": 2, "message": [r"households\.csv", r"--encoding"]}
    return _points_case(
        "A households CSV in Big5: read the names right, or stop and ask for --encoding "
        "(GB18030 'succeeds' with mojibake).",
        HOUSEHOLDS,
        "households.csv",
        {
            "assign": {
                "accept": [
                    {
                        "exit": 0,
                        "rows": {
                            "file": "{out}/out.csv",
                            "key": "household_id",
                            "expect": {
                                f"H{k:02d}": {"head_name": name}
                                for k, name in enumerate(names, start=1)
                            },
                        },
                    },
                    ask,
                ]
            },
            "map": {"accept": [{"exit": 0, "writes": ["{out}/map.html"]}, ask]},
        },
    )


@case("43_csv_in_projected_metres", "tables")
def _projected_csv(folder: Path) -> dict:
    frame = households()
    points = gpd.GeoSeries(
        gpd.points_from_xy(frame["lon"].astype(float), frame["lat"].astype(float)),
        crs=STORAGE_CRS,
    ).to_crs(METRIC_CRS)
    frame = frame.drop(columns=["lon", "lat"])
    frame["x"] = [f"{v:.2f}" for v in points.x]
    frame["y"] = [f"{v:.2f}" for v in points.y]
    write_csv(frame, folder / "households.csv")
    return _points_case(
        "Households with x/y in projected metres (EPSG:4545), read as degrees: refuse with a "
        "--crs hint (was 100% invalid with exit 0).",
        HOUSEHOLDS,
        "households.csv",
        {
            "assign": {"exit": 2, "message": [r"households\.csv", r"--crs"]},
            "map": {
                "exit": 2,
                "message": [r"households\.csv", r"(metre|meter|projected|CRS|longitude)"],
            },
        },
    )


@case("44_lat_lon_swapped_rows", "model-check-assign")
def _swapped_rows(folder: Path) -> dict:
    frame = households()
    for row in (2, 4):
        frame.loc[row, ["lon", "lat"]] = frame.loc[row, ["lat", "lon"]].to_numpy()
    write_csv(frame, folder / "households.csv")
    inside = {"assign_status": "inside"}
    swapped = {"assign_status": "invalid", "assign_reason": r".*swap.*"}
    return _points_case(
        "Two households (H03, H05) with latitude and longitude swapped: per-row invalid.",
        HOUSEHOLDS,
        "households.csv",
        {
            "assign": {
                "exit": 0,
                "rows": {
                    "file": "{out}/out.csv",
                    "key": "household_id",
                    "expect": {
                        "H01": inside,
                        "H02": inside,
                        "H03": swapped,
                        "H04": inside,
                        "H05": swapped,
                    },
                },
            },
            "map": {"exit": 0, "writes": ["{out}/map.html"]},
        },
    )


@case("45_bad_coordinate_rows", "model-check-assign")
def _bad_rows(folder: Path) -> dict:
    frame = households()
    frame.loc[1, "lon"] = ""
    frame.loc[2, "lon"] = "abc"
    frame.loc[3, "lat"] = "NaN"
    frame.loc[4, "lon"] = "inf"
    frame.loc[5, "lat"] = "1e300"
    frame.loc[6, "lat"] = " "
    write_csv(frame, folder / "households.csv")
    told = {"assign_status": "invalid", "coord_error": r".+"}
    flagged = {"assign_status": "invalid", "assign_reason": r".+"}
    return _points_case(
        "Rows with blank, non-numeric, NaN, inf and 1e300 coordinates: each row invalid with "
        "its reason; map must not die on non-JSON floats.",
        HOUSEHOLDS,
        "households.csv",
        {
            "assign": {
                "exit": 0,
                "rows": {
                    "file": "{out}/out.csv",
                    "key": "household_id",
                    "expect": {
                        "H01": {"assign_status": "inside", "coord_error": ""},
                        "H02": {**told, "coord_error": r".*missing.*longitude.*"},
                        "H03": {**told, "coord_error": r".*longitude.*"},
                        "H04": {**told, "coord_error": r".*latitude.*"},
                        "H05": flagged,
                        "H06": flagged,
                        "H07": {**told, "coord_error": r".*missing.*latitude.*"},
                        "H08": {"assign_status": "inside"},
                    },
                },
            },
            "map": {"exit": 0, "writes": ["{out}/map.html"]},
        },
    )


@case("46_longitude_column_missing", "tables")
def _no_lon(folder: Path) -> dict:
    frame = households().rename(columns={"lon": "东西坐标"})
    write_csv(frame, folder / "households.csv")
    return _points_case(
        "No recognisable longitude column (it is called 东西坐标): the CLI message names --lon.",
        HOUSEHOLDS,
        "households.csv",
        {
            "assign": {"exit": 2, "message": [r"households\.csv", r"--lon", r"东西坐标"]},
            "map": {"exit": 2, "message": [r"households\.csv", r"(longitude|--lon)", r"东西坐标"]},
        },
    )


@case("47_lon_flag_names_absent_column", "tables")
def _lon_flag(folder: Path) -> dict:
    write_csv(households(), folder / "households.csv")
    return {
        "about": "--lon names a column the table does not have.",
        "role": HOUSEHOLDS,
        "input": "households.csv",
        "commands": ["assign"],
        "extra": {"assign": ["--lon", "经度X"]},
        "expect": {"assign": {"exit": 2, "message": [r"--lon", r"经度X", r"household_id"]}},
    }


@case("48_csv_empty_file", "tables")
def _empty_csv(folder: Path) -> dict:
    (folder / "households.csv").write_bytes(b"")
    return _points_case(
        "households.csv is a 0-byte file.",
        HOUSEHOLDS,
        "households.csv",
        {"*": {"exit": 2, "message": [r"households\.csv", r"(empty|0 bytes|no data)"]}},
    )


@case("49_csv_header_only", "tables")
def _header_only(folder: Path) -> dict:
    write_csv(households().iloc[:0], folder / "households.csv")
    return _points_case(
        "households.csv holds the header line and no rows.",
        HOUSEHOLDS,
        "households.csv",
        {"*": {"exit": 2, "message": [r"households\.csv", r"(no rows|no data|empty|header)"]}},
    )


@case("50_bad_crs_code", "cli")
def _bad_crs(folder: Path) -> dict:
    write_csv(households(), folder / "households.csv")
    return {
        "about": "--crs EPSG:999999 (no such CRS): pyproj CRSError traceback.",
        "role": HOUSEHOLDS,
        "input": "households.csv",
        "commands": ["assign"],
        "extra": {"assign": ["--crs", "EPSG:999999"]},
        "expect": {"assign": {"exit": 2, "message": [r"--crs", r"EPSG:999999"]}},
    }


@case("51_bad_crs_text", "cli")
def _bad_crs_text(folder: Path) -> dict:
    write_csv(households(), folder / "households.csv")
    return {
        "about": "--crs 'wgs 84 please' (not a CRS at all).",
        "role": HOUSEHOLDS,
        "input": "households.csv",
        "commands": ["assign"],
        "extra": {"assign": ["--crs", "wgs 84 please"]},
        "expect": {"assign": {"exit": 2, "message": [r"--crs", r"wgs 84 please"]}},
    }


@case("52_unknown_case_status", "maps")
def _unknown_status(folder: Path) -> dict:
    frame = incidents()
    frame.loc[2, "status"] = "已结案"
    write_csv(frame, folder / "incidents.csv")
    return _points_case(
        "One incident (E03) with an unknown case status 已结案: map the rest and flag the row.",
        INCIDENTS,
        "incidents.csv",
        {
            "assign": {"exit": 0, "writes": ["{out}/out.csv"]},
            "map": {
                "exit": 0,
                "writes": ["{out}/map.html"],
                "message": [r"已结案", r"(E03|row 2\b|row 3\b|1 (row|incident))"],
            },
        },
    )


@case("53_template_injection_in_incidents", "maps")
def _injection_incidents(folder: Path) -> dict:
    frame = incidents()
    frame.loc[0, "description"] = TEMPLATE_PAYLOAD
    frame.loc[1, "description"] = COMMENT_PAYLOAD
    frame.loc[4, "description"] = BLOCK_PAYLOAD
    frame.loc[5, "subclass"] = EXPR_PAYLOAD
    write_csv(frame, folder / "incidents.csv")
    return _points_case(
        "Jinja2 payloads in open incidents' descriptions and subclass: shown as text, never run.",
        INCIDENTS,
        "incidents.csv",
        {
            "assign": {"exit": 0, "message_not": [r"uid="]},
            "map": {
                "exit": 0,
                "message_not": [r"uid="],
                "html": {
                    "contains": [TEMPLATE_PAYLOAD, COMMENT_PAYLOAD, BLOCK_PAYLOAD, EXPR_PAYLOAD],
                    "not_contains": ["uid="],
                },
            },
        },
    )


@case("54_csv_formula_injection", "io write")
def _formulas(folder: Path) -> dict:
    frame = households()
    frame.loc[0, "head_name"] = '=HYPERLINK("http://example.com/x","点我")'
    frame.loc[1, "head_name"] = "@SUM(1)"
    frame.loc[2, "head_name"] = "+1+2"
    frame.loc[3, "head_name"] = "-3+4"
    frame.loc[4, "head_name"] = "=1+1"
    write_csv(frame, folder / "households.csv")
    safe = r"[^=+\-@\t\r].*"
    return _points_case(
        "Spreadsheet formulas in a name column: assign -o out.csv neutralises them (a cell "
        "must not start with = + - @) but keeps the text.",
        HOUSEHOLDS,
        "households.csv",
        {
            "assign": {
                "exit": 0,
                "rows": {
                    "file": "{out}/out.csv",
                    "key": "household_id",
                    "expect": {
                        "H01": {"head_name": safe + r"HYPERLINK\(.*"},
                        "H02": {"head_name": safe + r"SUM\(1\)"},
                        "H03": {"head_name": safe + r"1\+2"},
                        "H04": {"head_name": safe + r"3\+4"},
                        "H05": {"head_name": safe + r"1\+1", "assign_status": "inside"},
                    },
                },
            },
            "map": {"exit": 0, "writes": ["{out}/map.html"]},
        },
    )


@case("55_households_without_size", "cli")
def _no_size(folder: Path) -> dict:
    write_csv(households().drop(columns=["size"]), folder / "households.csv")
    return _points_case(
        "--households without a size column: count one household per row (or name the "
        "column), never tell a CLI user to call a Python function.",
        HOUSEHOLDS,
        "households.csv",
        {
            "assign": {"exit": 0, "writes": ["{out}/out.csv"]},
            "map": {
                "accept": [
                    {"exit": 0, "writes": ["{out}/map.html"]},
                    {
                        "exit": 2,
                        "message": [r"households\.csv", r"\bsize\b"],
                        "message_not": [r"gridgeo\.\w+\.\w+\(", r"\bassign\("],
                    },
                ]
            },
        },
    )


@case("56_csv_ragged_rows", "tables")
def _ragged(folder: Path) -> dict:
    text = households().to_csv(index=False, lineterminator="\n")
    lines = text.splitlines()
    lines[3] += ",extra,cells,here"
    (folder / "households.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return _points_case(
        "Line 4 of households.csv has more cells than the header.",
        HOUSEHOLDS,
        "households.csv",
        {"*": {"exit": 2, "message": [r"households\.csv", r"(line|row) 4\b"]}},
    )


# ================================================================================================
# Outputs
# ================================================================================================
@case("60_output_is_the_input_csv", "io write")
def _out_is_input(folder: Path) -> dict:
    write_csv(households(), folder / "households.csv")
    return {
        "about": "assign pts.csv -o pts.csv overwrote its input with exit 0; map -o onto the "
        "households table too. Refuse before any work.",
        "role": HOUSEHOLDS,
        "input": "households.csv",
        "commands": ["assign", "map"],
        "argv": {
            "assign": ["assign", "{input}", "--grids", "{valid}", "-o", "{input}"],
            "map": ["map", "{valid}", "--households", "{input}", "-o", "{input}"],
        },
        "expect": {"*": {"exit": 2, "message": [r"households\.csv", r"input"]}},
    }


@case("61_output_is_the_input_gpkg", "io write")
def _out_is_gpkg(folder: Path) -> dict:
    write_gpkg(base_layers(), folder / "grids.gpkg")
    return {
        "about": "check data.gpkg -o data.gpkg wrote a 'dirty' layer into its input; assign "
        "-o and map -o onto the grid GeoPackage likewise.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": ["check", "assign", "map"],
        "argv": {
            "check": ["check", "{input}", "-o", "{input}"],
            "assign": ["assign", "{households}", "--grids", "{input}", "-o", "{input}"],
            "map": ["map", "{input}", "-o", "{input}"],
        },
        "expect": {"*": {"exit": 2, "message": [r"grids\.gpkg", r"input"]}},
    }


@case("62_output_inside_the_input_folder", "io write")
def _out_inside(folder: Path) -> dict:
    write_shapefiles(base_layers(), folder / "grids")
    return {
        "about": "Outputs written inside the input Shapefile folder.",
        "role": GRIDS,
        "input": "grids",
        "commands": ["check", "assign", "map"],
        "argv": {
            "check": ["check", "{input}", "-o", "{input}/defects.gpkg"],
            "assign": ["assign", "{households}", "--grids", "{input}", "-o", "{input}/out.csv"],
            "map": ["map", "{input}", "-o", "{input}/map.html"],
        },
        "expect": {"*": {"exit": 2, "message": [r"grids", r"input"]}},
    }


@case("63_output_is_a_directory", "io write")
def _out_dir(folder: Path) -> dict:
    (folder / "README").write_text("the outputs of this case are folders made at test time\n")
    return {
        "about": "-o names an existing folder: refuse before the work (was a traceback after it).",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["check", "assign", "map"],
        "setup_dirs": ["{out}/defects.gpkg", "{out}/out.csv", "{out}/map.html"],
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"(defects\.gpkg|out\.csv|map\.html)", r"(folder|director)"],
            }
        },
    }


@case("64_output_into_missing_folder", "io write")
def _out_missing(folder: Path) -> dict:
    (folder / "README").write_text("the outputs of this case go to folders that do not exist\n")
    return {
        "about": "-o into a folder that does not exist yet: create it (decided: created).",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["check", "assign", "map"],
        "argv": {
            "check": ["check", "{input}", "-o", "{out}/new/a/defects.gpkg"],
            "assign": ["assign", "{households}", "--grids", "{input}", "-o", "{out}/new/b/out.csv"],
            "map": ["map", "{input}", "-o", "{out}/new/c/map.html"],
        },
        "expect": {
            "check": {"exit": 0, "writes": ["{out}/new/a/defects.gpkg"]},
            "assign": {"exit": 0, "writes": ["{out}/new/b/out.csv"]},
            "map": {"exit": 0, "writes": ["{out}/new/c/map.html"]},
        },
    }


@case("65_summary_path_is_a_directory", "io write")
def _summary_dir(folder: Path) -> dict:
    (folder / "README").write_text("the --summary target is a folder made at test time\n")
    return {
        "about": "check -o d.gpkg --summary DIR: refuse before the work, and write no defects "
        "file (it was written before the summary failed).",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["check"],
        "setup_dirs": ["{out}/summary.json"],
        "argv": {
            "check": [
                "check",
                "{input}",
                "-o",
                "{out}/defects.gpkg",
                "--summary",
                "{out}/summary.json",
            ],
        },
        "expect": {"check": {"exit": 2, "message": [r"summary\.json", r"(folder|director)"]}},
    }


@case("66_summary_path_under_a_file", "io write")
def _summary_under_file(folder: Path) -> dict:
    (folder / "README").write_text("the --summary parent is a file made at test time\n")
    return {
        "about": "check --summary FILE/summary.json: the parent is a file, not a folder.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["check"],
        "setup_files": ["{out}/notes.txt"],
        "argv": {
            "check": [
                "check",
                "{input}",
                "-o",
                "{out}/defects.gpkg",
                "--summary",
                "{out}/notes.txt/summary.json",
            ],
        },
        "expect": {"check": {"exit": 2, "message": [r"notes\.txt", r"(folder|director|file)"]}},
    }


@case("67_output_unknown_suffix", "io write")
def _out_suffix(folder: Path) -> dict:
    (folder / "README").write_text("outputs with a suffix gridgeo cannot write\n")
    return {
        "about": "-o with a suffix gridgeo cannot write: refuse before the work, listing "
        "the ones it can (.csv included).",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["check", "assign"],
        "argv": {
            "check": ["check", "{input}", "-o", "{out}/defects.txt"],
            "assign": ["assign", "{households}", "--grids", "{input}", "-o", "{out}/out.txt"],
        },
        "expect": {
            "check": {"exit": 2, "message": [r"defects\.txt", r"\.gpkg"]},
            "assign": {"exit": 2, "message": [r"out\.txt", r"\.csv", r"\.gpkg"]},
        },
    }


@case("68_assign_to_shapefile", "io write")
def _out_shp(folder: Path) -> dict:
    (folder / "README").write_text("assign -o out.shp\n")
    return {
        "about": "assign -o out.shp was impossible (gridgeo's own columns exceed 10 "
        "characters): declared short names make it work.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["assign"],
        "argv": {"assign": ["assign", "{households}", "--grids", "{input}", "-o", "{out}/out.shp"]},
        "expect": {"assign": {"exit": 0, "writes": ["{out}/out.shp", "{out}/out.dbf"]}},
    }


@case("69_map_unknown_layer", "cli")
def _layers(folder: Path) -> dict:
    (folder / "README").write_text("map --layers nonsense\n")
    return {
        "about": "map --layers nonsense gave a map with zero layers and exit 0: refuse and "
        "list the valid names.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["map"],
        "extra": {"map": ["--layers", "nonsense"]},
        "expect": {"map": {"exit": 2, "message": [r"nonsense", r"\bgrid\b", r"micro_grid"]}},
    }


@case("70_config_not_toml", "config")
def _config_garbage(folder: Path) -> dict:
    (folder / "grids.toml").write_text("[root\ncode = 150823\n", encoding="utf-8")
    return {
        "about": "--config FILE that is not TOML (a broken table header): a named error.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": list(ALL),
        "extra": {c: ["--config", "{case}/grids.toml"] for c in ALL},
        "expect": {"*": {"exit": 2, "message": [r"grids\.toml", r"TOML"]}},
    }


@case("71_config_unknown_key", "config")
def _config_unknown_key(folder: Path) -> dict:
    from gridgeo.config import BANNER

    text = BANNER.to_toml().replace('name = "乌拉特前旗"', 'name = "乌拉特前旗"\ncolour = "red"')
    (folder / "grids.toml").write_text(text, encoding="utf-8")
    return {
        "about": "--config with a key gridgeo does not know ([root] colour): name it.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": list(ALL),
        "extra": {c: ["--config", "{case}/grids.toml"] for c in ALL},
        "expect": {"*": {"exit": 2, "message": [r"grids\.toml", r"colour"]}},
    }


@case("72_config_for_other_levels", "config")
def _config_other_levels(folder: Path) -> dict:
    from gridgeo.config import BANNER, Coverage, GridConfig, Level

    city = GridConfig(
        root_code="150800",
        root_name="巴彦淖尔市",
        levels=(
            Level("city", "市", "city", 4, Coverage.ROOT),
            Level("county", "旗县区", "county", 2, Coverage.FULL),
            Level("street", "街道", "street", 3, Coverage.FULL),
        ),
        shapefile_fields=BANNER.shapefile_fields,
    )
    (folder / "city.toml").write_text(city.to_toml(), encoding="utf-8")
    return {
        "about": "--config describing other levels (city, county, street) than the data "
        "holds: the missing levels and the layers found are named.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": list(ALL),
        "extra": {c: ["--config", "{case}/city.toml"] for c in ALL},
        "expect": {"*": {"exit": 2, "message": [r"city", r"county", r"missing"]}},
    }


@case("73_check_layer_not_in_file", "cli")
def _plain_layer_missing(folder: Path) -> dict:
    layers = base_layers()
    write_gpkg({"grid": layers["grid"]}, folder / "grids.gpkg")
    return {
        "about": "check --layer names a layer the GeoPackage does not hold: list the ones it has.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": ["check"],
        "extra": {"check": ["--layer", "streets"]},
        "expect": {"check": {"exit": 2, "message": [r"streets", r"grid"]}},
    }


@case("74_check_within_missing", "cli")
def _within_missing(folder: Path) -> dict:
    write_gpkg({"grid": base_layers()["grid"]}, folder / "grids.gpkg")
    return {
        "about": "check --layer grid --within a file that does not exist: name the flag.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": ["check"],
        "extra": {"check": ["--layer", "grid", "--within", "{case}/outline.gpkg"]},
        "expect": {"check": {"exit": 2, "message": [r"--within", r"outline\.gpkg"]}},
    }


@case("75_check_id_column_missing", "cli")
def _id_missing(folder: Path) -> dict:
    write_gpkg({"grid": base_layers()["grid"]}, folder / "grids.gpkg")
    return {
        "about": "check --layer grid --id NOPE: the column is named, with the ones there are.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": ["check"],
        "extra": {"check": ["--layer", "grid", "--id", "NOPE"]},
        "expect": {"check": {"exit": 2, "message": [r"NOPE", r"code"]}},
    }


@case("76_coords_on_projected_layers", "io-read")
def _coords_projected(folder: Path) -> dict:
    layers = {name: frame.to_crs(4545) for name, frame in base_layers().items()}
    write_shapefiles(layers, folder / "grids")
    return {
        "about": "--coords gcj02 on layers stored in metres (EPSG:4545): GCJ-02 is a "
        "longitude/latitude offset, so the flag cannot apply; say so.",
        "role": GRIDS,
        "input": "grids",
        "commands": ["info", "check", "map"],
        "extra": {c: ["--coords", "gcj02"] for c in ("info", "check", "map")},
        "expect": {"*": {"exit": 2, "message": [r"--coords", r"gcj02", r"4545|projected|metres"]}},
    }


@case("77_plan_store_is_a_plain_geopackage", "plan")
def _store_plain_gpkg(folder: Path) -> dict:
    write_gpkg(base_layers(), folder / "grids.gpkg")
    return {
        "about": "`gridgeo plan` on a GeoPackage of grids that is not a plan store: say it is "
        "not a gridgeo store and how one is made; never write into it.",
        "role": GRIDS,
        "input": "grids.gpkg",
        "commands": ["log", "show"],
        "argv": {"log": ["plan", "log", "{input}"], "show": ["plan", "show", "{input}"]},
        "expect": {"*": {"exit": 2, "message": [r"grids\.gpkg", r"store"]}},
    }


@case("78_plan_store_text_file", "plan")
def _store_text(folder: Path) -> dict:
    (folder / "plans.gpkg").write_text("版本记录 v1 v2\n", encoding="utf-8")
    return {
        "about": "A text file named plans.gpkg given as a plan store.",
        "role": GRIDS,
        "input": "plans.gpkg",
        "commands": ["log", "diff", "export"],
        "argv": {
            "log": ["plan", "log", "{input}"],
            "diff": ["plan", "diff", "{input}", "v1", "v2"],
            "export": ["plan", "export", "{input}", "v1", "-o", "{out}/v1.gpkg"],
        },
        "expect": {"*": {"exit": 2, "message": [r"plans\.gpkg"]}},
    }


@case("79_plan_store_empty_file", "plan")
def _store_empty(folder: Path) -> dict:
    (folder / "plans.gpkg").write_bytes(b"")
    return {
        "about": "An empty file given as a plan store (a copy that failed half-way).",
        "role": GRIDS,
        "input": "plans.gpkg",
        "commands": ["log"],
        "argv": {"log": ["plan", "log", "{input}"]},
        "expect": {"*": {"exit": 2, "message": [r"plans\.gpkg"]}},
    }


@case("80_plan_store_dsn_unreachable", "plan")
def _store_dsn(folder: Path) -> dict:
    (folder / "README.txt").write_text("no input file: the store is a database address\n")
    return {
        "about": "A PostgreSQL address nothing listens on, with a password in it: name the "
        "host, port and database, never the password.",
        "role": GRIDS,
        "input": "{out}",
        "commands": ["log"],
        "argv": {"log": ["plan", "log", "postgresql://planner:s3cr3t@127.0.0.1:9/plans"]},
        "expect": {
            "*": {
                "exit": 2,
                "message": [r"127\.0\.0\.1", r"\b9\b", r"plans"],
                "message_not": [r"s3cr3t"],
            }
        },
    }


def _note(folder: Path) -> None:
    (folder / "README.txt").write_text("no input of its own: the valid system is the input\n")


@case("81_repair_writes_into_its_input", "plan")
def _repair_into_input(folder: Path) -> dict:
    _note(folder)
    return {
        "about": "`gridgeo repair` told to write the repaired system over its input: refused "
        "before any work, the input untouched.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["repair"],
        "argv": {"repair": ["repair", "{valid}", "-o", "{valid}"]},
        "expect": {"*": {"exit": 2, "message": [r"-o/--out", r"input"]}},
    }


@case("82_repair_audit_suffix", "plan")
def _repair_audit_suffix(folder: Path) -> dict:
    _note(folder)
    return {
        "about": "An --audit file gridgeo cannot write (.txt): say which suffixes it writes.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["repair"],
        "argv": {
            "repair": ["repair", "{valid}", "-o", "{out}/r.gpkg", "--audit", "{out}/audit.txt"]
        },
        "expect": {"*": {"exit": 2, "message": [r"--audit", r"\.csv"]}},
    }


@case("83_rebalance_without_units", "plan")
def _rebalance_no_units(folder: Path) -> dict:
    _note(folder)
    return {
        "about": "`gridgeo rebalance` on a grid system without a units layer: say what units "
        "are and how to get them.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["rebalance"],
        "argv": {"rebalance": ["rebalance", "{valid}", "-o", "{out}/r.gpkg"]},
        "expect": {"*": {"exit": 2, "message": [r"units", r"derive_units|STORE@VERSION"]}},
    }


@case("84_rebalance_bad_window", "plan")
def _rebalance_window(folder: Path) -> dict:
    _note(folder)
    return {
        "about": "--households that is not MIN:MAX.",
        "role": GRIDS,
        "input": "{valid}",
        "commands": ["rebalance"],
        "argv": {"rebalance": ["rebalance", "{valid}", "--households", "三百到五百"]},
        "expect": {"*": {"exit": 2, "message": [r"--households", r"MIN:MAX"]}},
    }


# ================================================================================================
def build(out_dir: Path = CASES_DIR) -> list[dict]:
    """(Re)build every case under ``out_dir``; return their descriptions."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    cases = []
    for name, area, builder in _REGISTRY:
        folder = out_dir / name
        folder.mkdir()
        spec = {"name": name, "area": area, **builder(folder)}
        (folder / "case.json").write_text(
            json.dumps(spec, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        cases.append(spec)
    return cases


def _expected_text(spec: dict) -> str:
    parts = []
    for command in spec["commands"]:
        rule = spec["expect"].get(command, spec["expect"].get("*", {}))
        options = rule.get("accept", [rule])
        codes = " or ".join(str(o["exit"]) for o in options)
        parts.append(f"{command} {codes}")
    return ", ".join(parts)


def write_readme(cases: list[dict], path: Path = README) -> None:
    lines = [
        "# Broken-input corpus (issue 8)",
        "",
        "Generated by `python tests/corpus/build.py` (never edit the files by hand);",
        "run by `tests/test_corpus.py`. Each `cases/NN_name/` holds the input(s) and a",
        "`case.json`: the commands to run, the expected exit code (0 success, 1 defects",
        "found by `check`, 2 a named error), words the message must contain, per-row",
        "`assign_status` / `coord_error` of the output, files written. Every run must",
        "also print no traceback, write nothing when it fails, leave its inputs",
        "byte-identical, and name command-line flags (`--lon`), not Python keywords.",
        "",
        "Inputs are cut from the demo: town 沙德格苏木 (150823201), the nine grids around",
        "its refined grid and that grid's seven micro-grids. `{valid}` below is",
        "`01_valid_system/grids`. Cases marked *generated* are built sparse at test time",
        "(2 GiB, no disk cost) and run with the address space capped at the test",
        "process's size plus 1 GiB, so reading them whole fails. `area` says which part",
        "of gridgeo a failure points at (maps, io read, io write, tables,",
        "model-check-assign, cli).",
        "",
        "| case | area | input | expected exit | what |",
        "|---|---|---|---|---|",
    ]
    for spec in cases:
        what = spec["about"].replace("|", "\\|")
        if spec.get("large"):
            what += " *(generated)*"
        lines.append(
            f"| `{spec['name']}` | {spec['area']} | `{spec['input']}` ({spec['role']}) | "
            f"{_expected_text(spec)} | {what} |"
        )
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0]) if argv else CASES_DIR
    cases = build(out_dir)
    if out_dir.resolve() == CASES_DIR:
        write_readme(cases)
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"built {len(cases)} cases in {out_dir} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
