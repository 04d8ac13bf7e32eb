"""The Voronoi mesh the demo levels are grown from (unions of whole cells)."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra


# -- mesh ---------------------------------------------------------------------
def sample_in(poly, n: int, rng, centre=None, sigma=None) -> np.ndarray:
    """``n`` points in ``poly``: uniform, or Gaussian around ``centre`` (rejection)."""
    out = np.empty((0, 2))
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    while len(out) < n:
        k = max(2 * (n - len(out)), 16)
        if centre is None:
            xy = rng.uniform([minx, miny], [maxx, maxy], size=(k, 2))
        else:
            xy = rng.normal(centre, sigma, size=(k, 2))
        xy = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1])]
        out = np.vstack([out, xy])
    return out[:n]


@dataclass
class Mesh:
    cells: np.ndarray  # polygons (metric)
    seeds: np.ndarray  # (n, 2) seed coordinates
    graph: object  # scipy csr adjacency weighted by seed distance
    kind: np.ndarray  # seed origin: "bg", "urban:<town>", "village", "site"


def build_mesh(outline, seeds: np.ndarray, kinds: np.ndarray) -> Mesh:
    """Voronoi cells of ``seeds`` cut to ``outline``, cleaned into a coverage."""
    frame = outline.envelope.buffer(5_000).envelope
    vor = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame, ordered=True)
    cells = shapely.intersection(np.asarray(vor.geoms), outline)
    # Cutting a cell to a concave outline can leave several pieces: the one
    # holding the seed keeps it, each other piece becomes a cell of its own.
    parts, index = shapely.get_parts(cells, return_index=True)
    has_seed = shapely.contains_xy(parts, seeds[index, 0], seeds[index, 1])
    extra = parts[~has_seed]
    order = np.argsort(index[has_seed], kind="stable")
    cells = np.r_[parts[has_seed][order], extra]
    seeds = np.vstack(
        [seeds[index[has_seed]][order], shapely.get_coordinates(shapely.point_on_surface(extra))]
    )
    kinds = np.r_[kinds[index[has_seed]][order], np.full(len(extra), "bg")]
    # GEOS cleans the cut cells into an exact coverage (identical shared
    # vertices, no slivers), so every union of cells is a valid coverage.
    cells = shapely.set_precision(cells, 0.01)
    cells = shapely.coverage_clean(cells, gap_width=1.0)
    if (shapely.is_empty(cells) | (shapely.get_type_id(cells) != 3)).any():  # pragma: no cover
        raise RuntimeError("coverage cleaning emptied or split a mesh cell")
    graph = adjacency(cells, seeds)
    return Mesh(cells, seeds, graph, kinds)


def adjacency(cells: np.ndarray, seeds: np.ndarray):
    """Sparse graph of cells that share an edge, weighted by seed distance."""
    rings = shapely.get_exterior_ring(cells)
    coords, owner = shapely.get_coordinates(rings, return_index=True)
    same = owner[:-1] == owner[1:]
    a, b = coords[:-1][same], coords[1:][same]
    cell = owner[:-1][same]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    lo = np.where(swap[:, None], b, a)
    hi = np.where(swap[:, None], a, b)
    edges = pd.DataFrame({"x0": lo[:, 0], "y0": lo[:, 1], "x1": hi[:, 0], "y1": hi[:, 1]})
    edges["cell"] = cell
    pairs = edges.merge(edges, on=["x0", "y0", "x1", "y1"])
    pairs = pairs[pairs["cell_x"] < pairs["cell_y"]].drop_duplicates(["cell_x", "cell_y"])
    i = pairs["cell_x"].to_numpy()
    j = pairs["cell_y"].to_numpy()
    w = np.hypot(*(seeds[i] - seeds[j]).T) + 1.0
    n = len(cells)
    return coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()


def grow(graph, members: np.ndarray, sources: np.ndarray, offsets=None) -> np.ndarray:
    """Label each cell in ``members`` with the index of its nearest source.

    Multi-source Dijkstra restricted to ``members``: every region is connected
    (a shortest path stays inside its own region). ``offsets`` are additive
    weights per source (a larger offset shrinks the region).
    """
    local = {c: k for k, c in enumerate(members)}
    sub = graph[members][:, members]
    idx = np.array([local[s] for s in sources])
    dist = dijkstra(sub, indices=idx)
    offsets = np.zeros(len(sources)) if offsets is None else np.asarray(offsets, dtype=float)
    while True:
        labels = np.argmin(dist + offsets[:, None], axis=0)
        # A region is empty only when a neighbour's offset swallowed its own
        # source cell; drop that source's offset and grow again.
        empty = labels[idx] != np.arange(len(idx))
        if not empty.any():
            return labels
        offsets[empty] = np.minimum(offsets[empty], 0.0) - 100.0


def union_cells(cells: np.ndarray, labels: np.ndarray) -> pd.Series:
    """Coverage union of the cells of each label, indexed by label."""
    frame = gpd.GeoDataFrame({"label": labels}, geometry=list(cells))
    return frame.dissolve("label", method="coverage").geometry
