"""gridgeo: grid-based governance (网格化治理) GIS for Urad Front Banner.

Grid systems as GeoDataFrames (banner → town → grid → micro-grid), the
banner's demo dataset, coverage checks, point assignment and offline
coverage maps.

>>> import gridgeo
>>> system = gridgeo.load_demo()
>>> system.counts()["grid"]
662
"""

from gridgeo.config import BANNER, Coverage, GridConfig, Level, Tolerances
from gridgeo.errors import GridgeoError
from gridgeo.io import read_layer, read_system, write_layer, write_system
from gridgeo.model import GridSystem

__all__ = [
    "BANNER",
    "Coverage",
    "GridConfig",
    "GridSystem",
    "GridgeoError",
    "Level",
    "Tolerances",
    "load_demo",
    "load_units",
    "read_layer",
    "read_system",
    "write_layer",
    "write_system",
]

__version__ = "0.1.0"


def load_demo(variant: str = "clean", units: bool = False) -> GridSystem:
    """The committed Urad Front Banner demo grid system.

    The data ship with the package (in a checkout: the repository's ``data/``),
    so this works offline right after ``pip install gridgeo``.

    Parameters
    ----------
    variant : {"clean", "dirty"}
        ``"clean"``, or ``"dirty"``: with known defects, loaded without code
        validation so :mod:`gridgeo.check` can report them.
    units : bool
        Also carry the demo's unit layer (:func:`load_units`) as the source
        layer ``"units"``, the building blocks :mod:`gridgeo.plan` reassigns.

    Returns
    -------
    GridSystem
        A fresh copy each call: callers may modify it.

    See Also
    --------
    gridgeo.demo.load_truth : the defects the dirty variant holds.

    Examples
    --------
    >>> import gridgeo
    >>> gridgeo.load_demo().counts()
    {'banner': 1, 'town': 11, 'grid': 662, 'micro_grid': 897}
    >>> gridgeo.load_demo("dirty").counts()["micro_grid"]  # 897 and an orphan
    898
    >>> len(gridgeo.load_demo(units=True).sources["units"])
    16660
    """
    from gridgeo.demo import load_demo as _load

    return _load(variant, units=units)


def load_units():
    """The demo's unit layer: the building blocks its grids are made of.

    16,660 units (the demo's mesh cells), each in one town, one grid and,
    where the grid is refined, one micro-grid, with the households and
    residents living there; the units of a grid tile it exactly and add up to
    its ``households`` and ``residents``. Loaded, like the demo, from the data
    shipped with the package; a fresh copy each call.

    See Also
    --------
    gridgeo.demo.load_units : the same, from another data folder.
    gridgeo.plan.units : what a unit layer holds, and how to derive one.

    Examples
    --------
    >>> import gridgeo
    >>> units = gridgeo.load_units()
    >>> len(units), int(units["households"].sum()), int(units["residents"].sum())
    (16660, 100099, 257826)
    """
    from gridgeo.demo import load_units as _load

    return _load()
