"""Shared fixtures: a tiny grid system built in code, and the shipped demo.

Everything derived from the demo is computed once per test session (loading,
the households, the assignment index, the dirty variant's check take seconds
each). Session fixtures are shared by every test: never modify them in place —
take a ``.copy()`` first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import box

from gridgeo.model import GridSystem

# the real PostgreSQL + PostGIS server the plan store tests use (postgis_dsn)
pytest_plugins = ["conftest_postgis"]


def tiny_layers() -> dict[str, gpd.GeoDataFrame]:
    """A banner of 2 towns, 4 grids and 3 micro-grids refining one grid (EPSG:4490)."""
    crs = "EPSG:4490"
    banner = gpd.GeoDataFrame(
        {"code": ["150823"], "name": ["乌拉特前旗"], "parent_code": [""]},
        geometry=[box(108.5, 40.7, 108.7, 40.8)],
        crs=crs,
    )
    town = gpd.GeoDataFrame(
        {
            "code": ["150823100", "150823101"],
            "name": ["乌拉山镇", "白彦花镇"],
            "parent_code": ["150823", "150823"],
        },
        geometry=[box(108.5, 40.7, 108.6, 40.8), box(108.6, 40.7, 108.7, 40.8)],
        crs=crs,
    )
    grid = gpd.GeoDataFrame(
        {
            "code": ["150823100001", "150823100002", "150823101001", "150823101002"],
            "name": ["瑞泰社区第1网格", "瑞泰社区第2网格", "复胜村一组网格", "复胜村二组网格"],
            "parent_code": ["150823100", "150823100", "150823101", "150823101"],
            "leader": ["王伟", "李芳", "张敏", "巴特尔"],
            "workers": [5, 4, 3, 2],
            "households": [420, 380, 90, 75],
            "residents": [1100, 990, 230, 190],
            "grid_type": ["comprehensive"] * 3 + ["dedicated"],
        },
        geometry=[
            box(108.5, 40.75, 108.6, 40.8),
            box(108.5, 40.7, 108.6, 40.75),
            box(108.6, 40.75, 108.7, 40.8),
            box(108.6, 40.7, 108.7, 40.75),
        ],
        crs=crs,
    )
    micro = gpd.GeoDataFrame(
        {
            "code": ["150823100001001", "150823100001002", "150823100001003"],
            "name": ["第1微网格", "第2微网格", "第3微网格"],
            "parent_code": ["150823100001"] * 3,
        },
        geometry=[
            box(108.5, 40.775, 108.55, 40.8),
            box(108.55, 40.775, 108.6, 40.8),
            box(108.5, 40.75, 108.6, 40.775),
        ],
        crs=crs,
    )
    return {"banner": banner, "town": town, "grid": grid, "micro_grid": micro}


@pytest.fixture
def tiny() -> GridSystem:
    return GridSystem.from_layers(tiny_layers(), origin="tiny")


@pytest.fixture(scope="session")
def demo_system() -> GridSystem:
    from gridgeo.demo import load_demo

    return load_demo()


@pytest.fixture(scope="session")
def system(demo_system) -> GridSystem:
    """The demo system, shared by the modules that only read it."""
    return demo_system


@pytest.fixture(scope="session")
def index(demo_system):
    """Its assignment index, built once for the whole run."""
    from gridgeo.assign import build_index

    return build_index(demo_system)


@pytest.fixture(scope="session")
def demo_households(demo_system):
    """The demo's ~100,000 synthetic households (``gridgeo.demo.households``)."""
    from gridgeo.demo import households

    return households(demo_system)


@pytest.fixture(scope="session")
def demo_incidents(demo_system, demo_households):
    """One year of demo incidents (``gridgeo.demo.incidents``)."""
    from gridgeo.demo import incidents

    return incidents(demo_system, demo_households)


@pytest.fixture(scope="session")
def assigned_households(demo_system, index, demo_households):
    """The demo households assigned to every level."""
    from gridgeo.assign import assign

    return assign(demo_households, demo_system, index=index)


@pytest.fixture(scope="session")
def assigned_incidents(demo_system, index, demo_incidents):
    """The demo incidents assigned to every level."""
    from gridgeo.assign import assign

    return assign(demo_incidents, demo_system, index=index)


@pytest.fixture(scope="session")
def dirty_system() -> GridSystem:
    """The dirty demo variant (known defects, loaded without code validation)."""
    from gridgeo.demo import load_demo

    return load_demo("dirty")


@pytest.fixture(scope="session")
def dirty_report(dirty_system):
    """``check_system`` of the dirty variant, without the dual-grid comparison."""
    from gridgeo.check import check_system

    return check_system(dirty_system, dual=False)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """``tmpfs(size)``: a real, small tmpfs (mount needs root, as in CI), unmounted after."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        disk = tmp_path / f"disk{len(mounted)}"
        disk.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], check=True
        )
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.fixture
def small_disk(tmpfs) -> Path:
    """A real 2 MB tmpfs: the full disk of the write tests."""
    return tmpfs("2m")


# Debian's Chromium, never `playwright install`; the flags keep it off the network
# (no update, sync or metrics requests) and working as root in a container.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for every browser test of a session (or xdist worker).

    Playwright's sync API runs one event loop per thread: a second ``sync_playwright()``
    while the first is open fails, so the map and editor tests share this one.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
