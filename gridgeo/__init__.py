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
    "read_layer",
    "read_system",
    "write_layer",
    "write_system",
]

__version__ = "0.1.0"


def load_demo(variant: str = "clean") -> GridSystem:
    """The committed Urad Front Banner demo grid system.

    ``variant`` is ``"clean"`` or ``"dirty"`` (with known defects; loaded
    without code validation so :mod:`gridgeo.check` can report them).
    """
    from gridgeo.demo import load_demo as _load

    return _load(variant)
