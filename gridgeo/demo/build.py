"""Generating the demo grid system: towns, grids, micro-grids, attributes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.codes import number_children
from gridgeo.config import BANNER
from gridgeo.crs import metric_crs
from gridgeo.demo.dirty import make_dirty
from gridgeo.demo.files import (
    DATA_DATE,
    DATA_DIR,
    DIRTY_PATH,
    DUAL_TRUTH_PATH,
    SEED,
    TRUTH_PATH,
    UNITS_PATH,
)
from gridgeo.demo.mesh import build_mesh, grow, sample_in, union_cells
from gridgeo.demo.people import allocate, fake_names
from gridgeo.demo.people import households as place_households
from gridgeo.demo.sources import source_layers
from gridgeo.demo.towns import (
    COMMUNITY_NAMES,
    DEDICATED,
    GACHA_STEMS,
    NUMERALS,
    TOTAL_GRIDS,
    TOTAL_MICRO,
    TOTAL_RESIDENTS,
    TOTAL_WORKERS,
    TOWNS,
    VILLAGE_STEMS,
    banner_outline,
)
from gridgeo.demo.units import build_units, write_units
from gridgeo.model import GridSystem


# -- generation ---------------------------------------------------------------
@dataclass
class DemoData:
    """Everything :func:`generate` builds, in the storage CRS."""

    system: GridSystem
    dirty: GridSystem
    truth: gpd.GeoDataFrame
    dual_truth: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    """The unit layer: one unit per mesh cell (:func:`gridgeo.demo.units.build_units`)."""


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
    cand = sample_in(outline, n_rural * 12, rng)
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
    seeds.append(sample_in(outline, 5_000, rng))
    kinds.append(np.full(5_000, "bg"))
    for v in villages:
        seeds.append(sample_in(outline, 10, rng, v, 700.0))
        kinds.append(np.full(10, "bg"))
    for s in sites:
        seeds.append(sample_in(outline, 8, rng, s, 250.0))
        kinds.append(np.full(8, "bg"))
    for t, xy in zip(TOWNS, seat_xy, strict=True):
        k = t.urban_grids * 45
        seeds.append(sample_in(outline, k, rng, xy, t.urban_sigma_km * 1000))
        kinds.append(np.full(k, f"urban:{t.code}"))
    seeds = np.vstack(seeds)
    kinds = np.concatenate(kinds)
    mesh = build_mesh(outline, seeds, kinds)
    n_special = len(TOWNS) + n_rural + len(sites)
    # Special seeds come first and always survive the cut (they lie inside).
    assert (mesh.kind[:n_special] == kinds[:n_special]).all()

    # Towns: graph Voronoi from the seats.
    everyone = np.arange(len(mesh.cells))
    town_of = grow(mesh.graph, everyone, np.arange(len(TOWNS)))

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
        labels = grow(mesh.graph, members, sources, offsets)
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
    residents = np.maximum(allocate(TOTAL_RESIDENTS, raw), households)
    residents[np.argmax(residents)] += TOTAL_RESIDENTS - residents.sum()
    grids["households"] = households
    grids["residents"] = residents
    grids["workers"] = allocate(TOTAL_WORKERS, np.sqrt(households + 1.0), minimum=1)

    # Micro-grids: refine the urban grids.
    micro_n = np.zeros(len(grids), dtype=np.int64)
    micro_n[urban] = allocate(TOTAL_MICRO, households[urban], minimum=3)
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
        labels = grow(mesh.graph, members, src)
        for k in range(len(src)):
            micro_rows.append({"grid": gi})
            micro_of[members[labels == k]] = len(micro_rows) - 1
    micros = pd.DataFrame(micro_rows)
    assert len(micros) == TOTAL_MICRO, len(micros)

    frames, grid_codes, micro_codes = _assemble(
        mesh, town_of, grid_of, micro_of, grids, micros, rng
    )
    sources, dual_truth = source_layers(mesh, grid_of, grid_codes, frames, outline, rng)
    system = GridSystem.from_layers({**frames, **sources}, origin="gridgeo.demo")
    dirty, truth = make_dirty(system, rng)
    # The units take no random draw: everything above stays as it was without them.
    town_codes = np.array([t.code for t in TOWNS])
    units = build_units(
        mesh.cells,
        town_codes[town_of],
        grid_codes[grid_of],
        np.append(micro_codes, "")[micro_of],  # -1 (not refined): ""
        system,
        place_households(system),
    )
    return DemoData(system, dirty, truth, dual_truth, units)


def _assemble(mesh, town_of, grid_of, micro_of, grids, micros, rng):
    """Polygons, codes, names and attributes of every level, in the storage CRS.

    Also returns the grid and micro-grid codes in the order of ``grids`` and
    ``micros`` (what ``grid_of`` and ``micro_of`` index).
    """
    crs = metric_crs()
    towns = gpd.GeoDataFrame(
        {
            "code": [t.code for t in TOWNS],
            "name": [t.name for t in TOWNS],
            "parent_code": BANNER.root_code,
            "pinyin": [t.pinyin for t in TOWNS],
        },
        geometry=union_cells(mesh.cells, town_of).sort_index().to_numpy(),
        crs=crs,
    )
    g = gpd.GeoDataFrame(
        grids, geometry=union_cells(mesh.cells, grid_of).sort_index().to_numpy(), crs=crs
    )
    g["parent_code"] = towns["code"].to_numpy()[g["town"]]
    g["code"] = number_children(g, g["parent_code"], 3)
    g["grid_type"] = np.where(g["kind"] == "dedicated", "dedicated", "comprehensive")
    g["settlement"] = np.where(
        g["kind"] == "urban", "urban", np.where(g["kind"] == "rural", "rural", "institution")
    )
    g["leader"] = fake_names(rng, len(g))
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
        geometry=union_cells(mesh.cells, micro_of)
        .drop(-1, errors="ignore")
        .sort_index()
        .to_numpy(),
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
    m["leader"] = fake_names(rng, len(m))
    # Split each refined grid's households over its micro-grids by area.
    m["households"] = 0
    m["residents"] = 0
    area = m.area
    for code, idx in m.groupby("parent_code").groups.items():
        parent = g.loc[g["code"] == code].iloc[0]
        w = area[idx].to_numpy() ** 0.3  # compounds differ less in size than in area
        hh = allocate(int(parent["households"]), w, minimum=1)
        m.loc[idx, "households"] = hh
        m.loc[idx, "residents"] = np.maximum(allocate(int(parent["residents"]), hh + 0.0), hh)
        m.loc[idx[-1], "residents"] += int(parent["residents"]) - int(m.loc[idx, "residents"].sum())

    banner = gpd.GeoDataFrame(
        {"code": [BANNER.root_code], "name": [BANNER.root_name], "parent_code": [""]},
        geometry=[shapely.coverage_union_all(towns.geometry.to_numpy())],
        crs=crs,
    )
    grid_codes = g["code"].to_numpy()
    micro_codes = m["code"].to_numpy()
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
    return out, grid_codes, micro_codes


def _groupings(g: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """15 general grids (the 11 towns, Wulashan split in five) and 200 basic grids."""
    general = g["parent_code"].map({t.code: i for i, t in enumerate(TOWNS)}).to_numpy().copy()
    wula = np.flatnonzero(g["parent_code"].to_numpy() == TOWNS[0].code)
    x = g.geometry.representative_point().x.to_numpy()
    rank = np.argsort(np.argsort(x[wula]))
    general[wula] = np.where(rank * 5 // len(wula) == 0, 0, len(TOWNS) + rank * 5 // len(wula) - 1)
    general_code = np.char.add("G", np.char.zfill((general + 1).astype(str), 2))
    sizes = np.bincount(general)
    n_basic = allocate(200, sizes, minimum=1)
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


def write_demo(data_dir: Path | str = DATA_DIR, seed: int = SEED) -> DemoData:
    """Generate the demo and write it under ``data_dir`` (what is committed).

    Writes ``shapefiles/`` (one Shapefile per level and source layer, UTF-8
    with .cpg), ``dual_grid_truth.geojson``, ``units.parquet`` (the unit
    layer, GeoParquet) and ``dirty/`` (a GeoPackage and its ``truth.geojson``).
    """
    from gridgeo.io import write_layer, write_system

    data_dir = Path(data_dir)
    data = generate(seed)
    # One fixed date inside the files, so regenerating the demo is byte-identical.
    write_system(data.system, data_dir / "shapefiles", date=DATA_DATE)
    write_layer(data.dual_truth, data_dir / DUAL_TRUTH_PATH.name)
    write_units(data.units, data_dir / UNITS_PATH.name)
    write_system(data.dirty, data_dir / "dirty" / DIRTY_PATH.name, date=DATA_DATE)
    write_layer(data.truth, data_dir / "dirty" / TRUTH_PATH.name)
    return data
