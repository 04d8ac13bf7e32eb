"""The party-building and sanitation source layers of the dual grid."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse.csgraph import connected_components

from gridgeo.codes import number_children
from gridgeo.config import BANNER
from gridgeo.crs import metric_crs
from gridgeo.demo.mesh import union_cells


# -- the two source layers of the dual grid -----------------------------------
def _digitising_noise(
    geoms: np.ndarray, outline, phase: float, amplitude: float = 2.5
) -> np.ndarray:
    """Move every vertex by a smooth field of a few metres.

    One call over all coordinates, so a vertex shared by two polygons moves
    the same way in both and the layer stays a valid coverage. Vertices on
    the banner's outline stay put: both sides traced the official boundary.
    """
    edge = outline.boundary
    shapely.prepare(edge)

    def field(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        dx = np.sin(x / 310.0 + phase) + 0.6 * np.sin(y / 530.0 + 2 * phase)
        dy = np.cos(y / 270.0 - phase) + 0.6 * np.cos(x / 610.0 + 3 * phase)
        fixed = shapely.dwithin(edge, shapely.points(xy), 0.01)[:, None]
        return np.where(fixed, xy, xy + amplitude / 1.6 * np.column_stack([dx, dy]))

    return shapely.transform(geoms, field)


def _move_villages(mesh, labels, candidates, town, count, rng):
    """Redraw ``count`` villages (blocks of cells) into a neighbouring grid."""
    moves = []
    graph = mesh.graph.tocsr()
    used: set[int] = set()
    for a in rng.permutation(candidates):
        if len(moves) == count:
            break
        cells = np.flatnonzero(labels == a)
        nbrs = np.unique(graph[cells].indices)
        others = [
            b
            for b in np.unique(labels[nbrs])
            if b != a and b in candidates and b not in used and town[b] == town[a]
        ]
        if a in used or not others:
            continue
        b = others[0]
        # The village: the cells of a along its border with b, a third of a at most.
        block = cells[np.isin(cells, graph[np.flatnonzero(labels == b)].indices)]
        rest = np.setdiff1d(cells, block)
        if len(block) < 2 or len(block) > len(cells) / 3:
            continue
        sub = graph[rest][:, rest]
        if connected_components(sub, directed=False)[0] != 1:
            continue
        labels[block] = b
        used.update((a, b))
        moves.append((a, b, block))
    return moves


def source_layers(mesh, grid_of, grid_codes, frames, outline, rng):
    """Party-building and sanitation layers, and the truth of how they differ."""
    crs = metric_crs()
    grid = frames["grid"].set_index("code")
    kind = grid.loc[grid_codes, "settlement"].to_numpy()
    refined = np.isin(grid_codes, frames["micro_grid"]["parent_code"])
    rural = np.flatnonzero((kind == "rural") & ~refined)
    town = np.array([code[:9] for code in grid_codes])
    truth = []

    def polygons(labels):
        return union_cells(mesh.cells, labels).sort_index()

    # Party-building grids: the dual grid's ancestors, one to one, 6 villages differ.
    party = grid_of.copy()
    for a, b, block in _move_villages(mesh, party, rural[: len(rural) // 2], town, 6, rng):
        truth.append(("party_grid", "reassigned", grid_codes[a], grid_codes[b], block))
    pg = polygons(party)
    party_frame = gpd.GeoDataFrame(
        {
            "code": grid_codes[pg.index],
            "name": grid.loc[grid_codes[pg.index], "name"]
            .str.replace("网格", "党建网格")
            .to_numpy(),
            "parent_code": grid.loc[grid_codes[pg.index], "parent_code"].to_numpy(),
        },
        geometry=_digitising_noise(pg.to_numpy(), outline, 0.7),
        crs=crs,
    )

    # Sanitation grids: coarser in places (pairs of villages share one), 6 differ.
    sanit = grid_of.copy()
    pool = rural[len(rural) // 2 :]
    for a, b, block in _move_villages(mesh, sanit, pool, town, 6, rng):
        truth.append(("sanitation_grid", "reassigned", grid_codes[a], grid_codes[b], block))
    moved = {code for t in truth if t[0] == "sanitation_grid" for code in t[2:4]}
    graph = mesh.graph.tocsr()
    merges = 0
    for a in rng.permutation(pool):
        if merges == 20:
            break
        if grid_codes[a] in moved:
            continue
        cells = np.flatnonzero(sanit == a)
        nb = [b for b in np.unique(sanit[graph[cells].indices]) if b != a and b in pool]
        nb = [
            b for b in nb if grid_codes[b] not in moved and grid_codes[b][:9] == grid_codes[a][:9]
        ]
        if not nb:
            continue
        b = nb[0]
        truth.append(
            ("sanitation_grid", "merged", grid_codes[a], grid_codes[b], np.flatnonzero(sanit == b))
        )
        sanit[sanit == b] = a
        moved |= {grid_codes[a], grid_codes[b]}
        merges += 1
    sg = polygons(sanit)
    sanit_frame = gpd.GeoDataFrame(
        {"parent_code": grid.loc[grid_codes[sg.index], "parent_code"].to_numpy()},
        geometry=_digitising_noise(sg.to_numpy(), outline, 2.1),
        crs=crs,
    )
    sanit_frame["code"] = number_children(sanit_frame, sanit_frame["parent_code"], 3)
    town_name = frames["town"].set_index("code")["name"]
    sanit_frame["name"] = (
        town_name.reindex(sanit_frame["parent_code"]).to_numpy()
        + "卫生网格"
        + sanit_frame["code"].str[-3:]
    )
    # Which sanitation code each dual label ended up in (for the truth file).
    sanit_code = pd.Series(sanit_frame["code"].to_numpy(), index=sg.index)
    # For each disagreement: the source grid the block was taken from and the
    # one now holding it (which the dual grid therefore splits).
    rows = []
    for layer, what, a, b, block in truth:
        geom = shapely.coverage_union_all(mesh.cells[block])
        if layer == "sanitation_grid":
            rest = np.setdiff1d(
                np.flatnonzero(grid_of == np.flatnonzero(grid_codes == a)[0]), block
            )
            source_from = sanit_code[sanit[rest[0]]] if len(rest) else ""
            source_to = sanit_code[sanit[block[0]]]
        else:
            source_from, source_to = a, b
        rows.append(
            {
                "layer": layer,
                "kind": what,
                "dual_from": a,
                "dual_to": b,
                "source_from": source_from,
                "source_to": source_to,
                "geometry": geom,
            }
        )
    truth_frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs).to_crs(BANNER.storage_crs)
    sources = {
        "party_grid": party_frame[["code", "name", "parent_code", "geometry"]].to_crs(
            BANNER.storage_crs
        ),
        "sanitation_grid": sanit_frame[["code", "name", "parent_code", "geometry"]]
        .sort_values("code")
        .reset_index(drop=True)
        .to_crs(BANNER.storage_crs),
    }
    return sources, truth_frame
