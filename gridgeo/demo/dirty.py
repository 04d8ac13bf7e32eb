"""The dirty variant: known defects and their ground truth."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.config import BANNER
from gridgeo.demo.files import built_in_metric
from gridgeo.demo.people import fake_names
from gridgeo.demo.towns import TOWNS
from gridgeo.model import GridSystem


# -- the dirty variant ----------------------------------------------------------
def spike(poly: shapely.Polygon, depth: float = 5.0) -> shapely.Polygon:
    """``poly`` with a digitising spike: a vertex, a point inside, the vertex again."""
    ring = np.asarray(poly.exterior.coords)
    i = len(ring) // 2
    inward = shapely.get_coordinates(poly.representative_point())[0] - ring[i]
    tip = ring[i] + depth * inward / np.hypot(*inward)
    coords = np.vstack([ring[: i + 1], tip, ring[i:]])
    return shapely.Polygon(coords, [h.coords for h in poly.interiors])


def make_dirty(system: GridSystem, rng) -> tuple[GridSystem, gpd.GeoDataFrame]:
    """Inject known defects into a copy of ``system``; return it and the truth."""
    metric = built_in_metric(system)
    towns = metric["town"].set_index("code")
    grid = metric["grid"].copy()
    micro = metric["micro_grid"].copy()
    banner_edge = metric["banner"].geometry.iloc[0].boundary
    refined = set(micro["parent_code"])
    plain = grid[~grid["code"].isin(refined) & (grid["settlement"] == "rural")]
    shapely.prepare(grid.geometry.to_numpy())
    tree = shapely.STRtree(grid.geometry.to_numpy())
    truth: list[dict] = []
    used_towns: set[str] = {TOWNS[0].code}  # Wulashan hosts the micro-grid defects

    def record(kind, level, codes, geom, detail):
        town = codes[0][:9]
        truth.append(
            {
                "kind": kind,
                "level": level,
                "codes": ",".join(codes),
                "town": town,
                "detail": detail,
                "geometry": geom,
            }
        )

    def pick_pair(cross_town: bool = False):
        """Two neighbouring unrefined rural grids in a town not used yet."""
        for i in rng.permutation(plain.index.to_numpy()):
            g = grid.loc[i]
            if g["parent_code"] in used_towns:
                continue
            for j in tree.query(g.geometry, predicate="touches"):
                n = grid.iloc[j]
                if n["code"] in refined or n["settlement"] != "rural":
                    continue
                if (n["parent_code"] != g["parent_code"]) != cross_town:
                    continue
                if cross_town and n["parent_code"] in used_towns:
                    continue
                shared = shapely.line_merge(g.geometry.intersection(n.geometry))
                if shared.length < 600 or shared.geom_type != "LineString":
                    continue
                if not cross_town and shared.intersects(
                    towns.loc[g["parent_code"]].geometry.boundary
                ):
                    continue
                used_towns.add(g["parent_code"])
                used_towns.add(n["parent_code"])
                return i, grid.index[j], shared
        raise RuntimeError("no pair of grids left for a defect")  # pragma: no cover

    def set_geom(i, geom):
        grid.loc[i, "geometry"] = geom

    # 1. A gap inside a town, between two grids.
    a, b, shared = pick_pair()
    disc = shared.interpolate(0.5, normalized=True).buffer(40)
    gap = disc.intersection(grid.loc[a].geometry.union(grid.loc[b].geometry))
    set_geom(a, grid.loc[a].geometry.difference(disc))
    set_geom(b, grid.loc[b].geometry.difference(disc))
    record(
        "gap",
        "grid",
        [grid.loc[a, "code"], grid.loc[b, "code"]],
        gap,
        "40 m hole between two grids",
    )

    # 2. A gap open to the town's (and banner's) outer edge.
    for i in rng.permutation(plain.index.to_numpy()):
        g = grid.loc[i]
        edge = shapely.line_merge(g.geometry.boundary.intersection(banner_edge))
        if g["parent_code"] in used_towns or edge.length < 2_000 or edge.geom_type != "LineString":
            continue
        disc = edge.interpolate(0.5, normalized=True).buffer(60)
        if len(tree.query(disc, predicate="intersects")) != 1:
            continue
        used_towns.add(g["parent_code"])
        gap = disc.intersection(g.geometry)
        set_geom(i, g.geometry.difference(disc))
        record("gap", "grid", [g["code"]], gap, "bite out of a grid at the banner's outer edge")
        break

    # 3. An overlap: a grid drawn 15 m into its neighbour.
    a, b, shared = pick_pair()
    piece = shared.buffer(15).intersection(grid.loc[b].geometry)
    set_geom(a, grid.loc[a].geometry.union(piece))
    record(
        "overlap",
        "grid",
        [grid.loc[a, "code"], grid.loc[b, "code"]],
        piece,
        "15 m overlap along a shared edge",
    )

    # 4. A sliver gap 0.4 m wide along a shared edge.
    a, b, shared = pick_pair()
    before = grid.loc[a].geometry
    set_geom(a, before.difference(grid.loc[b].geometry.buffer(0.4, quad_segs=2)))
    record(
        "sliver",
        "grid",
        [grid.loc[a, "code"], grid.loc[b, "code"]],
        before.difference(grid.loc[a].geometry),
        "gap 0.4 m wide",
    )

    # 5. A sliver overlap 0.5 m wide.
    a, b, shared = pick_pair()
    piece = grid.loc[a].geometry.intersection(shared.buffer(0.5, quad_segs=2))
    set_geom(b, grid.loc[b].geometry.union(piece))
    record(
        "sliver", "grid", [grid.loc[b, "code"], grid.loc[a, "code"]], piece, "overlap 0.5 m wide"
    )

    # 6. A grid crossing its town boundary into the next town.
    a, b, shared = pick_pair(cross_town=True)
    other_town = towns.loc[grid.loc[b, "parent_code"]].geometry
    disc = shared.interpolate(0.5, normalized=True).buffer(80)
    outside = disc.intersection(other_town)
    set_geom(a, grid.loc[a].geometry.union(outside))
    record(
        "outside_parent",
        "grid",
        [grid.loc[a, "code"]],
        outside,
        "grid drawn 80 m into the neighbouring town",
    )
    for j in tree.query(outside, predicate="intersects"):
        hit = grid.iloc[j]
        if hit["code"] != grid.loc[a, "code"]:
            piece = outside.intersection(metric["grid"].geometry.iloc[j])
            if piece.area > 1:
                record(
                    "overlap",
                    "grid",
                    [grid.loc[a, "code"], hit["code"]],
                    piece,
                    "overlap caused by the crossing grid",
                )

    # 7. Self-intersecting polygons: digitising spikes in a grid and a micro-grid.
    a, _, _ = pick_pair()
    g = grid.loc[a].geometry
    set_geom(a, spike(g))
    record(
        "invalid_geometry",
        "grid",
        [grid.loc[a, "code"]],
        shapely.Point(g.exterior.coords[len(g.exterior.coords) // 2]),
        "Ring Self-intersection (spike)",
    )
    k = int(rng.integers(len(micro)))
    mg = micro.geometry.iloc[k]
    micro.loc[micro.index[k], "geometry"] = spike(mg)
    record(
        "invalid_geometry",
        "micro_grid",
        [micro["code"].iloc[k]],
        shapely.Point(mg.exterior.coords[len(mg.exterior.coords) // 2]),
        "Ring Self-intersection (spike)",
    )

    # 8. A duplicate code: an unrefined grid takes its neighbour's code.
    a, b, _ = pick_pair()
    code = grid.loc[b, "code"]
    grid.loc[a, "code"] = code
    record("duplicate_code", "grid", [code], grid.loc[a].geometry, "two grids share one code")

    # 9. An orphan micro-grid whose parent grid does not exist.
    a, _, _ = pick_pair()
    centre = shapely.maximum_inscribed_circle(grid.loc[a].geometry, 1.0)
    square = shapely.get_point(centre, 0).buffer(100, cap_style="square")
    parent = grid.loc[a, "parent_code"] + "999"
    orphan = {
        "code": parent + "001",
        "name": "未登记微网格",
        "parent_code": parent,
        "leader": fake_names(rng, 1)[0],
        "households": 0,
        "residents": 0,
        "geometry": square,
    }
    micro = pd.concat(
        [micro, gpd.GeoDataFrame([orphan], geometry="geometry", crs=micro.crs)], ignore_index=True
    )
    record("orphan", "micro_grid", [orphan["code"]], square, f"parent grid {parent} does not exist")

    layers = {
        "banner": system["banner"],
        "town": system["town"],
        "grid": grid.to_crs(BANNER.storage_crs),
        "micro_grid": gpd.GeoDataFrame(micro, geometry="geometry", crs=metric.crs).to_crs(
            BANNER.storage_crs
        ),
    }
    dirty = GridSystem.from_layers(layers, strict=False, origin="gridgeo.demo (dirty)")
    truth_frame = gpd.GeoDataFrame(truth, geometry="geometry", crs=metric.crs).to_crs(
        BANNER.storage_crs
    )
    return dirty, truth_frame
