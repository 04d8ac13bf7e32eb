"""Rebalance grid workloads, moving as few households as possible.

The planner's question is not "draw me a plan" but "new housing went up; redraw
the grids so every urban grid holds 300–500 households again, and move as few
households as possible": every household that changes grid means a new grid
worker, new records and rerouted work orders. Districting tools (GerryChain's
``recursive_tree_part``, spopt's MaxP) draw a fresh plan and reassign nearly
every household; :func:`rebalance` starts from the plan there is.

How it works
------------
Every grid a norm applies to (:func:`gridgeo.plan.metrics.windows`) has a
household window; its *violation* is how many households it lies outside.
For each grid outside its window, a breadth-first search over the grid
adjacency (same district, same norm, not locked) finds the nearest grids that
can take households (below their maximum) or give some (above their
minimum); households then flow along the shortest path, each step moving
single boundary units from one grid to the next — an augmenting path, as in a
flow problem, so a grid whose neighbours are all full still gets relief from
two grids away. A path is kept only if it lowers the total violation;
otherwise it is undone. Rounds repeat until every grid is inside its window
or no path helps.

Which units move: along the shared edge, the unit that completes the transfer
with the smallest overshoot, else the one whose move shortens the boundary
most (more edges to the receiving grid than to its own: the compactness
tie-break). A unit may leave a grid only if

- the grid keeps at least one unit and stays connected (rook adjacency of
  units; a local check of the unit's neighbours first, a breadth-first search
  within the grid only when that is inconclusive);
- the micro-grid it leaves stays connected. A unit leaving a refined grid
  keeps the nesting by joining the receiving grid's micro-grid it shares most
  edges with, as :meth:`Plan.move` does; a micro-grid whose last unit leaves
  is retired (the crosswalk lists it), and no micro-grid is created. Whole
  micro-grids are not the unit of transfer: a demo micro-grid holds ~55
  households, and refusing to empty one-unit micro-grids left the sweep
  biting around them (ragged grids);
- with ``keep_villages``, no natural village spreads over one more grid: the
  receiving grid already holds part of the unit's village, or the unit is the
  last of its village in its grid.

Then shapes: the transfers bite into grids, and rebalancing must not worsen
the median Polsby-Popper of the grids it touched by more than
``max_compactness_loss`` (10 %, measured against the same grids as they
were). A compactness pass (:meth:`_Search.compact`) searches the boundary
units of the touched grids: a unit moves to a neighbouring touched grid, or
two units swap between two of them, when both windows, contiguity, nesting
and villages hold and the pair's Polsby-Popper improves. Moves that cost no
households (a unit going home first) are always taken; moves that cost
households only until the median is back within the bound, cheapest gain
first; the work is bounded by moves evaluated per touched grid, not by a
clock, so the plan is the same on every machine. When the bound still is
not met the report says so and ``ok`` is False; ``max_compactness_loss=None``
accepts the shapes (and moves no household for them).

Moving units rather than whole micro-grids keeps the transfers fine-grained
(a micro-grid is a third of a 300–500 window's width), which is what
"fewest households moved" needs.

When a connected set of grids cannot meet the windows with its number of
grids (more households than their maxima allow, or fewer than their minima
need), no unit move can help: the report proposes splits or merges (applied
first with ``resize=True``) instead of exceeding a bound silently. A grid
that holds a unit larger than its maximum, or that has no neighbour of its
kind to exchange with, is named with the reason.

The result is built through :meth:`Plan.reassign` (one ``rebalance`` step),
so the plan's own validation, history and crosswalk hold.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from gridgeo.config import Role
from gridgeo.errors import PlanError, PlanWarning, option
from gridgeo.plan.metrics import _metric_shapes, _scope, _window, polsby_popper, windows
from gridgeo.plan.model import Plan

__all__ = ["RebalanceReport", "apportion_workers", "rebalance"]

PATHS_PER_GRID = 32
"""Paths tried per grid outside its window and round, nearest first."""

ROUNDS = 60
"""Rounds over the grids outside their window at most (most plans need 2–5)."""

LOOKAHEAD = 6
"""Units ahead in the sweep considered for the last, completing move of a transfer."""

EDGE_WEIGHT = 1.0
"""Metres of sweep a metre of shortened edge is worth when ordering units to move."""

RESIZE_ROUNDS = 3
"""Rounds of splits and merges after the search, with ``resize=True``."""

POLISH_ROUNDS = 4
"""Passes of :meth:`_Search.polish` at most."""

FREE_MOVES = 8
"""Units without households one transfer may move to straighten the edge."""

COMPACTNESS_LOSS = 0.10
"""How much the median Polsby-Popper of the grids a rebalancing touched may drop (the default)."""

COMPACT_ROUNDS = 40
"""Rounds of :meth:`_Search.compact` at most."""

COMPACT_WORK = 100
"""Unit moves :meth:`_Search.compact` may evaluate per grid touched (for 100 grids at least):
about 0.2 s for a 200-grid town, and the same plan on every machine, unlike a clock."""

COMPACT_MARGIN = 0.003
"""Polsby-Popper the compactness pass aims above the bound: it measures in a local plane, the
report in the metric CRS."""

SWAP_CANDIDATES = 4
"""Units per side tried for a swap between two grids whose windows block single moves."""

EPSILON = 1e-9


@dataclass
class RebalanceReport:
    """What :func:`rebalance` did, and what it could not do.

    Attributes
    ----------
    grids : pandas.DataFrame
        One row per grid with a window in scope: ``code``, ``parent_code``,
        ``norm``, ``low``, ``high``, ``households_before``,
        ``households_after``, ``gained`` and ``lost`` (households),
        ``status`` (``inside``, ``fixed``, ``new`` — made by a split —,
        ``outside``, ``locked``),
        ``reason`` (why a grid is still outside its window), and
        ``polsby_popper_before`` / ``_after`` for the grids touched (NaN
        for the others).
    moves : pandas.DataFrame
        The units that changed grid: ``unit_id``, ``households``,
        ``old_code``, ``new_code``, ``old_micro``, ``new_micro``.
    proposals : pandas.DataFrame
        Splits and merges the windows need (``action``, ``codes``,
        ``parent_code``, ``households``, ``grids_now``, ``grids_needed``,
        ``reason``), and whether they were ``applied`` (``resize=True``).
    problems : pandas.DataFrame
        Every constraint not met: ``code``, ``rule`` (``unit``,
        ``isolated``, ``locked``, ``count``, ``stuck``, ``max_moved``,
        ``compactness`` — the codes are the grids whose shape suffered
        most —) and ``reason``.
    summary : dict
        Counts and timings: ``grids``, ``outside_before``, ``outside_after``,
        ``households``, ``households_moved``, ``units_moved``,
        ``share_moved``, ``touched``, ``polsby_popper_before`` / ``_after``
        (median over the grids touched that exist before and after, measured
        on the grid polygons in the metric CRS; ``grids`` has them per grid),
        ``max_compactness_loss`` (the bound asked for, None for none),
        ``compactness_ok`` (that median fell by at most the bound, or
        :data:`COMPACTNESS_LOSS` without one; when the bound is set and not
        met, ``problems`` has a ``compactness`` row and :attr:`ok` is
        False), ``seconds``.
    """

    grids: pd.DataFrame
    moves: pd.DataFrame
    proposals: pd.DataFrame
    problems: pd.DataFrame
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every grid in scope inside its window, and no other constraint broken."""
        return self.problems.empty

    def __str__(self) -> str:
        s = self.summary
        lines = [
            f"rebalanced {s['grids']} grid(s) with a window: {s['outside_before']} outside before, "
            f"{s['outside_after']} after; moved {s['households_moved']:,} of {s['households']:,} "
            f"households ({s['share_moved']:.1%}) in {s['units_moved']:,} unit(s), "
            f"{s['seconds']:.2f} s.",
        ]
        if not math.isnan(s.get("polsby_popper_before", math.nan)):
            bound = s.get("max_compactness_loss", COMPACTNESS_LOSS)
            change = s["polsby_popper_after"] / s["polsby_popper_before"] - 1
            if bound is None:
                verdict = "no bound set"
            elif s["compactness_ok"]:
                verdict = f"within {bound:.0%}"
            else:
                verdict = f"down more than {bound:.0%}: check the shapes"
            lines.append(
                f"median Polsby-Popper of the {s['touched']} grid(s) touched: "
                f"{s['polsby_popper_before']:.3f} → {s['polsby_popper_after']:.3f} "
                f"({change:+.1%}, {verdict})."
            )
        for row in self.proposals.itertuples():
            done = "applied" if row.applied else "proposed"
            lines.append(f"{done}: {row.action} {row.codes} — {row.reason}")
        for row in self.problems.itertuples():
            lines.append(f"not met ({row.rule}): {row.reason}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"RebalanceReport(outside {s['outside_before']} → {s['outside_after']}, "
            f"households moved {s['households_moved']:,} ({s['share_moved']:.1%}), "
            f"{len(self.proposals)} proposal(s), {len(self.problems)} problem(s))"
        )


def rebalance(
    plan: Plan,
    towns: Iterable[str] | str | None = None,
    households: tuple[int, int] | None = (300, 500),
    per_worker: float | None = None,
    locked: Iterable[str] = (),
    max_moved: int | None = None,
    keep_villages: bool = True,
    seed: int = 0,
    *,
    resize: bool = False,
    max_compactness_loss: float | None = COMPACTNESS_LOSS,
    by: str | None = None,
) -> tuple[Plan, RebalanceReport]:
    """Bring every grid back inside its household window, moving as few households as possible.

    Parameters
    ----------
    plan : Plan
        The plan to start from (its grids, codes and micro-grids are kept).
    towns : str or list of str, optional
        District codes (the banner's towns) to rebalance; default all.
    households : (int, int) or None
        The window of norms with both bounds (the urban comprehensive
        norm's 300–500); ``None`` keeps the configuration's. Other grids
        follow their own norms (rural: at most 300); grids no norm applies to
        (dedicated grids) are left alone. A tight window such as
        ``(380, 420)`` is ±5 % of 400.
    per_worker : float, optional
        Also keep households per worker at or below this.
    locked : list of str
        Grids to leave untouched, besides those the plan locks.
    max_moved : int, optional
        Stop before moving more households than this (the report says so).
    keep_villages : bool
        Never spread a natural village over more grids than it covers.
    seed : int
        Breaks ties in the order grids are treated.
    resize : bool
        Apply the splits and merges the report proposes, before moving units.
    max_compactness_loss : float or None
        How much the median Polsby-Popper of the grids the rebalancing
        touched may fall below their median before (default 0.10: 10 %). A
        constraint: after the windows are met, a compactness pass moves and
        swaps boundary units (extra households only while the median is
        below the bound); when it still is, the report names it and
        :attr:`RebalanceReport.ok` is False. ``None``: no constraint and no
        extra households moved for shape (the report still gives the
        numbers).
    by : str, optional
        Author recorded in the history.

    Returns
    -------
    (Plan, RebalanceReport)
        The new plan (``plan`` itself when nothing moved) and the report.

    Raises
    ------
    PlanError
        An unknown town or locked grid code, or a window that is not
        ``0 ≤ min ≤ max``.

    Notes
    -----
    Hard constraints, never broken: contiguity of grids and micro-grids,
    grids inside their district, locked grids untouched, micro-grids inside
    their grid, households conserved. Objective, in order: every grid inside
    its window, fewest households moved, compact grids — with the median
    Polsby-Popper of the grids touched kept within ``max_compactness_loss``
    of before (a constraint the report checks: it may cost some households
    more). Each round costs O(violating grids × paths × units along the
    path's edges); a 200-grid town takes a few tenths of a second, the
    compactness pass (at most :data:`COMPACT_WORK` moves evaluated per grid
    touched) included.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> from gridgeo.plan.scenario import grow
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> units = plan.units.query("grid_code == '150823100017'")["unit_id"]
    >>> grown = grow(plan, units, 400)
    >>> new, report = rebalance(grown, towns="150823100")
    >>> report.ok, report.summary["outside_after"], report.summary["compactness_ok"]
    (True, 0, True)
    >>> new.history["op"].tolist()
    ['grow', 'rebalance']
    """
    start = time.perf_counter()
    keep = _scope(plan, towns)
    if max_compactness_loss is not None and not 0 <= max_compactness_loss < 1:
        raise PlanError(
            f"{option('max_compactness_loss', max_compactness_loss)}: give the share the median "
            "Polsby-Popper may fall, from 0 to below 1 (e.g. 0.1), or None for no limit.",
            "unknown",
        )
    if households is not None:
        households = _window(households)
    locked = [str(c) for c in ([locked] if isinstance(locked, str) else locked)]
    unknown = sorted(set(locked) - set(plan.grid_table.index))
    if unknown:
        raise PlanError(
            f"{option('locked', ','.join(unknown))}: no grid of that code in this plan; "
            "see plan.grids for the codes.",
            "unknown",
            tuple(unknown),
        )

    def rescoped(plan: Plan) -> _Search:
        # after a resize the search covers every grid of the towns again
        return _Search(
            plan, _scope(plan, towns), households, per_worker, locked, keep_villages, seed
        )

    def settled(search: _Search):
        # run the moves: (whether the budget ran out, the splits still wanted)
        stopped = search.run(max_moved)
        return stopped, search.local_proposals() if not stopped else proposals.iloc[:0]

    original = plan
    search = _Search(plan, keep, households, per_worker, locked, keep_villages, seed)
    proposals = search.proposals()
    if resize and len(proposals):
        plan = _resize(plan, proposals, by)
        search = rescoped(plan)
    if resize:
        # a grid more than a whole window over gets new grids first: passing that many
        # households through its neighbours would move more of them than a split does
        heavy = search.local_proposals(heavy=True)
        if len(heavy):
            plan = _resize(plan, heavy, by)
            proposals = pd.concat([proposals, heavy], ignore_index=True)
            search = rescoped(plan)
    problems = search.infeasible()
    stopped, local = settled(search)
    for _ in range(RESIZE_ROUNDS if resize else 0):
        if not len(local):
            break
        # splits of the grids no transfer could relieve, then start again from there
        plan = _resize(plan, local, by)
        proposals = pd.concat([proposals, local], ignore_index=True)
        search = rescoped(plan)
        problems = search.infeasible()
        stopped, local = settled(search)
    search.polish()
    index = {c: k for k, c in enumerate(search.codes)}
    base = np.fromiter((index.get(c, -1) for c in original.workload), np.int64, len(search.lab))
    existed = np.isin(search.codes, original.grid_table.index).tolist()
    # without a bound, still the moves that cost no households (a bound of 100 %)
    loss = 1.0 if max_compactness_loss is None else max_compactness_loss
    search.compact(base, existed, loss, COMPACT_WORK)
    if not resize:
        proposals = pd.concat([proposals, local], ignore_index=True)
    proposals = proposals.drop_duplicates(["action", "codes"], ignore_index=True)
    new = search.result(plan, by)
    report = _report(
        original,
        plan,
        new,
        search,
        proposals,
        resize,
        problems,
        stopped,
        max_moved,
        max_compactness_loss,
        start,
    )
    return new, report


# -- the search ----------------------------------------------------------------------------
class _Search:
    """Unit moves between grids, with the bookkeeping to test and undo them quickly."""

    def __init__(self, plan, keep, households, per_worker, locked, keep_villages, seed):
        units = plan._units
        self.plan = plan
        self.codes = plan.grid_table.index.astype(str).tolist()
        index = {c: k for k, c in enumerate(self.codes)}
        self.lab = [index[c] for c in plan.workload]
        self.orig = list(self.lab)
        self.micro_codes = plan.micro_table.index.astype(str).tolist()
        mindex = {c: k for k, c in enumerate(self.micro_codes)}
        self.sub = [mindex.get(c, -1) if c else -1 for c in plan.refinement]
        self.orig_sub = list(self.sub)
        self.uhh = units.households.astype(np.int64).tolist()
        self.nbrs = [list(units.graph.adj[p]) for p in range(len(units))]
        g = len(self.codes)
        win = windows(plan, households, per_worker)
        self.lo = win["low"].to_numpy(float).tolist()
        self.hi = win["high"].to_numpy(float).tolist()
        self.norm = win["norm"].to_numpy(object)
        lock = plan.grid_table["locked"].astype(bool).to_numpy() | np.isin(self.codes, locked)
        self.in_scope = keep & (self.norm != "")
        self.locked_mask = lock
        self.free = (self.in_scope & ~lock).tolist()
        parents = plan.grid_table["parent_code"].astype(str).to_numpy()
        groups = pd.Series(list(zip(parents, self.norm, strict=True))).factorize()[0]
        self.group = groups.tolist()
        self.hh = np.bincount(self.lab, weights=self.uhh, minlength=g).astype(np.int64).tolist()
        self.members: list[set[int]] = [set() for _ in range(g)]
        for u, k in enumerate(self.lab):
            self.members[k].add(u)
        self.micro_members: list[set[int]] = [set() for _ in self.micro_codes]
        for u, m in enumerate(self.sub):
            if m >= 0:
                self.micro_members[m].add(u)
        self.refined = [False] * g
        for u, m in enumerate(self.sub):
            if m >= 0:
                self.refined[self.lab[u]] = True
        self.keep_villages = keep_villages
        village = units.frame["village"].fillna("").astype(str).to_numpy()
        vid, _ = pd.factorize(village)
        vid[village == ""] = -1
        self.village = vid.tolist()
        self.vcount: dict[tuple[int, int], int] = {}
        for u, v in enumerate(self.village):
            if v >= 0:
                key = (v, self.lab[u])
                self.vcount[key] = self.vcount.get(key, 0) + 1
        self.gadj: list[dict[int, int]] = [{} for _ in range(g)]
        for u, nb in enumerate(self.nbrs):
            a = self.lab[u]
            for v in nb:
                b = self.lab[v]
                if a != b:
                    self.gadj[a][b] = self.gadj[a].get(b, 0) + 1
        self.journal: list[tuple[int, int, int]] = []
        self.moved = 0  # households whose grid differs from the original
        self.rng = np.random.default_rng(seed)
        self._lengths: dict[int, dict[int, float]] = {}
        self._shape: dict[int, tuple[float, float]] = {}
        crs = units.frame.crs
        if crs is not None and crs.is_geographic:
            lat = float(np.median(shapely.get_y(shapely.centroid(units.geoms[:1000]))))
            # metres per degree, near enough to weigh edges against each other
            self._squash = 111_320.0 * np.array([math.cos(math.radians(lat)), 1.0])
        else:
            self._squash = None

    # -- windows -----------------------------------------------------------------
    def viol(self, g: int) -> float:
        h = self.hh[g]
        return max(0.0, self.lo[g] - h) + max(0.0, h - self.hi[g])

    def cost(self, grids: list[int]) -> tuple[int, float]:
        """Grids outside their window, then households beyond it: what a transfer must lower."""
        v = [self.viol(g) for g in grids]
        return sum(x > 0 for x in v), round(sum(v), 6)

    def active(self) -> list[int]:
        return [g for g in range(len(self.codes)) if self.free[g]]

    def partners(self, g: int) -> list[int]:
        return [
            b for b in self.gadj[g] if self.free[b] and self.group[b] == self.group[g] and b != g
        ]

    # -- one unit -----------------------------------------------------------------
    def _connected_without(self, members: set[int], u: int) -> bool:
        nbrs = self.nbrs
        inside = [v for v in nbrs[u] if v in members]
        if len(inside) <= 1:
            return True
        # local check: neighbours joined through each other or a common neighbour
        parent = {v: v for v in inside}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        near = set(inside)
        for v in inside:
            for w in nbrs[v]:
                if w in near:
                    parent[find(v)] = find(w)
                elif w != u and w in members:
                    for z in nbrs[w]:
                        if z in near:
                            parent[find(v)] = find(z)
        if len({find(v) for v in inside}) == 1:
            return True
        # inconclusive: search the grid without u until every neighbour is reached
        want = set(inside)
        seen = {inside[0], u}
        want.discard(inside[0])
        queue = deque([inside[0]])
        while queue and want:
            x = queue.popleft()
            for w in nbrs[x]:
                if w not in seen and w in members:
                    seen.add(w)
                    want.discard(w)
                    queue.append(w)
        return not want

    def can_leave(self, u: int, p: int, q: int) -> bool:
        members = self.members[p]
        if len(members) <= 1:
            return False
        m = self.sub[u]
        if m >= 0:
            micro = self.micro_members[m]
            if len(micro) > 1 and not self._connected_without(micro, u):
                return False
        if self.keep_villages:
            v = self.village[u]
            if v >= 0 and self.vcount.get((v, q), 0) == 0 and self.vcount.get((v, p), 0) > 1:
                return False
        return self._connected_without(members, u)

    def _target_micro(self, u: int, q: int) -> int:
        if not self.refined[q]:
            return -1
        votes: dict[int, int] = {}
        for v in self.nbrs[u]:
            if self.lab[v] == q and self.sub[v] >= 0:
                votes[self.sub[v]] = votes.get(self.sub[v], 0) + 1
        return min(votes, key=lambda k: (-votes[k], k))

    def _apply(self, u: int, q: int, m_new: int) -> None:
        p, m_old, h = self.lab[u], self.sub[u], self.uhh[u]
        for v in self.nbrs[u]:
            b = self.lab[v]
            if b != p:
                self._edge(p, b, -1)
            if b != q:
                self._edge(q, b, +1)
        self.members[p].discard(u)
        self.members[q].add(u)
        if m_old >= 0:
            self.micro_members[m_old].discard(u)
        if m_new >= 0:
            self.micro_members[m_new].add(u)
        v = self.village[u]
        if v >= 0:
            self.vcount[(v, p)] -= 1
            self.vcount[(v, q)] = self.vcount.get((v, q), 0) + 1
        self.hh[p] -= h
        self.hh[q] += h
        if p == self.orig[u]:
            self.moved += h
        if q == self.orig[u]:
            self.moved -= h
        self.lab[u] = q
        self.sub[u] = m_new

    def _edge(self, a: int, b: int, d: int) -> None:
        for x, y in ((a, b), (b, a)):
            n = self.gadj[x].get(y, 0) + d
            if n:
                self.gadj[x][y] = n
            else:
                self.gadj[x].pop(y, None)

    def move(self, u: int, q: int) -> None:
        self.journal.append((u, self.lab[u], self.sub[u]))
        self._apply(u, q, self._target_micro(u, q))

    def undo(self, mark: int) -> None:
        while len(self.journal) > mark:
            u, p, m = self.journal.pop()
            self._apply(u, p, m)

    # -- compactness -------------------------------------------------------------------
    def lengths(self, u: int) -> dict[int, float]:
        """Length (m) of the edge ``u`` shares with each neighbour (cached; degrees scaled near the data)."""
        out = self._lengths.get(u)
        if out is None:
            nb = self.nbrs[u]
            geoms = self._scaled(np.array([u, *nb]))
            shared = shapely.length(shapely.intersection(geoms[0], geoms[1:]))
            out = dict(zip(nb, shared.tolist(), strict=True))
            self._lengths[u] = out
        return out

    def _scaled(self, positions: np.ndarray) -> np.ndarray:
        geoms = self.plan._units.geoms[positions]
        if self._squash is None:
            return geoms
        return shapely.transform(geoms, lambda xy: xy * self._squash)

    def gain(self, u: int, p: int, q: int) -> float:
        """How much shorter the grids' boundary gets when ``u`` moves from ``p`` to ``q``."""
        lab = self.lab
        out = 0.0
        for v, length in self.lengths(u).items():
            if lab[v] == q:
                out += length
            elif lab[v] == p:
                out -= length
        return out

    # -- transfers ------------------------------------------------------------------
    def push(self, p: int, q: int, need: float, cap: float) -> int:
        """Move boundary units of ``p`` to ``q``: at least ``need`` households if possible, never over ``cap``.

        Units go in the order of a line sweeping from ``q`` towards the centre
        of ``p`` (their position along the axis between the two grids'
        centres), so the shared edge shifts as a whole instead of ``q``
        biting into ``p``; of the next few units in that order, the one that
        completes the transfer with the least overshoot goes last.
        """
        lab, nbrs, uhh = self.lab, self.nbrs, self.uhh
        xy = self.plan._units.xy
        centre_p = xy[list(self.members[p])].mean(axis=0)
        centre_q = xy[list(self.members[q])].mean(axis=0)
        axis = centre_q - centre_p
        axis = axis / (np.hypot(*axis) or 1.0)
        cand = {u for u in self.members[p] if any(lab[v] == q for v in nbrs[u])}
        moved, free_moves = 0, 0
        while moved < need and cand:
            rem, room = need - moved, cap - moved
            order = sorted(
                cand,
                key=lambda u: (
                    -float((xy[u] - centre_p) @ axis) - EDGE_WEIGHT * self.gain(u, p, q),
                    u,
                ),
            )
            options = []
            for u in order:
                h = uhh[u]
                if h > room or (h == 0 and free_moves >= FREE_MOVES):
                    continue
                if self.can_leave(u, p, q):
                    options.append(u)
                    if len(options) == LOOKAHEAD:
                        break
            if not options:
                break
            completing = [u for u in options if uhh[u] >= rem]
            chosen = min(completing, key=lambda u: uhh[u]) if completing else options[0]
            self.move(chosen, q)
            moved += uhh[chosen]
            free_moves += uhh[chosen] == 0
            cand.discard(chosen)
            cand.update(v for v in nbrs[chosen] if lab[v] == p)
        return moved

    def chain(self, path: list[int], d: float, slack: float = 0.0) -> bool:
        """Households along ``path`` (sender first); kept only if the violation drops.

        ``slack`` lets a grid on the path end up to that many households beyond
        its window: with units larger than a tight window's spare room, a move
        that leaves two grids slightly outside can still lower the total.
        """
        mark = len(self.journal)
        before = self.cost(path)
        received = 0
        for i in range(len(path) - 1):
            s, r = path[i], path[i + 1]
            h = self.hh[s]
            cap = h - self.lo[s] + slack
            if i == 0:
                need = d
                cap = min(cap, sum(max(0.0, self.hi[g] - self.hh[g]) for g in path[1:]) + slack)
            else:
                need = max(h - self.hi[s], min(received, h - self.lo[s]))
            if r == path[-1]:
                cap = min(cap, self.hi[r] - self.hh[r] + slack)
            if need <= 0 or cap <= 0:
                break
            received = self.push(s, r, min(need, cap), cap)
            if received == 0:
                break
        after = self.cost(path)
        if after < before:
            return True
        self.undo(mark)
        return False

    def paths(self, a: int, over: bool) -> list[list[int]]:
        """Shortest paths from ``a`` to the nearest grids that can take (or give) households."""
        parent = {a: -1}
        queue = deque([a])
        found: list[tuple[int, int, float, int]] = []
        depth = {a: 0}
        limit = None
        while queue:
            x = queue.popleft()
            if limit is not None and depth[x] > limit:
                break
            if x != a:
                spare = self.hi[x] - self.hh[x] if over else self.hh[x] - self.lo[x]
                if spare > 0:
                    # grids outside their own window first (a double gain), then the most spare
                    found.append((depth[x], -int(self.viol(x) > 0), -spare, x))
                    if len(found) >= PATHS_PER_GRID and limit is None:
                        limit = depth[x]
            nxt = self.partners(x)
            self.rng.shuffle(nxt)
            for y in nxt:
                if y not in parent:
                    parent[y] = x
                    depth[y] = depth[x] + 1
                    queue.append(y)
        found.sort()
        out = []
        for *_, x in found[:PATHS_PER_GRID]:
            path = [x]
            while parent[path[-1]] != -1:
                path.append(parent[path[-1]])
            out.append(path[::-1] if over else path)
        return out

    def fix(self, a: int) -> bool:
        over = self.hh[a] > self.hi[a]
        for path in self.paths(a, over):
            if over:
                d = min(self.hh[a] - self.hi[a], self.hi[path[-1]] - self.hh[path[-1]])
            else:
                d = min(self.lo[a] - self.hh[a], self.hh[path[0]] - self.lo[path[0]])
            if self.chain(path, d) or self.chain(path, d, slack=d):
                return True
        return False

    def run(self, max_moved: int | None) -> bool:
        """Rounds of fixes; True when stopped by ``max_moved``."""
        for _ in range(ROUNDS):
            bad = [g for g in self.active() if self.viol(g) > 0]
            if not bad:
                return False
            order = self.rng.permutation(len(bad))
            bad = sorted((bad[k] for k in order), key=lambda g: -self.viol(g))
            progress = False
            for g in bad:
                if self.viol(g) == 0:
                    continue
                mark = len(self.journal)
                if self.fix(g):
                    progress = True
                    if max_moved is not None and self.moved > max_moved:
                        self.undo(mark)
                        return True
            if not progress:
                return False
        return False

    def polish(self) -> None:
        """After the search: give moved units back, and straighten edges, where windows allow.

        A unit goes back to its original grid when both grids stay inside
        their windows (fewer households moved); a unit without households,
        or one already moved, changes grid when that shortens the edge
        between two touched grids (compactness at no extra households
        moved). Every step keeps the hard constraints.
        """

        def fits(g: int, delta: int) -> bool:
            h = self.hh[g] + delta
            return self.lo[g] <= h <= self.hi[g] or self.viol(g) >= max(0.0, self.lo[g] - h) + max(
                0.0, h - self.hi[g]
            )

        for _ in range(POLISH_ROUNDS):
            changed = False
            touched = {self.lab[u] for u, *_ in self.journal} | {p for _, p, _ in self.journal}
            units = {u for g in touched for u in self.members[g]}
            for u in sorted(units):
                p, h = self.lab[u], self.uhh[u]
                home = self.orig[u]
                options = []
                for q in {self.lab[v] for v in self.nbrs[u]} - {p}:
                    if not (self.free[q] and self.group[q] == self.group[p]):
                        continue
                    back = q == home
                    if not (back or h == 0 or p != home):
                        continue
                    gain = self.gain(u, p, q)
                    if not back and gain <= 0:
                        continue
                    if not (fits(p, -h) and fits(q, h)):
                        continue
                    options.append((not back, -gain, q))
                for *_, q in sorted(options):
                    if self.can_leave(u, p, q):
                        self.move(u, q)
                        changed = True
                        break
            if not changed:
                break

    # -- compactness pass -------------------------------------------------------------------
    def _prefetch(self, units: list[int]) -> None:
        """Shared edge lengths, areas and perimeters of ``units``, in one vectorised pass.

        Shared lengths come from matching identical ring segments (the units
        are a coverage, :func:`gridgeo.plan.units.unit_adjacency`), a polygon
        intersection only for neighbours whose segments do not match.
        """
        from gridgeo.plan.units import _shared_edges

        todo = [u for u in units if u not in self._lengths or u not in self._shape]
        if not todo:
            return
        pos = np.unique(np.r_[todo, [v for u in todo for v in self.nbrs[u]]]).astype(np.int64)
        geoms = self._scaled(pos)
        crs = self.plan._units.frame.crs
        pairs = _shared_edges(geoms, crs, crs) if crs is not None else None
        n = len(self.lab)  # pair (u, v) as the integer u * n + v: no tuples for the collector
        shared: dict[int, float] = {}
        if pairs is not None:
            i, j = pos[pairs.i], pos[pairs.j]
            length = pairs.length.tolist()
            shared = dict(zip((i * n + j).tolist(), length, strict=True))
            shared.update(zip((j * n + i).tolist(), length, strict=True))
        at = dict(zip(pos.tolist(), range(len(pos)), strict=True))
        missing = [(u, v) for u in todo for v in self.nbrs[u] if u * n + v not in shared]
        if missing:
            a = np.array([at[u] for u, _ in missing])
            b = np.array([at[v] for _, v in missing])
            found = shapely.length(shapely.intersection(geoms[a], geoms[b])).tolist()
            for (u, v), length in zip(missing, found, strict=True):
                shared[u * n + v] = shared[v * n + u] = length
        for u in todo:
            self._lengths[u] = {v: shared[u * n + v] for v in self.nbrs[u]}
        own = geoms[[at[u] for u in todo]]
        for u, s, p in zip(
            todo, shapely.area(own).tolist(), shapely.length(own).tolist(), strict=True
        ):
            self._shape[u] = (s, p)

    def compact(self, base: np.ndarray, existed: list[bool], loss: float, budget: int) -> int:
        """Raise the median Polsby-Popper of the grids touched back to within ``loss`` of before.

        ``base`` holds each unit's grid in the plan the rebalancing started
        from (-1 where that grid is gone) and ``existed`` the grids that plan
        had: the grids touched are those of both that gained or lost a unit,
        as the report counts them. Local search over the boundary units of
        the touched grids: a unit moves to a neighbouring touched grid, or
        two units swap between two of them, when both grids stay inside their
        windows (or get no further outside), stay contiguous, keep their
        micro-grids nested and spread no natural village further
        (:meth:`can_leave`), and the two grids' Polsby-Popper ``4πA/P²``
        improves (areas and perimeters are kept per grid and updated from the
        unit's area and shared edges, so a move costs a few look-ups). Moves
        that cost no households (a unit going home, a unit without
        households, a unit already moved) are taken whenever they improve
        the pair; moves that cost households only while the median is below
        the bound, the most gain below the bound per household first (fewest
        households moved stays the objective after the windows). Stops at the
        bound, when no move improves, or after ``budget`` evaluated moves per
        grid touched (a bound on the time that, unlike a clock, gives the
        same plan on every machine). Returns the moves evaluated.
        """
        lab, nbrs, uhh, sub = self.lab, self.nbrs, self.uhh, self.sub
        orig, orig_sub, group = self.orig, self.orig_sub, self.group
        labels = np.asarray(lab)
        changed = (labels != base) | (np.asarray(sub) != np.asarray(orig_sub))
        scope = {
            g
            for g in {*labels[changed].tolist(), *base[changed].tolist()}
            if g >= 0 and existed[g] and self.free[g]
        }
        work = [0]
        if not scope:
            return 0
        budget *= max(len(scope), 100)
        then = np.flatnonzero(np.isin(base, list(scope))).tolist()
        self._prefetch(sorted({*then, *(u for g in scope for u in self.members[g])}))
        shape, lengths = self._shape, self._lengths
        four_pi = 4 * math.pi

        def measure(units, label) -> tuple[float, float]:
            inner = sum(ln for u in units for v, ln in lengths[u].items() if label[v] == label[u])
            return sum(shape[u][0] for u in units), sum(shape[u][1] for u in units) - inner

        def ratio(a: float, p: float) -> float:
            return four_pi * a / p**2 if p > 0 else 0.0

        members_then: dict[int, list[int]] = {}
        for u in then:
            members_then.setdefault(int(base[u]), []).append(u)
        before = {g: ratio(*measure(units, base)) for g, units in members_then.items()}
        area, perim, pp = {}, {}, {}
        for g in scope:
            area[g], perim[g] = measure(self.members[g], lab)
            pp[g] = ratio(area[g], perim[g])
        # units that differ from the start, per grid of the start and of now: a grid all of
        # whose units went home is no longer touched and leaves the median
        differ = dict.fromkeys(scope, 0)
        for u in np.flatnonzero(changed).tolist():
            for g in {lab[u], int(base[u])}:
                if g in differ:
                    differ[g] += 1

        def median() -> float:
            values = [pp[g] for g in scope if differ[g]]
            return statistics.median(values) if values else math.inf

        def goal_now() -> float:
            values = [before[g] for g in scope if differ[g]]
            median = float(np.median(values)) if values else 0.0
            return (1 - loss) * median + COMPACT_MARGIN

        def fits(g: int, delta: int) -> bool:
            h = self.hh[g] + delta
            out = max(0.0, self.lo[g] - h) + max(0.0, h - self.hi[g])
            return out == 0 or out <= self.viol(g)

        def cost(u: int, p: int, q: int) -> int:
            """Households moved (from the original grids) the move adds."""
            return uhh[u] * ((p == orig[u]) - (q == orig[u]))

        def shift(u: int, p: int, q: int) -> tuple[float, float, float, float]:
            """Area and perimeter of ``p`` and ``q`` after ``u`` moves from ``p`` to ``q``."""
            work[0] += 1
            a, per = shape[u]
            lp = lq = 0.0
            for v, length in lengths[u].items():
                g = lab[v]
                if g == p:
                    lp += length
                elif g == q:
                    lq += length
            return area[p] - a, perim[p] - per + 2 * lp, area[q] + a, perim[q] + per - 2 * lq

        def now(p: int, q: int) -> tuple[float, float]:
            return pp[p], pp[q]

        def gains(old: tuple[float, float], new: tuple[float, ...]) -> tuple[float, float]:
            """Gain of the pair's Polsby-Popper, and of its part below the goal."""
            a = four_pi * new[0] / new[1] ** 2 if new[1] > 0 else 0.0
            b = four_pi * new[2] / new[3] ** 2 if new[3] > 0 else 0.0
            x, y = old
            total = a + b - x - y
            short = (
                (a if a < goal else goal)
                + (b if b < goal else goal)
                - (x if x < goal else goal)
                - (y if y < goal else goal)
            )
            return total, short

        def commit(u: int, q: int, new: tuple[float, ...]) -> None:
            p, home = lab[u], int(base[u])
            if p != home or sub[u] != orig_sub[u]:
                for g in {p, home} & differ.keys():
                    differ[g] -= 1
            area[p], perim[p], area[q], perim[q] = new
            pp[p], pp[q] = ratio(new[0], new[1]), ratio(new[2], new[3])
            self.move(u, q)
            if q != home or sub[u] != orig_sub[u]:
                for g in {q, home} & differ.keys():
                    differ[g] += 1

        def try_move(u: int, p: int, q: int, dear: bool) -> bool:
            if lab[u] != p or not (fits(p, -uhh[u]) and fits(q, uhh[u])):
                return False
            new = shift(u, p, q)
            total, short = gains(now(p, q), new)
            # a free move may not take a grid below the goal: the median could drop
            good = short > EPSILON if dear else total > EPSILON and short > -EPSILON
            good = good and total > -EPSILON
            if good and (dear or cost(u, p, q) <= 0) and self.can_leave(u, p, q):
                commit(u, q, new)
                return True
            return False

        def try_swap(u: int, w: int, p: int, q: int) -> bool:
            if lab[u] != p or lab[w] != q:
                return False
            d = uhh[u] - uhh[w]
            if not (fits(p, -d) and fits(q, d)) or not self.can_leave(u, p, q):
                return False
            old = now(p, q)
            saved = area[p], perim[p], area[q], perim[q]
            mark = len(self.journal)
            counts = {g: differ[g] for g in {p, q, int(base[u]), int(base[w])} & differ.keys()}
            commit(u, q, shift(u, p, q))
            if any(lab[v] == p for v in nbrs[w]) and self.can_leave(w, q, p):
                new = shift(w, q, p)
                total, short = gains(old, (new[2], new[3], new[0], new[1]))
                if short > EPSILON and total > -EPSILON:
                    commit(w, p, new)
                    return True
            self.undo(mark)
            area[p], perim[p], area[q], perim[q] = saved
            pp[p], pp[q] = old
            differ.update(counts)
            return False

        def scan(grids, need: bool):
            """Single moves out of ``grids``: free ones, ones that cost households, blocked ones."""
            cheap, dear, blocked = [], [], {}
            for p in grids:
                for u in self.members[p]:
                    others = {lab[v] for v in nbrs[u]}
                    others.discard(p)
                    for q in others:
                        if q not in scope or group[q] != group[p]:
                            continue
                        total, short = gains(now(p, q), shift(u, p, q))
                        costly = need and short > EPSILON and total > -EPSILON
                        if not (costly or total > EPSILON):
                            continue
                        c = cost(u, p, q)
                        room = fits(p, -uhh[u]) and fits(q, uhh[u])
                        if room and c <= 0 and total > EPSILON and short > -EPSILON:
                            cheap.append((c, -total, u, p, q))
                        elif costly:
                            if room:
                                dear.append((-short / max(c, 1), u, p, q))
                            else:
                                blocked.setdefault((p, q), []).append((-short, u))
            return cheap, dear, blocked

        def swaps(blocked) -> set[int]:
            """Swaps for single moves the windows block: the unit of the other grid that fits
            the windows and costs the pair least."""
            done: set[int] = set()
            for (p, q), out in sorted(blocked.items()):
                if median() >= goal or work[0] > budget:
                    break
                back = [w for w in self.members[q] if any(lab[v] == p for v in nbrs[w])]
                for _, u in sorted(out)[:SWAP_CANDIDATES]:
                    if lab[u] != p:
                        continue
                    first = gains(now(p, q), shift(u, p, q))[0]
                    options = sorted(
                        (-(first + gains(now(q, p), shift(w, q, p))[0]), w)
                        for w in back
                        if fits(p, uhh[w] - uhh[u]) and fits(q, uhh[u] - uhh[w])
                    )
                    if any(try_swap(u, w, p, q) for _, w in options[:SWAP_CANDIDATES]):
                        done |= {p, q}
                        break
            return done

        dirty = set(scope)
        for _ in range(COMPACT_ROUNDS):
            if work[0] > budget:
                break
            goal = goal_now()
            need = median() < goal
            cheap, dear, blocked = scan(sorted(dirty), need)
            done: set[int] = set()
            for *_, u, p, q in sorted(cheap):
                if try_move(u, p, q, dear=False):
                    done |= {p, q}
            below = need and median() < goal
            for _, u, p, q in sorted(dear):
                if not below or work[0] > budget:
                    break
                if try_move(u, p, q, dear=True):
                    done |= {p, q}
                    below = median() < goal
            if not done and below:
                if dirty != scope:
                    blocked = scan(sorted(scope), need)[2]
                done = swaps(blocked)
            if not done:
                break
            dirty = done
        return work[0]

    # -- analysis ------------------------------------------------------------------------
    def components(self) -> list[list[int]]:
        seen: set[int] = set()
        out = []
        for g in self.active():
            if g in seen:
                continue
            comp, queue = [], deque([g])
            seen.add(g)
            while queue:
                x = queue.popleft()
                comp.append(x)
                for y in self.partners(x):
                    if y not in seen:
                        seen.add(y)
                        queue.append(y)
            out.append(sorted(comp))
        return out

    def proposals(self) -> pd.DataFrame:
        """Splits or merges for each connected set of grids whose windows cannot hold its households."""
        rows = []
        for comp in self.components():
            total = sum(self.hh[g] for g in comp)
            low = sum(self.lo[g] for g in comp)
            high = sum(self.hi[g] for g in comp)
            n = len(comp)
            parent = str(self.plan.grid_table["parent_code"].iloc[comp[0]])
            if total > high:
                cap = float(np.median([self.hi[g] for g in comp]))
                need = math.ceil(total / cap)
                biggest = sorted(comp, key=lambda g: -self.hh[g])[: need - n]
                for g in biggest:
                    rows.append(
                        {
                            "action": "split",
                            "codes": self.codes[g],
                            "parent_code": parent,
                            "households": total,
                            "grids_now": n,
                            "grids_needed": need,
                            "reason": (
                                f"{n} grid(s) of {self.norm[g]} in {parent} around {self.codes[g]} "
                                f"hold {total:,} households, more than their maxima allow "
                                f"({high:,.0f}); split {self.codes[g]} ({self.hh[g]} households) in two."
                            ),
                        }
                    )
            elif total < low and n > 1:
                floor = float(np.median([self.lo[g] for g in comp]))
                need = max(1, math.floor(total / floor))
                taken: set[int] = set()
                for g in sorted(comp, key=lambda g: self.hh[g]):
                    if n - len(taken) // 2 <= need:
                        break
                    if g in taken:
                        continue
                    mates = [b for b in self.partners(g) if b not in taken]
                    if not mates:
                        continue
                    b = min(mates, key=lambda b: (self.hh[b], b))
                    taken |= {g, b}
                    pair = sorted([self.codes[g], self.codes[b]])
                    rows.append(
                        {
                            "action": "merge",
                            "codes": ", ".join(pair),
                            "parent_code": parent,
                            "households": total,
                            "grids_now": n,
                            "grids_needed": need,
                            "reason": (
                                f"{n} grid(s) of {self.norm[g]} in {parent} around {self.codes[g]} "
                                f"hold {total:,} households, fewer than their minima need "
                                f"({low:,.0f}); merge {pair[0]} and {pair[1]}."
                            ),
                        }
                    )
        return pd.DataFrame(rows, columns=_PROPOSAL_COLUMNS)

    def local_proposals(self, heavy: bool = False) -> pd.DataFrame:
        """Splits of grids still above their window, merges of grids still below it, after the search.

        ``heavy``: only splits of grids more than a whole window over their maximum.
        """
        rows = []
        taken: set[int] = set()
        for g in self.active():
            if self.viol(g) == 0 or g in taken:
                continue
            code, parent, h = (
                self.codes[g],
                str(self.plan.grid_table["parent_code"].iloc[g]),
                self.hh[g],
            )
            if heavy and not h > 2 * self.hi[g]:
                continue
            if h > self.hi[g] and len(self.members[g]) > 1:
                parts = min(math.ceil(h / self.hi[g]), len(self.members[g]))
                rows.append(
                    {
                        "action": "split",
                        "codes": code,
                        "parent_code": parent,
                        "households": h,
                        "grids_now": 1,
                        "grids_needed": parts,
                        "reason": f"grid {code} holds {h} households, more than its maximum "
                        f"of {self.hi[g]:.0f} the neighbours can take; split it into {parts} "
                        "(new grids for the new housing).",
                    }
                )
            elif h < self.lo[g]:
                mates = [
                    b for b in self.partners(g) if b not in taken and self.hh[b] + h <= self.hi[g]
                ]
                if not mates:
                    continue
                b = min(mates, key=lambda b: (self.hh[b], b))
                taken |= {g, b}
                pair = sorted([code, self.codes[b]])
                rows.append(
                    {
                        "action": "merge",
                        "codes": ", ".join(pair),
                        "parent_code": parent,
                        "households": h + self.hh[b],
                        "grids_now": 2,
                        "grids_needed": 1,
                        "reason": f"grid {code} still holds {h} households (minimum "
                        f"{self.lo[g]:.0f}) and no neighbour can spare any; merge it with "
                        f"{self.codes[b]} ({self.hh[b]} households).",
                    }
                )
        return pd.DataFrame(rows, columns=_PROPOSAL_COLUMNS)

    def infeasible(self) -> list[dict]:
        """Grids no unit move can bring inside their window, with the reason."""
        out = []
        for g in range(len(self.codes)):
            if not self.in_scope[g] or self.viol(g) == 0:
                continue
            code = self.codes[g]
            if self.locked_mask[g]:
                out.append(
                    {
                        "code": code,
                        "rule": "locked",
                        "reason": f"grid {code} is locked and holds {self.hh[g]} households, "
                        f"outside its window {_bounds(self.lo[g], self.hi[g])}; unlock it to rebalance it.",
                    }
                )
                continue
            big = [u for u in self.members[g] if self.uhh[u] > self.hi[g]]
            if big:
                u = max(big, key=lambda u: self.uhh[u])
                unit = self.plan._units.ids[u]
                out.append(
                    {
                        "code": code,
                        "rule": "unit",
                        "reason": f"grid {code}: unit {unit} alone holds {self.uhh[u]} households, "
                        f"above the maximum of {self.hi[g]:.0f}; no grid holding it can meet the "
                        "window. Divide the unit (a building group) or give it a window of its own.",
                    }
                )
                continue
            if not self.partners(g):
                out.append(
                    {
                        "code": code,
                        "rule": "isolated",
                        "reason": f"grid {code} ({self.hh[g]} households, window "
                        f"{_bounds(self.lo[g], self.hi[g])}) has no neighbouring {self.norm[g]} grid in "
                        f"its district to exchange units with (an isolated village or settlement); "
                        "change its window or merge it by hand.",
                    }
                )
        return out

    # -- the result ------------------------------------------------------------------------
    def result(self, plan: Plan, by: str | None) -> Plan:
        lab = np.asarray(self.lab)
        sub = np.asarray(self.sub)
        changed = np.flatnonzero(
            (lab != np.asarray(self.orig)) | (sub != np.asarray(self.orig_sub))
        )
        if len(changed) == 0:
            return plan
        _, workload, refinement = (
            plan.config.role(r) for r in (Role.DISTRICT, Role.WORKLOAD, Role.REFINEMENT)
        )
        codes = np.asarray(self.codes, dtype=object)
        micro = np.asarray([*self.micro_codes, ""], dtype=object)
        table = pd.DataFrame(
            {"unit_id": plan._units.ids[changed], workload.code_column: codes[lab[changed]]}
        )
        if refinement is not None:
            table[refinement.code_column] = micro[sub[changed]]
        with warnings.catch_warnings():
            # the report lists every grid still outside its window
            warnings.simplefilter("ignore", PlanWarning)
            return plan.reassign(table, op="rebalance", by=by)


_PROPOSAL_COLUMNS = [
    "action",
    "codes",
    "parent_code",
    "households",
    "grids_now",
    "grids_needed",
    "reason",
]


def _bounds(lo: float, hi: float) -> str:
    return f"{lo:.0f}–{hi:.0f}" if math.isfinite(hi) else f"≥ {lo:.0f}"


def _resize(plan: Plan, proposals: pd.DataFrame, by: str | None) -> Plan:
    """Apply the proposed splits and merges (the report lists them as applied)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        for row in proposals.itertuples():
            if row.action == "split":
                parts = max(2, int(row.grids_needed) if row.grids_now == 1 else 2)
                plan = plan.split(row.codes, parts=parts, by=by)
            else:
                codes = [c.strip() for c in row.codes.split(",")]
                if all(c in plan.grid_table.index for c in codes):
                    plan = plan.merge(codes, by=by)
    return plan


def _report(
    original, plan, new, search, proposals, applied, problems, stopped, max_moved, loss, start
):
    """The :class:`RebalanceReport` of a run."""
    scope = search.in_scope
    codes = np.asarray(search.codes, dtype=object)
    before = pd.Series(original.households_of(codes[scope]))
    table = pd.DataFrame(
        {
            "code": codes[scope],
            "parent_code": plan.grid_table["parent_code"].astype(str).to_numpy()[scope],
            "norm": search.norm[scope],
            "low": np.asarray(search.lo)[scope],
            "high": np.asarray(search.hi)[scope],
        }
    )
    table["households_before"] = (
        table["code"].map(before).fillna(0).astype(np.int64)
        if len(table)
        else pd.Series(dtype=np.int64)
    )
    table["households_after"] = np.asarray(search.hh, dtype=np.int64)[scope]
    moved = np.asarray(search.lab) != np.asarray(search.orig)
    hh = np.asarray(search.uhh, dtype=np.int64)
    lab, orig = np.asarray(search.lab), np.asarray(search.orig)
    gained = np.bincount(lab[moved], weights=hh[moved], minlength=len(codes)).astype(np.int64)
    lost = np.bincount(orig[moved], weights=hh[moved], minlength=len(codes)).astype(np.int64)
    table["gained"] = gained[scope]
    table["lost"] = lost[scope]
    h_after = table["households_after"].to_numpy(float)
    h_before = table["households_before"].to_numpy(float)
    outside_after = (h_after < table["low"]) | (h_after > table["high"])
    outside_before = (h_before < table["low"]) | (h_before > table["high"])
    locked = search.locked_mask[scope]
    fresh = ~table["code"].isin(original.grid_table.index).to_numpy()
    outside_before = outside_before & ~fresh
    table["status"] = np.select(
        [locked & outside_after, outside_after, fresh, outside_before],
        ["locked", "outside", "new", "fixed"],
        default="inside",
    )
    table["reason"] = ""
    problems = list(problems)
    named = {p["code"] for p in problems}
    for k in np.flatnonzero(outside_after.to_numpy() & ~locked):
        code = table["code"].iloc[k]
        if code in named:
            continue
        if stopped:
            rule, why = "max_moved", f"stopped at {option('max_moved', max_moved)} households moved"
        else:
            rule, why = (
                "stuck",
                "every path to a grid with room (or to spare) is blocked: the units along those edges "
                "would cut a grid, a micro-grid or a natural village apart, or are too large for the "
                "room left",
            )
        problems.append(
            {
                "code": code,
                "rule": rule,
                "reason": f"grid {code}: {int(h_after[k])} households, window "
                f"{_bounds(table['low'].iloc[k], table['high'].iloc[k])}; {why}.",
            }
        )
    for row in proposals.itertuples():
        if not applied:
            problems.append({"code": row.codes, "rule": "count", "reason": row.reason})
    changed = np.flatnonzero(
        (new.workload != original.workload) | (new.refinement != original.refinement)
    )
    ids = original._units.ids
    moves = pd.DataFrame(
        {
            "unit_id": ids[changed],
            "households": original._units.households[changed],
            "old_code": original.workload[changed],
            "new_code": new.workload[changed],
            "old_micro": original.refinement[changed],
            "new_micro": new.refinement[changed],
        }
    )
    households_moved = int(moves.loc[moves["old_code"] != moves["new_code"], "households"].sum())
    # grids that exist before and after and changed: new grids of a split have no "before"
    touched = sorted(
        (set(moves["old_code"]) | set(moves["new_code"]))
        & set(original.grid_table.index)
        & set(new.grid_table.index)
    )
    pp_before = pp_after = math.nan
    table["polsby_popper_before"] = table["polsby_popper_after"] = np.nan
    if touched:
        then = polsby_popper(_metric_shapes(original, touched))
        after = polsby_popper(_metric_shapes(new, touched))
        pp_before, pp_after = float(np.median(then)), float(np.median(after))
        shapes = pd.DataFrame({"before": then, "after": after}, index=touched)
        table["polsby_popper_before"] = table["code"].map(shapes["before"])
        table["polsby_popper_after"] = table["code"].map(shapes["after"])
    compact = not pp_after < (1 - (COMPACTNESS_LOSS if loss is None else loss)) * pp_before
    if loss is not None and not compact:
        drop = (shapes["after"] / shapes["before"]).sort_values()
        worst = drop.index[:3].tolist()
        problems.append(
            {
                "code": ", ".join(worst),
                "rule": "compactness",
                "reason": f"the median Polsby-Popper of the {len(touched)} grid(s) touched fell "
                f"from {pp_before:.3f} to {pp_after:.3f} ({pp_after / pp_before - 1:+.1%}), more "
                f"than the {loss:.0%} {option('max_compactness_loss', loss)} allows, and no unit "
                "move or swap that keeps the windows, contiguity and villages restores it; most "
                "changed: "
                + ", ".join(
                    f"{c} {shapes.loc[c, 'before']:.2f} → {shapes.loc[c, 'after']:.2f}"
                    for c in worst
                )
                + ". Check the shapes, or pass max_compactness_loss=None to accept them.",
            }
        )
    if len(problems):
        reasons = pd.DataFrame(problems).drop_duplicates("code").set_index("code")["reason"]
        table["reason"] = table["code"].map(reasons).fillna("")
    proposals = proposals.assign(applied=applied)

    total = int(table["households_after"].sum())
    summary = {
        "grids": len(table),
        "outside_before": int(outside_before.sum()),
        "outside_after": int(outside_after.sum()),
        "households": total,
        "households_moved": households_moved,
        "units_moved": int((moves["old_code"] != moves["new_code"]).sum()),
        "share_moved": households_moved / total if total else 0.0,
        "touched": len(touched),
        "polsby_popper_before": pp_before,
        "polsby_popper_after": pp_after,
        "max_compactness_loss": loss,
        "compactness_ok": compact,
        "seconds": time.perf_counter() - start,
    }
    problems_frame = pd.DataFrame(problems, columns=["code", "rule", "reason"])
    return RebalanceReport(table, moves, proposals, problems_frame, summary)


# -- workers ----------------------------------------------------------------------------------
def apportion_workers(
    plan: Plan,
    total: int | None = None,
    by: str = "households",
    *,
    towns: Iterable[str] | str | None = None,
    method: str = "huntington-hill",
    author: str | None = None,
) -> tuple[Plan, pd.DataFrame]:
    """Share grid workers over grids in proportion to households, at least one each.

    Every grid keeps at least one worker, its grid leader (网格长).
    Huntington-Hill (the method of the U.S. House of Representatives: seats
    by the geometric mean of n and n + 1, so every grid's first worker comes
    before anyone's second) is the default; ``method="hamilton"`` gives each
    grid one, then shares the rest by largest remainder.

    Parameters
    ----------
    plan : Plan
    total : int, optional
        Workers to share; default the grids' current total. At least one per grid.
    by : str
        The grid column to share by: ``"households"`` or ``"residents"``.
    towns : str or list of str, optional
        Share within these districts only (each district's grids share the
        total of that scope); default the whole plan.
    method : str
        ``"huntington-hill"`` or ``"hamilton"``.
    author : str, optional
        Recorded in the history.

    Returns
    -------
    (Plan, pandas.DataFrame)
        The plan with the new ``workers`` (one ``set`` step per grid whose
        number changed), and per grid: ``households``, ``workers_before``,
        ``workers_after``, ``households_per_worker_before`` and ``_after``.

    Examples
    --------
    >>> from gridgeo import load_demo
    >>> plan = Plan.from_system(load_demo(units=True))
    >>> new, table = apportion_workers(plan, towns="150823100")
    >>> int(table["workers_after"].sum()) == int(table["workers_before"].sum())
    True
    >>> int(table["workers_after"].min()) >= 1
    True
    """
    if by not in ("households", "residents"):
        raise PlanError(
            f"{option('by', by)}: share workers by 'households' or 'residents'.", "unknown"
        )
    if method not in ("huntington-hill", "hamilton"):
        raise PlanError(
            f"{option('method', method)}: use 'huntington-hill' or 'hamilton'.", "unknown"
        )
    keep = _scope(plan, towns)
    codes = plan.grid_table.index[keep]
    totals = plan._totals(plan.workload).reindex(codes, fill_value=0)
    weight = totals[by].to_numpy(np.int64)
    before = (
        pd.to_numeric(plan.grid_table.loc[codes, "workers"], errors="coerce")
        .fillna(0)
        .astype(np.int64)
        if "workers" in plan.grid_table
        else pd.Series(0, index=codes, dtype=np.int64)
    )
    seats = int(before.sum()) if total is None else int(total)
    if seats < len(codes):
        raise PlanError(
            f"{option('total', seats)} workers cannot give each of the {len(codes)} grids its "
            "leader; give at least one worker per grid.",
            "workers",
        )
    after = (
        _huntington_hill(weight, seats) if method == "huntington-hill" else _hamilton(weight, seats)
    )
    table = pd.DataFrame(
        {"households": totals["households"].to_numpy(np.int64)}, index=pd.Index(codes, name="code")
    )
    if by != "households":
        table[by] = weight
    table["workers_before"] = before.to_numpy()
    table["workers_after"] = after
    table["households_per_worker_before"] = table["households"] / table["workers_before"].where(
        table["workers_before"] > 0
    )
    table["households_per_worker_after"] = table["households"] / table["workers_after"]
    changed = table.index[table["workers_before"] != table["workers_after"]]
    if not len(changed):
        return plan, table
    values = pd.DataFrame({"workers": table.loc[changed, "workers_after"].astype(np.int64)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        new = plan.set_many(values, op="apportion_workers", force=True, by=author)
    return new, table


def _huntington_hill(weight: np.ndarray, seats: int) -> np.ndarray:
    """Huntington-Hill apportionment, one seat each first.

    >>> _huntington_hill(np.array([500, 300, 100]), 6).tolist()
    [3, 2, 1]
    """
    import heapq

    n = len(weight)
    out = np.ones(n, dtype=np.int64)
    heap = [(-w / math.sqrt(2), k) for k, w in enumerate(weight.tolist())]
    heapq.heapify(heap)
    for _ in range(seats - n):
        _, k = heapq.heappop(heap)
        out[k] += 1
        s = out[k]
        heapq.heappush(heap, (-weight[k] / math.sqrt(s * (s + 1)), k))
    return out


def _hamilton(weight: np.ndarray, seats: int) -> np.ndarray:
    """One seat each, the rest by largest remainder.

    >>> _hamilton(np.array([500, 300, 100]), 6).tolist()
    [3, 2, 1]
    """
    n = len(weight)
    w = weight.astype(float) if weight.sum() > 0 else np.ones(n)
    raw = (seats - n) * w / w.sum()
    out = np.floor(raw).astype(np.int64)
    rest = seats - n - int(out.sum())
    out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out + 1
