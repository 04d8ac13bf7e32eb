"""The grid system: a stack of polygon levels linked by hierarchical codes.

A :class:`GridSystem` holds one GeoDataFrame per level of its
:class:`~gridgeo.config.GridConfig` (banner → town → grid → micro-grid for
Urad Front Banner), every row with a ``code``, a ``name`` and its
``parent_code``. Codes, never row order, link the levels. Optional *source
layers* (the party-building and sanitation grids merged into the dual grid)
travel with the system so the merge can be checked.

Example
-------
>>> from gridgeo import load_demo
>>> system = load_demo()
>>> system.counts()
{'banner': 1, 'town': 11, 'grid': 662, 'micro_grid': 897}
>>> system["town"].loc[0, "name"]
'乌拉山镇'
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from gridgeo.codes import as_text, code_width_ok
from gridgeo.config import BANNER, Coverage, GridConfig
from gridgeo.crs import check_coordinates, metric_crs, require_crs, require_same_crs, to_metric
from gridgeo.errors import CodeError, GeometryError, LayerError, SchemaError

__all__ = ["REQUIRED_COLUMNS", "GridSystem"]

REQUIRED_COLUMNS = ("code", "name", "parent_code")
"""Columns every level carries (the root's ``parent_code`` is empty)."""

"""The banner's two source layers merged into the dual grid (党建网格, 卫生网格).

A system's own are ``system.config.dual_sources``."""


@dataclass
class GridSystem:
    """Levels of a grid system as GeoDataFrames, plus optional source layers.

    Build one with :meth:`from_layers` (which checks it) or read one with
    :func:`gridgeo.io.read_system`.

    Attributes
    ----------
    levels:
        Level name → GeoDataFrame, top to bottom, in the storage CRS.
    config:
        The :class:`GridConfig` the levels follow.
    sources:
        Other named layers that belong to the system (the configuration's
        :attr:`~gridgeo.config.GridConfig.dual_sources`, the banner's
        ``party_grid`` and ``sanitation_grid``); not part of the hierarchy.
    origin:
        Where the system was read from, for messages.
    """

    levels: dict[str, gpd.GeoDataFrame]
    config: GridConfig = BANNER
    sources: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    origin: str = "<memory>"

    def __post_init__(self) -> None:
        # Every way of building a system (readers, from_layers, replace,
        # to_metric) passes here: no capability ever sees coordinates that
        # cannot be where the CRS says, or a system without its top polygon.
        root = self.config.levels[0].name
        if root in self.levels and len(self.levels[root]) == 0:
            raise LayerError(
                f"{self.origin}, layer {root!r}: the layer has no features. A grid system "
                f"needs the outline of {self.config.root_name} as its top level."
            )
        for name, frame in {**self.levels, **self.sources}.items():
            check_coordinates(frame, f"{self.origin}, layer {name!r}", self.config)

    @classmethod
    def from_layers(
        cls,
        layers: Mapping[str, gpd.GeoDataFrame],
        config: GridConfig = BANNER,
        *,
        strict: bool = True,
        origin: str = "<memory>",
    ) -> GridSystem:
        """Assemble and validate a grid system.

        Every level named by ``config`` must be present with ``code``,
        ``name`` and ``parent_code`` columns, polygon geometry and one shared
        CRS. With ``strict=True`` (the default) codes must also be unique,
        of the level's width, and extend an existing parent code; with
        ``strict=False`` such defects are left for :mod:`gridgeo.check` to
        report (that is how a dirty dataset is loaded for checking).
        Layers whose names are not levels are kept as :attr:`sources`.

        Coordinates are checked against each layer's CRS, strict or not
        (:func:`gridgeo.crs.check_coordinates`): a NaN or infinite
        coordinate, or a row far outside the CRS's area of use, is a
        :class:`GeometryError` naming the row; a whole layer outside it (metres
        labelled as degrees, longitude and latitude swapped) a
        :class:`CrsError`. Such coordinates would break every later step.

        The top level needs at least one polygon (:class:`LayerError`
        otherwise). A lower level may have none: :mod:`gridgeo.check` then
        reports each parent of a ``full`` level as one gap.

        Raises
        ------
        LayerError, SchemaError, CrsError, CodeError, GeometryError

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely import box
        >>> layer = lambda code, parent, crs: gpd.GeoDataFrame(
        ...     {"code": [code], "name": ["x"], "parent_code": [parent]},
        ...     geometry=[box(108.5, 40.7, 108.6, 40.8)], crs=crs)
        >>> layers = {"banner": layer("150823", "", 4490), "town": layer("150823100", "150823", 4490),
        ...           "grid": layer("150823100001", "150823100", 4490),
        ...           "micro_grid": layer("150823100001001", "150823100001", 4490)}
        >>> GridSystem.from_layers(layers).counts()
        {'banner': 1, 'town': 1, 'grid': 1, 'micro_grid': 1}
        """
        missing = [name for name in config.level_names if name not in layers]
        if missing:
            raise LayerError(
                f"{origin}: level(s) {missing} are missing; found layers {sorted(layers)}. "
                f"A grid system needs one layer per level: {config.level_names}."
            )
        levels = {
            name: _normalise(layers[name], f"{origin}, layer {name!r}")
            for name in config.level_names
        }
        sources = {
            name: (_normalise_units if "unit_id" in frame.columns else _normalise)(
                frame, f"{origin}, layer {name!r}"
            )
            for name, frame in layers.items()
            if name not in levels
        }
        require_same_crs({**levels, **sources}, origin)
        system = cls(levels=levels, config=config, sources=sources, origin=origin)
        empty = system.empty_levels()
        if empty and strict:
            raise LayerError(_empty_message(origin, empty, config))
        if empty:
            warnings.warn(_empty_message(origin, empty, config), stacklevel=2)
        if strict:
            system.validate_codes()
        return system

    def empty_levels(self) -> list[str]:
        """Levels that must cover their parent (``full``) but have no features at all.

        Such a system loads with ``strict=False`` (the check reports each parent
        as one gap) and is refused with ``strict=True``: assigning points to it
        would put every point in a gap.
        """
        return [
            level.name
            for level in self.config.levels
            if level.coverage == Coverage.FULL
            and len(self.levels[level.name]) == 0
            and len(self.levels[self.config.parent(level.name).name]) > 0
        ]

    # -- access -------------------------------------------------------------
    def __getitem__(self, name: str) -> gpd.GeoDataFrame:
        self.config.level(name)
        return self.levels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.levels)

    def items(self) -> Iterator[tuple[str, gpd.GeoDataFrame]]:
        """``(level name, GeoDataFrame)`` pairs, top to bottom."""
        return iter(self.levels.items())

    @property
    def crs(self) -> CRS:
        """The CRS shared by every layer."""
        return CRS.from_user_input(next(iter(self.levels.values())).crs)

    def counts(self) -> dict[str, int]:
        """Number of polygons per level."""
        return {name: len(frame) for name, frame in self.levels.items()}

    def replace(self, **layers: gpd.GeoDataFrame) -> GridSystem:
        """A copy with some levels or source layers swapped (no validation)."""
        levels = {k: layers.get(k, v) for k, v in self.levels.items()}
        sources = dict(self.sources)
        sources.update({k: v for k, v in layers.items() if k not in levels})
        return GridSystem(levels, self.config, sources, self.origin)

    @property
    def metric_crs(self) -> CRS:
        """The projected CRS of every metric computation on this system.

        ``config.metric_crs`` when it names one; when it is ``"auto"``, chosen
        once from the top level's extent (:func:`gridgeo.crs.metric_crs`), so
        every level and capability measures in the same CRS.

        >>> from gridgeo import load_demo
        >>> load_demo().metric_crs.to_epsg()
        4545
        """
        top = next((f for f in self.levels.values() if len(f)), None)
        return metric_crs(self.config, top)

    def to_metric(self) -> GridSystem:
        """The same system with every layer in :attr:`metric_crs` (edges densified)."""
        target = self.metric_crs
        return GridSystem(
            {k: to_metric(v, self.config, target) for k, v in self.levels.items()},
            self.config,
            {k: to_metric(v, self.config, target) for k, v in self.sources.items()},
            self.origin,
        )

    # -- hierarchy ------------------------------------------------------------
    def lineage(self, level: str) -> pd.DataFrame:
        """For each polygon of ``level``, the codes of all its ancestors.

        Columns are named after the levels (``town``, ``grid``, …); the index is
        the level's own ``code``. Joins follow ``parent_code``, never row order.

        >>> from gridgeo import load_demo
        >>> lin = load_demo().lineage("micro_grid")
        >>> list(lin.columns)
        ['banner', 'town', 'grid', 'micro_grid']
        """
        names = self.config.level_names
        depth = names.index(self.config.level(level).name)
        frame = self.levels[level]
        out = pd.DataFrame({level: frame["code"].to_numpy()}, index=frame["code"].to_numpy())
        current = pd.Series(frame["parent_code"].to_numpy(), index=out.index)
        for ancestor in reversed(names[:depth]):
            out[ancestor] = current.to_numpy()
            parents = self.levels[ancestor].drop_duplicates("code").set_index("code")
            current = current.map(parents["parent_code"])
        return out[names[: depth + 1]]

    def validate_codes(self) -> None:
        """Raise :class:`CodeError` for the first code defect found.

        Checks, per level: width and digits, uniqueness, that the parent code
        exists one level up, and that each code starts with its parent's code
        (for the root's children: with the root code's significant prefix,
        :attr:`GridConfig.root_prefix <gridgeo.config.GridConfig.root_prefix>`).
        """
        previous: gpd.GeoDataFrame | None = None
        for level in self.config.levels:
            frame = self.levels[level.name]
            where = f"{self.origin}, layer {level.name!r}"
            codes = frame["code"]
            bad = ~code_width_ok(codes, level.code_width)
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise CodeError(
                    f"{where}, row {row}: code {codes.iloc[row]!r} is not "
                    f"{level.code_width} digits. Codes of level {level.name!r} are "
                    f"{_code_rule(self.config, level)}."
                )
            dup = codes.duplicated(keep=False)
            if dup.any():
                shown = sorted(set(codes[dup]))[:5]
                raise CodeError(
                    f"{where}: duplicate code(s) {shown}. Every polygon needs its own "
                    "code; renumber with gridgeo.codes.number_children, or run "
                    "`gridgeo check` to see them all."
                )
            if previous is None:
                previous = frame
                continue
            parent = frame["parent_code"]
            orphan = ~parent.isin(set(previous["code"]))
            if orphan.any():
                row = int(orphan.to_numpy().nonzero()[0][0])
                raise CodeError(
                    f"{where}, row {row} (code {codes.iloc[row]}): parent code "
                    f"{parent.iloc[row]!r} does not exist in layer "
                    f"{self.config.parent(level.name).name!r}. Fix parent_code, or run "
                    "`gridgeo check` to see every code defect at once."
                )
            # the prefix children extend: a root code 150800 is extended as 1508
            keep = self.config.parent(level.name).code_length
            extends = codes.str.slice(0, keep) == parent.str.slice(0, keep)
            if not extends.all():
                row = int((~extends).to_numpy().nonzero()[0][0])
                raise CodeError(
                    f"{where}, row {row}: code {codes.iloc[row]} does not extend its "
                    f"parent's code {parent.iloc[row]}. A child's code is "
                    f"{_code_rule(self.config, level)}."
                )
            previous = frame

    # -- summaries ------------------------------------------------------------
    def summary(self) -> pd.DataFrame:
        """One row per level: count, area in km² and the staffing totals.

        >>> from gridgeo import load_demo
        >>> int(load_demo().summary().loc["grid", "count"])
        662
        """
        rows = []
        metric = self.to_metric()
        for level in self.config.levels:
            frame = metric.levels[level.name]
            row = {
                "level": level.name,
                "label": level.label_zh,
                "count": len(frame),
                "area_km2": float(frame.area.sum() / 1e6),
            }
            for column in ("households", "residents", "workers"):
                if column in frame:
                    row[column] = int(frame[column].sum())
            rows.append(row)
        out = pd.DataFrame(rows).set_index("level")
        if "workers" in out:
            out["workers_each"] = out["workers"] / out["count"]
            if "households" in out:
                out["households_per_worker"] = out["households"] / out["workers"]
        return out


def _normalise(frame: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    """Check the schema of one layer and return it with string codes."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise SchemaError(f"{where}: expected a GeoDataFrame, got {type(frame).__name__}")
    absent = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if absent:
        raise SchemaError(
            f"{where}: column(s) {absent} missing; found {list(frame.columns)}. "
            "Every layer needs code, name and parent_code (empty for the top level). "
            "Rename your columns, e.g. frame.rename(columns={'网格编码': 'code'})."
        )
    require_crs(frame, where)
    geom = frame.geometry
    missing = geom.isna() | geom.is_empty
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0])
        raise GeometryError(
            f"{where}, row {row} (code {frame['code'].iloc[row]}): geometry is missing "
            "or empty. Draw the polygon or delete the row."
        )
    kinds = set(geom.geom_type.unique()) - {"Polygon", "MultiPolygon"}
    if kinds:
        row = int((~geom.geom_type.isin(["Polygon", "MultiPolygon"])).to_numpy().nonzero()[0][0])
        raise GeometryError(
            f"{where}, row {row} (code {frame['code'].iloc[row]}): geometry type "
            f"{geom.iloc[row].geom_type} where a polygon is required. Export the layer "
            "as polygons (a level holds areas, not points or lines), or delete the row."
        )
    out = frame.copy()
    for column in ("code", "parent_code"):
        out[column] = as_text(out[column], missing="")
    out = out.reset_index(drop=True)
    return out


def _normalise_units(frame: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    """A unit layer (building blocks of a plan, :mod:`gridgeo.plan.units`): polygons,
    a CRS, and code columns as text; :func:`gridgeo.plan.units.validate_units`
    checks the rest against the levels."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise SchemaError(f"{where}: expected a GeoDataFrame, got {type(frame).__name__}")
    require_crs(frame, where)
    out = frame.copy()
    out["unit_id"] = as_text(out["unit_id"], missing="")
    for column in out.columns:
        if column.endswith("_code"):
            out[column] = as_text(out[column], missing="")
    return out.reset_index(drop=True)


def _code_rule(config: GridConfig, level) -> str:
    """How a code of ``level`` is made, in words (for messages)."""
    parent = config.parent(level.name)
    if parent is None:
        return f"the root code {config.root_code}"
    stem = "its parent's code"
    if parent.code_length < parent.code_width:
        stem = f"the first {parent.code_length} digits of its parent's code ({config.root_prefix})"
    return f"{stem} plus {level.code_digits} digits of its own"


def _empty_message(origin: str, empty: list[str], config: GridConfig) -> str:
    parents = [config.parent(name).name for name in empty]
    return (
        f"{origin}: layer(s) {empty} have no features, but every polygon of "
        f"{parents} must be covered by them. Add the missing polygons (or check that "
        "the right file was exported); `gridgeo check` shows each uncovered parent as a gap."
    )
