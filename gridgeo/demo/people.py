"""Synthetic people: names, worker allocation, households and incidents."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.config import BANNER
from gridgeo.crs import metric_crs
from gridgeo.demo.files import SEED, built_in_metric, load_demo
from gridgeo.demo.mesh import sample_in
from gridgeo.demo.towns import GIVEN, SURNAMES
from gridgeo.model import GridSystem


# -- people -------------------------------------------------------------------
def fake_names(rng, n: int) -> np.ndarray:
    surname = rng.choice(list(SURNAMES), n)
    first = rng.choice(list(GIVEN), n)
    second = rng.choice(list(GIVEN) + [""] * 12, n)
    return np.char.add(np.char.add(surname.astype(str), first.astype(str)), second.astype(str))


def allocate(total: int, weights: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Integers ≥ ``minimum`` summing to ``total``, proportional to ``weights``."""
    base = np.full(len(weights), minimum, dtype=np.int64)
    rest = total - base.sum()
    share = rest * np.asarray(weights, dtype=float) / np.sum(weights)
    alloc = np.floor(share).astype(np.int64)
    short = rest - alloc.sum()
    alloc[np.argsort(-(share - alloc), kind="stable")[:short]] += 1
    return base + alloc


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
    metric = built_in_metric(system)
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
            xy = sample_in(row.geometry, n, rng, centre, 450.0)
        else:
            xy = sample_in(row.geometry, n, rng)
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
            "head_name": fake_names(rng, n),
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
