"""Where the committed demo data lives; writing and loading it."""

from __future__ import annotations

import datetime
import importlib.resources
from functools import cache
from pathlib import Path

import geopandas as gpd

from gridgeo.errors import DataFileError
from gridgeo.model import GridSystem

SEED = 150823


def _data_dir() -> Path:
    """The folder of the committed demo data, read by ``load_demo``, written by ``write_demo``.

    In a checkout (plain or installed editable) it is the repository's
    top-level ``data/``, where users look for it and where ``gridgeo demo
    --regenerate`` belongs. A wheel carries the same folder inside the package
    as ``gridgeo/data`` (setup.py maps it at build time), found through
    :mod:`importlib.resources`.
    """
    package = Path(str(importlib.resources.files("gridgeo")))
    shipped = package / "data"
    return shipped if shipped.is_dir() else package.parent / "data"


DATA_DIR = _data_dir()
SHAPEFILE_DIR = DATA_DIR / "shapefiles"
DIRTY_PATH = DATA_DIR / "dirty" / "urad_front_dirty.gpkg"
TRUTH_PATH = DATA_DIR / "dirty" / "truth.geojson"
DATA_DATE = datetime.date(2026, 11, 30)  # recorded inside the committed files
DUAL_TRUTH_PATH = DATA_DIR / "dual_grid_truth.geojson"
UNITS_PATH = DATA_DIR / "units.parquet"


@cache
def _load(variant: str, data_dir: str) -> GridSystem:
    from gridgeo.io import read_system

    root = Path(data_dir)
    if variant == "clean":
        return read_system(root / "shapefiles")
    if variant == "dirty":
        return read_system(root / "dirty" / DIRTY_PATH.name, strict=False)
    raise DataFileError(f"unknown demo variant {variant!r}: use 'clean' or 'dirty'.")


def load_demo(
    variant: str = "clean", data_dir: Path | str = DATA_DIR, units: bool = False
) -> GridSystem:
    """The committed demo grid system (``"clean"``) or its ``"dirty"`` variant.

    Each call returns a fresh copy, so callers may modify it.

    Parameters
    ----------
    variant : {"clean", "dirty"}
    data_dir : path
        The folder of the demo data (default: the committed one).
    units : bool
        Also carry the unit layer (:func:`load_units`) as the source layer
        :data:`gridgeo.plan.units.UNIT_LAYER` (``"units"``), the building
        blocks a :class:`~gridgeo.plan.Plan` reassigns. The units tile the
        clean variant's grids; the dirty variant's defects break that.

    Examples
    --------
    >>> load_demo("dirty").counts()["micro_grid"]
    898
    >>> len(load_demo(units=True).sources["units"])
    16660
    """
    system = _load(variant, str(data_dir))
    sources = {k: v.copy() for k, v in system.sources.items()}
    if units:
        from gridgeo.plan.units import UNIT_LAYER  # lazily: gridgeo.plan builds on the demo

        sources[UNIT_LAYER] = load_units(data_dir)
    return GridSystem(
        {k: v.copy() for k, v in system.levels.items()}, system.config, sources, system.origin
    )


@cache
def _load_units(data_dir: str) -> gpd.GeoDataFrame:
    from gridgeo.io import read_layer

    return read_layer(Path(data_dir) / UNITS_PATH.name)


def load_units(data_dir: Path | str = DATA_DIR) -> gpd.GeoDataFrame:
    """The demo's unit layer: the building blocks its grids are made of.

    One unit per mesh cell the demo was grown from (16,660), each in
    one town, one grid and, where the grid is refined, one micro-grid, with
    the households and residents of :func:`gridgeo.demo.households` standing
    in it: the units of a grid tile it exactly and add up to its
    ``households`` and ``residents``. Columns: ``unit_id``, ``town_code``,
    ``grid_code``, ``micro_grid_code`` (``""`` where the grid is not
    refined), ``households``, ``residents``, ``village`` (the administrative
    village of a rural unit, else ``""``), ``kind`` (``"urban"``, ``"rural"``
    or ``"institution"``) and the polygon, in the storage CRS. Read once from
    ``units.parquet``; each call returns a fresh copy.

    >>> units = load_units()
    >>> units.loc[0, ["unit_id", "grid_code", "kind", "village"]].tolist()
    ['U00001', '150823100001', 'rural', '星火村']
    """
    return _load_units(str(data_dir)).copy()


def load_truth(which: str = "dirty", data_dir: Path | str = DATA_DIR) -> gpd.GeoDataFrame:
    """Ground truth: the dirty variant's defects (``"dirty"``) or the dual grid's (``"dual"``)."""
    from gridgeo.io import read_layer

    path = Path(data_dir) / ("dirty/truth.geojson" if which == "dirty" else DUAL_TRUTH_PATH.name)
    return read_layer(path)


def built_in_metric(system: GridSystem) -> GridSystem:
    """``system`` in its metric CRS, vertices projected as they are (no densifying).

    The demo is drawn in the metric CRS with edges straight *there*, and stored
    by its vertices; projecting them back vertex by vertex recovers exactly what
    was built, which keeps regeneration byte-identical. Real data, drawn in
    longitude/latitude, is projected with :meth:`GridSystem.to_metric` instead.
    """
    target = system.metric_crs
    return GridSystem(
        {name: frame.to_crs(target) for name, frame in system.levels.items()},
        system.config,
        {name: frame.to_crs(target) for name, frame in system.sources.items()},
        system.origin,
    )
