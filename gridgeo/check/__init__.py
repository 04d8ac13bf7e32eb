"""Gap and overlap checks: a whole grid system, one level, or one plain layer.

The "四定" rule says every piece of the banner has exactly one grid at each
level, with a fixed person responsible. :func:`check_system` finds what
breaks it and returns the defects themselves — the gap polygon, the overlap
polygon, the mismatching edge, the self-intersection point — as one
GeoDataFrame (see :mod:`gridgeo.defects` for the columns).
:func:`check_layer` runs the same geometric checks on any polygon layer,
without codes or hierarchy.

Per level it reports invalid geometry (with GEOS's reason), empty and
non-polygon geometry, duplicate and malformed codes, orphans, overlaps,
gaps (parent area not covered by its children, found by differencing against
the parent, so gaps open to the parent's outer edge are found too), slivers
(by width: the diameter of the maximum inscribed circle), children outside
their parent, grids that fall apart, islands, and shared boundaries that do
not match vertex for vertex (GEOS coverage validation). With the source
layers present it also checks the merged dual grid (:mod:`gridgeo.dual`).

Invalid geometry is reported and checking continues on a repaired copy
(``make_valid``); holes that the repair itself creates are reported as
``repair_hole``, never as a user's gap. All measuring happens in the metric
CRS (projected once per layer, long edges densified: :func:`gridgeo.crs.project`),
with the tolerances of :class:`~gridgeo.config.Tolerances`. Gaps, overlaps,
slivers and outside-parent areas are each one connected piece per row
(:mod:`gridgeo.check.steps` says why); :meth:`CheckReport.borders` sums them
per border.

The modules: :mod:`~gridgeo.check.system` (levels and codes),
:mod:`~gridgeo.check.layer` (one plain layer), :mod:`~gridgeo.check.steps`
(the geometric steps both share), :mod:`~gridgeo.check.report`.

Example
-------
>>> from gridgeo import load_demo
>>> report = check_system(load_demo("dirty"), dual=False)
>>> report.ok
False
>>> sorted(report.defects["kind"].unique())  # doctest: +NORMALIZE_WHITESPACE
['duplicate_code', 'gap', 'invalid_geometry', 'orphan', 'outside_parent',
 'overlap', 'sliver']
"""

from gridgeo.check.layer import check_layer
from gridgeo.check.report import CheckReport
from gridgeo.check.system import check_level, check_system

__all__ = ["CheckReport", "check_layer", "check_level", "check_system"]
