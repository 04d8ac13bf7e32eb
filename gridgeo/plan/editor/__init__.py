"""Redraw grids by hand in JupyterLab: an offline, interactive plan editor.

``edit(plan, "150823100")`` shows one district's grids on a map, each in a
colour no neighbour shares, and a side panel. Click a unit (a housing block,
a natural village) to give it to the *target* grid; Ctrl/⌘+click a grid, or
pick it from the list, to make it the target; Shift+drag a box to move every
unit in it. Lock, undo, redo, split a grid in two and merge two grids are
buttons. Every edit is a :class:`~gridgeo.plan.Plan` operation run in the
kernel: a move the plan refuses (the grid would fall apart, a locked grid, …)
is not applied and the panel says why; the panel shows households,
residents, workers, households per worker and the deviation from the norm
window's centre of every grid the edit touched, and the norms they now break.
:attr:`PlanEditor.plan` is the current plan, :meth:`PlanEditor.save` keeps
it in a :class:`~gridgeo.plan.PlanStore`.

Offline and private. The map's JavaScript is Leaflet 1.9.3, the copy gridgeo
already ships for its HTML maps (:mod:`gridgeo.assets`), bundled into the
widget's module with the editor's own script and stylesheet (package data
beside this file): nothing is fetched from a CDN, and no base map is drawn
unless ``tiles=`` asks for one. The browser receives unit ids, grid codes and
names, counts (households, residents, workers) and outlines rounded to 1e-6°
(about 0.1 m) — no household record, no leader's name. Names are shown with
``textContent``, never parsed as HTML.

Why anywidget and not ipyleaflet
--------------------------------
Measured on the demo's 乌拉山镇 (5,170 units in 144 grids): with ipyleaflet
(one GeoJSON layer per grid, so an edit re-sends only the touched grids)
the view opens 144 layer models, 1.36 MB of GeoJSON built in 0.73 s, and a
move re-sends two whole layers — 14 kB for a median grid, 111 kB for the
largest. With anywidget the units' outlines travel once as delta-coded
integers (0.46 MB; 0.67 MB with the module, Leaflet included, and the CSS)
in one model, and an edit sends the unit → grid assignment, the grid table
and the panel (33 kB, two thirds of it the assignment; whole, so undo, split
and merge need no special case), which the browser turns into a few
restyled paths in 2–4 ms — no geometry moves after the first render, no
layer is rebuilt, no model is opened or closed by a split or a merge. Click
to updated panel in headless Chromium: about 50–70 ms, most of it the
kernel's ``Plan.move`` (``benchmarks/bench_editor.py``). anywidget
also lets the editor own its clicks (modifier click, box select without
leaflet-draw), write the panel with ``textContent`` instead of an HTML
widget's markup, and reuse gridgeo's own Leaflet instead of a second copy
(jupyter-leaflet bundles 1.9.4). It needs ``anywidget`` and ``ipywidgets``
only: ``pip install 'gridgeo[edit]'``.

Examples
--------
>>> from gridgeo import load_demo
>>> from gridgeo.plan import Plan
>>> plan = Plan.from_system(load_demo(units=True))
>>> editor = edit(plan, "150823100", lang="en")
>>> editor
PlanEditor(district 150823100, 144 grids, 5,170 units, 0 steps)
>>> editor.target = "150823100002"
>>> unit = plan.border_units("150823100001", "150823100002")[0]
>>> editor.move([unit])
True
>>> editor.message
'Moved 1 unit (... households) to grid 150823100002.'
>>> editor.plan.steps[-1].op, editor.undo(), len(editor.plan.steps)
('move', True, 0)
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from gridgeo.config import Role
from gridgeo.errors import GridgeoError, PlanError, PlanWarning, option
from gridgeo.plan.model import Plan, _isin

__all__ = ["PALETTE", "TEXT", "PlanEditor", "edit"]

PALETTE = (
    "#8dd3c7",
    "#fdb462",
    "#bebada",
    "#fb8072",
    "#80b1d3",
    "#b3de69",
    "#fccde5",
    "#ffed6f",
    "#bc80bd",
    "#ccebc5",
    "#e5c494",
    "#d9d9d9",
)
"""Fill colours of grids (ColorBrewer Set3, light enough for the white unit edges).

A district whose grid graph needs more colours than this gets more, spread
around the hue circle; greedy colouring needs at most one more than the
largest number of neighbours a grid has.
"""

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "target": "目标{level}",
        "neighbour": "相邻{level}",
        "none": "（未选择）",
        "undo": "撤销",
        "redo": "重做",
        "lock": "锁定目标",
        "unlock": "解锁目标",
        "split": "把目标一分为二",
        "merge": "与相邻{level}合并",
        "hint": "点击单元：划入目标{level}。Ctrl/⌘+点击：设为目标。Shift+拖动：框选单元。",
        "unit_info": "单元 {id} · {hh} 户 · {level} {code}",
        "pick_target": "请先选择目标{level}（从列表选择，或 Ctrl/⌘+点击地图）。",
        "pick_neighbour": "请先从列表中选择要合并的相邻{level}。",
        "busy": "处理中…",
        "title": "{name}（{code}）· {n} 个{level} · {units} 个单元",
        "target_line": "目标{level}：{code} {name}{locked}",
        "locked_mark": "（已锁定）",
        "no_target": "目标{level}：未选择",
        "moved": "已将 {n} 个单元（{hh} 户）划入{level} {code}。",
        "nothing_moved": "所选单元已属于{level} {code}，未作改动。",
        "locked": "已锁定{level} {code}。",
        "unlocked": "已解锁{level} {code}。",
        "split_done": "已将{level} {code} 拆分为 {codes}。",
        "merged": "已将{level} {others} 并入 {code}。",
        "undone": "已撤销：{op}。",
        "redone": "已重做：{op}。",
        "saved": "已保存为版本 {version}。",
        "refused": "未执行：{reason}",
        "detail": "详情：{text}",
        "rule_locked": "{level} {codes} 已锁定，先解锁，或不要改动它。",
        "rule_contiguity": "{level} {codes} 会被分成互不相连的几块；把脱离的单元一起移走，或沿共同边界选择单元。",
        "rule_district": "{level} {codes} 不能跨越所属{district}；只能把单元交给本{district}的{level}。",
        "rule_empty": "{level} {codes} 会没有单元，或单元太少无法拆分；请改为与相邻{level}合并。",
        "rule_refinement": "{level} {codes} 的{micro}会跨越{level}边界，或只覆盖{level}的一部分；请整体移动{micro}。",
        "rule_undo": "没有可以撤销的操作。",
        "rule_redo": "没有可以重做的操作。",
        "rule_other": "{text}",
        "ops": "move=移动单元;split=拆分;merge=合并;lock=锁定;unlock=解锁",
        "headers": "{level}|名称|户数|变化|人口|网格员|户/网格员|偏离",
        "new": "新",
        "gone": "已不存在",
        "warn_low": "{level} {code}：{value} 户，低于“{norm}”规范 {low}–{high} 户。",
        "warn_high": "{level} {code}：{value} 户，高于“{norm}”规范 {low}–{high} 户。",
        "warn_residents": "{level} {code}：{value} 人，高于“{norm}”规范 {high} 人。",
        "warn_worker": "{level} {code}：每名网格员 {value} 户，高于“{norm}”规范 {high} 户。",
        "warnings_none": "改动的{level}均符合规范。",
        "summary": "本{district}共有 {n} 个{level}超出户数规范。",
    },
    "en": {
        "target": "Target {level}",
        "neighbour": "Neighbouring {level}",
        "none": "(none)",
        "undo": "Undo",
        "redo": "Redo",
        "lock": "Lock target",
        "unlock": "Unlock target",
        "split": "Split target in two",
        "merge": "Merge with neighbour",
        "hint": "Click a unit: give it to the target {level}. Ctrl/⌘+click: make that {level} the target. Shift+drag: box-select units.",
        "unit_info": "Unit {id} · {hh} households · {level} {code}",
        "pick_target": "Choose a target {level} first (from the list, or Ctrl/⌘+click on the map).",
        "pick_neighbour": "Choose the neighbouring {level} to merge with from the list first.",
        "busy": "Working…",
        "title": "{name} ({code}) · {n} {level}s · {units} units",
        "target_line": "Target {level}: {code} {name}{locked}",
        "locked_mark": " (locked)",
        "no_target": "Target {level}: none",
        "moved": "Moved {n} unit{s} ({hh} households) to {level} {code}.",
        "nothing_moved": "The units already belong to {level} {code}; nothing changed.",
        "locked": "Locked {level} {code}.",
        "unlocked": "Unlocked {level} {code}.",
        "split_done": "Split {level} {code} into {codes}.",
        "merged": "Merged {level} {others} into {code}.",
        "undone": "Undone: {op}.",
        "redone": "Redone: {op}.",
        "saved": "Saved as version {version}.",
        "refused": "Refused: {reason}",
        "detail": "",
        "rule_other": "{text}",
        "ops": "move=move units;split=split;merge=merge;lock=lock;unlock=unlock",
        "headers": "{Level}|Name|Households|Change|Residents|Workers|Households per worker|Deviation",
        "new": "new",
        "gone": "gone",
        # the words of Plan.norm_warnings
        "warn_low": "{level} {code}: {value} households, below the {norm} norm of {low}–{high}.",
        "warn_high": "{level} {code}: {value} households, above the {norm} norm of {low}–{high}.",
        "warn_residents": "{level} {code}: {value} residents, above the {norm} norm of {high}.",
        "warn_worker": "{level} {code}: {value} households per worker, above the {norm} norm of {high}.",
        "warnings_none": "Every {level} the edit touched is within its norms.",
        "summary": "{n} {level}s of this {district} are outside their household norm.",
    },
}
"""What the editor says, per language (``lang=``): labels, messages, refusals.

In Chinese a refusal is worded per rule (:attr:`PlanError.rule
<gridgeo.errors.PlanError>`), with the model's own English message as the
detail; in English the model's message is the refusal. Level words
(``{level}``: the workload level, ``{district}``, ``{micro}``) come from the
configuration.
"""

_UNIT_BUDGET = 60_000
"""More units than this in one view would make the first render slow (SVG paths)."""


# -- entry point ---------------------------------------------------------------------
def edit(
    plan: Plan,
    district: str | Iterable[str] | None = None,
    lang: str = "zh",
    *,
    tiles: str | None = None,
    tiles_key: str | None = None,
    tiles_crs: str = "wgs84",
    height: int = 640,
) -> PlanEditor:
    """An interactive editor of ``plan`` for JupyterLab (see :class:`PlanEditor`).

    Parameters
    ----------
    plan : Plan
        The plan to edit; it is never changed (plans are immutable):
        :attr:`PlanEditor.plan` is the edited one.
    district : str or list of str, optional
        The district(s) to show, by code or name (乌拉山镇 is
        ``"150823100"``); default: every district.
    lang : {"zh", "en"}
        The panel's language.
    tiles, tiles_key, tiles_crs
        A base map, as in :func:`gridgeo.maps.coverage_map`: ``None``
        (default: none, fully offline), a name (``"osm"``, ``"tianditu"``
        with ``tiles_key``, ``"amap"``) or an XYZ URL template of an intranet
        tile server.
    height : int
        The widget's height in pixels.

    Returns
    -------
    PlanEditor

    Raises
    ------
    GridgeoError
        The widget libraries are not installed (``pip install 'gridgeo[edit]'``),
        an unknown district, language or tile source.
    """
    return PlanEditor(
        plan,
        district,
        lang=lang,
        tiles=tiles,
        tiles_key=tiles_key,
        tiles_crs=tiles_crs,
        height=height,
    )


class PlanEditor:
    """A plan, its editing widget, and the edits between them.

    Displayed in a notebook it is the widget (:attr:`widget`, an
    ``anywidget.AnyWidget``; put that in ipywidgets layouts). The methods
    :meth:`move`, :meth:`lock`, :meth:`unlock`, :meth:`split`,
    :meth:`merge`, :meth:`undo` and :meth:`redo` do what the widget's clicks
    and buttons do: each runs the :class:`~gridgeo.plan.Plan` operation,
    returns whether it was applied, and updates the map and the panel; a
    refused edit leaves :attr:`plan` as it was and :attr:`message` says why.
    """

    def __init__(
        self,
        plan: Plan,
        district: str | Iterable[str] | None = None,
        *,
        lang: str = "zh",
        tiles: str | None = None,
        tiles_key: str | None = None,
        tiles_crs: str = "wgs84",
        height: int = 640,
    ) -> None:
        if not isinstance(plan, Plan):
            raise GridgeoError(
                f"edit() takes a gridgeo.plan.Plan, not {type(plan).__name__}: build one with "
                "Plan.from_system(system)."
            )
        if lang not in TEXT:
            raise GridgeoError(
                f"{option('lang', lang)} is not a language of the editor: use one of {sorted(TEXT)}"
            )
        tile = _tile_layer(tiles, tiles_key, tiles_crs)
        widget_class = _widget_class()  # fails early, before any work, without [edit]
        self._lang = lang
        self._text = _words(plan, lang)
        self._districts = _districts(plan, district)
        self._pos = np.flatnonzero(_isin(plan._units.district, self._districts))
        if len(self._pos) > _UNIT_BUDGET:
            raise GridgeoError(
                f"{len(self._pos):,} units are too many for one editor view (at most "
                f"{_UNIT_BUDGET:,}): pass {option('district', '...')} to edit one district."
            )
        self._edges = _local_edges(plan, self._pos)
        self._plan = plan
        self._target: str | None = None
        self._colours: dict[str, int] = {}
        self._message: dict[str, str] = {"kind": "", "text": "", "detail": ""}
        self._touched: list[str] = []
        self._before: dict[str, int] = {}
        self._households: dict[str, int] = {}
        self._grids: _Grids | None = None
        self._parent: str | None = None
        self._seq = 0
        self.widget = widget_class(
            units=_unit_payload(plan, self._pos, shift=tile is not None and tile["crs"] == "gcj02"),
            text=self._ui_text(),
            tiles=tile or {},
            height=int(height),
            state=self._state(),
        )
        self.widget.on_msg(self._on_msg)

    # -- reading -----------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        """The current plan (after every applied edit, undo and redo)."""
        return self._plan

    @property
    def message(self) -> str:
        """What the last edit did, or why it was refused (in the editor's language)."""
        return self._message["text"]

    @property
    def panel(self) -> dict:
        """The side panel's content as the browser shows it (all text)."""
        return dict(self.widget.state["panel"])

    @property
    def target(self) -> str | None:
        """The grid that clicked units join (``None``: none chosen yet)."""
        return self._target

    @target.setter
    def target(self, code: str | None) -> None:
        if code is not None:
            code = self._own(code)
        self._target = code
        self._publish()

    def __repr__(self) -> str:
        grids = int(self._plan.grid_table["parent_code"].isin(self._districts).sum())
        where = ", ".join(self._districts)
        return (
            f"PlanEditor(district {where}, {grids} grids, {len(self._pos):,} units, "
            f"{len(self._plan.steps)} steps)"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):  # what a notebook without a live frontend shows
            bundle["text/plain"] = repr(self)
        return bundle

    # -- edits ----------------------------------------------------------------------
    def move(self, units: Iterable[str] | str, to: str | None = None) -> bool:
        """Give ``units`` (unit ids) to grid ``to`` (default: the :attr:`target`)."""
        to = self._target if to is None else self._own(to)
        if to is None:
            return self._refuse_text(self._say("pick_target"))
        ids = [units] if isinstance(units, str) else [str(u) for u in units]
        position = self._plan._units.position
        here = [position[u] for u in ids if u in position]
        if ids and len(here) == len(ids) and set(self._plan.workload[here]) == {to}:
            # a step that moves nothing would only clutter the history and undo
            self._message = {
                "kind": "info",
                "text": self._say("nothing_moved", code=to),
                "detail": "",
            }
            self._publish()
            return False
        return self._apply("move", lambda p: p.move(ids, to=to), to=to)

    def lock(self, code: str | None = None) -> bool:
        """Lock grid ``code`` (default: the target): edits that change it are refused."""
        code = self._code_or_target(code)
        return code is not None and self._apply("lock", lambda p: p.lock(code), to=code)

    def unlock(self, code: str | None = None) -> bool:
        """Unlock grid ``code`` (default: the target)."""
        code = self._code_or_target(code)
        return code is not None and self._apply("unlock", lambda p: p.unlock(code), to=code)

    def split(self, code: str | None = None) -> bool:
        """Split grid ``code`` (default: the target) into two contiguous grids balanced by households."""
        code = self._code_or_target(code)
        return code is not None and self._apply("split", lambda p: p.split(code, 2), to=code)

    def merge(self, other: str, code: str | None = None) -> bool:
        """Merge grid ``other`` with grid ``code`` (default: the target); the lower code stays."""
        code = self._code_or_target(code)
        if code is None:
            return False
        other = self._own(other)
        return self._apply("merge", lambda p: p.merge([code, other]), to=min(code, other))

    def undo(self) -> bool:
        """Go back one operation."""
        return self._apply("undo", lambda p: p.undo())

    def redo(self) -> bool:
        """Redo the operation :meth:`undo` went back from."""
        return self._apply("redo", lambda p: p.redo())

    def save(self, store: Any, message: str, author: str, parent: str | None = None) -> str:
        """Save :attr:`plan` as a new version of ``store`` (:meth:`PlanStore.save <gridgeo.plan.PlanStore.save>`).

        ``parent`` is the version the plan was built on; default: the version
        this editor saved last (``None`` before its first save, which an
        empty store accepts). Returns the new version's id.

        Raises
        ------
        ConflictError
            Someone saved on ``parent`` first; nothing was written.
        """
        version = store.save(self._plan, message, author, parent=parent or self._parent)
        self._parent = version
        self._message = {"kind": "ok", "text": self._say("saved", version=version), "detail": ""}
        self._publish()
        return version

    # -- machinery ------------------------------------------------------------------
    def _apply(self, op: str, action, to: str | None = None) -> bool:
        before = self._plan
        try:
            with warnings.catch_warnings():
                # the panel shows the norms; a warning would land in some cell's output
                warnings.simplefilter("ignore", PlanWarning)
                after = action(before)
        except PlanError as error:
            self._message = {
                "kind": "refused",
                "text": self._say("refused", reason=self._reason(error)),
                "detail": self._say("detail", text=str(error)) if self._lang != "en" else "",
            }
            self._publish()
            return False
        self._plan = after
        changed = np.flatnonzero(after.workload[self._pos] != before.workload[self._pos])
        moved_codes = set(before.workload[self._pos][changed]) | set(
            after.workload[self._pos][changed]
        )
        step = after.steps[-1] if op != "undo" else (before.steps[-1] if before.steps else None)
        touched = [*([to] if to else []), *(step.touched if step else ()), *sorted(moved_codes)]
        self._touched = list(dict.fromkeys(touched))
        # the numbers the panel showed before the edit (retired and new codes have none)
        self._before = {c: self._households[c] for c in self._touched if c in self._households}
        if self._target is not None and self._target not in after.grid_table.index:
            self._target = to if to in after.grid_table.index else None
        if op == "split" and to is not None:
            self._target = to
        self._message = {
            "kind": "ok",
            "text": self._done(op, before, after, changed, to),
            "detail": "",
        }
        self._publish()
        return True

    def _done(self, op: str, before: Plan, after: Plan, changed, to) -> str:
        if op == "move":
            if len(changed) == 0:
                return self._say("nothing_moved", code=to)
            hh = int(after._units.households[self._pos[changed]].sum())
            n = len(changed)
            return self._say("moved", n=n, s="" if n == 1 else "s", hh=hh, code=to)
        if op in ("lock", "unlock"):
            return self._say("locked" if op == "lock" else "unlocked", code=to)
        if op == "split":
            return self._say("split_done", code=to, codes=", ".join(after.steps[-1].touched))
        if op == "merge":
            others = [c for c in after.steps[-1].params["grids"] if c != to]
            return self._say("merged", code=to, others=", ".join(others))
        step = before.steps[-1] if op == "undo" else after.steps[-1]
        return self._say("undone" if op == "undo" else "redone", op=self._op_name(step.op))

    def _refuse_text(self, text: str) -> bool:
        self._message = {"kind": "refused", "text": text, "detail": ""}
        self._publish()
        return False

    def _on_msg(self, widget: Any, content: Mapping, buffers: Sequence) -> None:
        """A click or button in the browser: ``{"op": ..., ...}``."""
        op = content.get("op")
        try:
            if op == "move":
                ids = self._plan._units.ids[self._pos[np.asarray(content["units"], dtype=np.int64)]]
                self.move(ids.tolist(), content.get("to") or None)
            elif op == "target":
                self.target = content.get("code") or None
            elif op in ("lock", "unlock", "split"):
                getattr(self, op)(content.get("code") or None)
            elif op == "merge":
                self.merge(content["other"], content.get("code") or None)
            elif op in ("undo", "redo"):
                getattr(self, op)()
        except GridgeoError as error:  # an unknown code sent by a stale view
            self._refuse_text(str(error))

    def _code_or_target(self, code: str | None) -> str | None:
        code = self._target if code is None else self._own(code)
        if code is None:
            self._refuse_text(self._say("pick_target"))
        return code

    def _own(self, code: str) -> str:
        code = str(code)
        table = self._plan.grid_table
        if code not in table.index or str(table.loc[code, "parent_code"]) not in self._districts:
            raise PlanError(
                f"{self._text['level_en']} {code} is not in this editor's district(s) "
                f"{', '.join(self._districts)}; see editor.plan.grids for the codes.",
                "unknown",
                (code,),
            )
        return code

    def _say(self, key: str, **values: Any) -> str:
        words = TEXT[self._lang]
        template = words.get(key, TEXT["en"].get(key, "{text}"))
        return template.format(**self._text, **values)

    def _reason(self, error: PlanError) -> str:
        if self._lang == "en":
            return str(error)
        key = f"rule_{error.rule}"
        if key not in TEXT[self._lang]:
            return self._say("rule_other", text=str(error))
        return self._say(key, codes=", ".join(error.codes) or "")

    def _op_name(self, op: str) -> str:
        names = dict(pair.split("=", 1) for pair in TEXT[self._lang]["ops"].split(";"))
        return names.get(op, op)

    def _ui_text(self) -> dict[str, str]:
        keys = ("target", "neighbour", "none", "undo", "redo", "lock", "unlock", "split")
        out = {
            k: self._say(k)
            for k in (*keys, "merge", "hint", "pick_target", "pick_neighbour", "busy")
        }
        # filled in by the browser: {id}, {hh}, {code}
        out["unit_info"] = TEXT[self._lang]["unit_info"].replace("{level}", self._text["level"])
        return out

    def _publish(self) -> None:
        self._seq += 1
        state = self._state()
        if hasattr(self, "widget"):
            self.widget.state = state

    def _view(self) -> _Grids:
        """The district's grid attributes, rebuilt only when the plan's grid table changed."""
        table = self._plan.grid_table
        if self._grids is None or self._grids.source is not table:
            self._grids = _Grids.of(self._plan, self._districts)
        return self._grids

    def _state(self) -> dict:
        """Everything the browser shows that can change: assignment, grids, panel."""
        plan, view = self._plan, self._view()
        n = len(view.codes)
        assign = view.codes.get_indexer(plan.workload[self._pos])
        hit = assign >= 0
        households = np.bincount(assign[hit], plan._units.households[self._pos][hit], n).astype(
            np.int64
        )
        residents = np.bincount(assign[hit], plan._units.residents[self._pos][hit], n).astype(
            np.int64
        )
        # grid adjacency from the unit edges that cross grids, with the edges they share
        i, j = self._edges
        a, b = assign[i], assign[j]
        cut = (a != b) & (a >= 0) & (b >= 0)
        pair, shared = np.unique(
            np.minimum(a[cut], b[cut]) * n + np.maximum(a[cut], b[cut]), return_counts=True
        )
        pairs = np.column_stack([pair // n, pair % n])
        colours = self._colour(view.codes, pairs)
        target = -1 if self._target is None else view.codes.get_loc(self._target)
        neighbours = []
        if target >= 0:
            touching = (pairs == target).any(axis=1)
            other = pairs[touching].sum(axis=1) - target
            order = np.lexsort((other, -shared[touching]))
            neighbours = [view.codes[k] for k in other[order].tolist()]
        self._households = dict(zip(view.codes, households.tolist(), strict=True))
        grids = [
            {"code": c, "name": name, "colour": colour, "locked": locked, "households": h}
            for c, name, colour, locked, h in zip(
                view.codes,
                view.names,
                colours,
                view.locked.tolist(),
                households.tolist(),
                strict=True,
            )
        ]
        return {
            "seq": self._seq,
            "assign": assign.tolist(),
            "grids": grids,
            "target": self._target or "",
            "target_locked": bool(target >= 0 and view.locked[target]),
            "neighbours": neighbours,
            "can_undo": plan._previous is not None,
            "can_redo": bool(plan._undone),
            "panel": self._panel(view, households, residents),
        }

    def _colour(self, codes: pd.Index, pairs: np.ndarray) -> list[str]:
        """Keep each grid's colour while no neighbour shares it; colour the others greedily.

        The first colouring is networkx's greedy one (largest first); after an
        edit, only the grids that are new or now touch a grid of their colour
        take the smallest colour none of their neighbours has.
        """
        edges = [(codes[x], codes[y]) for x, y in pairs.tolist()]
        if not self._colours:
            graph = nx.Graph(edges)
            graph.add_nodes_from(codes)
            self._colours = nx.greedy_color(graph, strategy="largest_first")
        else:
            colour = {c: self._colours[c] for c in codes if c in self._colours}
            clash = {c for u, v in edges if colour.get(u, -1) == colour.get(v, -2) for c in (u, v)}
            pending = sorted((set(codes) - set(colour)) | clash)
            if pending:
                near: dict[str, set[str]] = {c: set() for c in pending}
                for u, v in edges:
                    if u in near:
                        near[u].add(v)
                    if v in near:
                        near[v].add(u)
                for c in pending:
                    colour.pop(c, None)
                for c in pending:
                    used = {colour[x] for x in near[c] if x in colour}
                    colour[c] = next(k for k in itertools.count() if k not in used)
            self._colours.update(colour)
        return [_palette(self._colours[c]) for c in codes]

    def _panel(self, view: _Grids, households: np.ndarray, residents: np.ndarray) -> dict:
        codes = view.codes
        title = self._say(
            "title",
            name=view.place,
            code=", ".join(self._districts),
            n=len(codes),
            units=f"{len(self._pos):,}",
        )
        if self._target is None:
            target = self._say("no_target")
        else:
            k = codes.get_loc(self._target)
            mark = self._say("locked_mark") if view.locked[k] else ""
            target = self._say("target_line", code=self._target, name=view.names[k], locked=mark)
        outside = int(((households < view.low) | (households > view.high)).sum())
        shown = list(dict.fromkeys([*self._touched, *([self._target] if self._target else [])]))
        rows = []
        for code in shown[:8]:
            if code not in codes:
                rows.append([code, "", "", self._say("gone"), "", "", "", ""])
                continue
            k = codes.get_loc(code)
            h, w, centre = int(households[k]), view.workers[k], view.target[k]
            before = self._before.get(code)
            rows.append(
                [
                    code,
                    view.names[k],
                    str(h),
                    self._say("new")
                    if before is None
                    else f"{h - before:+d}"
                    if h != before
                    else "0",
                    str(int(residents[k])),
                    "" if w is None else str(w),
                    "" if not w else f"{h / w:.0f}",
                    f"{h / centre - 1:+.0%}" if math.isfinite(centre) and centre > 0 else "—",
                ]
            )
        touched = [c for c in self._touched if c in codes]
        notes = self._warnings(view, touched, households, residents)
        return {
            "title": title,
            "target": target,
            "message": dict(self._message),
            "headers": self._say("headers").split("|"),
            "rows": rows,
            "warnings": notes,
            "norms_ok": self._say("warnings_none") if touched and not notes else "",
            "summary": self._say("summary", n=outside),
            "step": str(len(self._plan.steps)),
        }

    def _warnings(
        self, view: _Grids, codes: list[str], households: np.ndarray, residents: np.ndarray
    ) -> list[str]:
        """The norms these grids break, the checks and words of :meth:`Plan.norm_warnings`."""
        out = []
        for norm, applies in zip(self._plan.config.norms, view.applies, strict=True):
            for code in codes:
                k = view.codes.get_loc(code)
                if not applies[k]:
                    continue
                h, r = int(households[k]), int(residents[k])
                lo, hi = norm.households_min, norm.households_max
                say = {"code": code, "norm": norm.name}
                if lo is not None and h < lo:
                    out.append(self._say("warn_low", value=h, low=lo, high=hi or "…", **say))
                if hi is not None and h > hi:
                    out.append(self._say("warn_high", value=h, low=lo or 0, high=hi, **say))
                if norm.residents_max is not None and r > norm.residents_max:
                    out.append(self._say("warn_residents", value=r, high=norm.residents_max, **say))
                if norm.per_worker_max is not None and view.has_workers:
                    w = max(view.workers[k] or 0, 1)
                    if h / w > norm.per_worker_max:
                        out.append(
                            self._say(
                                "warn_worker",
                                value=f"{h / w:.0f}",
                                high=f"{norm.per_worker_max:g}",
                                **say,
                            )
                        )
        return out


@dataclass(frozen=True, eq=False)
class _Grids:
    """What the panel needs of the district's grids, from one grid table."""

    source: pd.DataFrame  # the plan's grid table this was built from
    codes: pd.Index
    names: list[str]
    locked: np.ndarray
    workers: list[int | None]
    has_workers: bool
    low: np.ndarray
    high: np.ndarray
    target: np.ndarray  # the norm window's centre (NaN without both bounds)
    applies: list[np.ndarray]  # per norm of the configuration
    place: str  # the districts' names

    @classmethod
    def of(cls, plan: Plan, districts: list[str]) -> _Grids:
        from gridgeo.plan.metrics import windows

        source = plan.grid_table
        table = source[source["parent_code"].astype(str).isin(districts)]
        codes = pd.Index(table.index.astype(str), dtype=object)
        window = windows(plan).reindex(table.index)
        has_workers = "workers" in table
        workers = (
            pd.to_numeric(table["workers"], errors="coerce").tolist()
            if has_workers
            else [None] * len(table)
        )
        frame = plan.frame.get(plan.config.role(Role.DISTRICT).name)
        names = {}
        if frame is not None and "name" in frame:
            names = dict(zip(frame["code"].astype(str), frame["name"].map(_text), strict=True))
        return cls(
            source=source,
            codes=codes,
            names=[_text(n) for n in table.get("name", codes)],
            locked=table["locked"].astype(bool).to_numpy()
            if "locked" in table
            else np.zeros(len(table), bool),
            workers=[None if pd.isna(w) else int(w) for w in workers],
            has_workers=has_workers,
            low=window["low"].to_numpy(float),
            high=window["high"].to_numpy(float),
            target=window["target"].to_numpy(float),
            applies=[norm.applies(table) for norm in plan.config.norms],
            place=" / ".join(names.get(d, d) for d in districts),
        )


# -- helpers ---------------------------------------------------------------------------
@cache
def _widget_class() -> type:
    """The anywidget class, defined on first use so gridgeo imports without it."""
    try:
        import anywidget
        import traitlets
    except ImportError as error:
        raise GridgeoError(
            f"the plan editor needs the widget libraries ({error.name} is missing): "
            "pip install 'gridgeo[edit]'"
        ) from error

    class PlanEditorWidget(anywidget.AnyWidget):
        """The browser side of :class:`PlanEditor` (Leaflet map and side panel)."""

        _esm = traitlets.Unicode(_module_text()).tag(sync=True)
        _css = traitlets.Unicode(_style_text()).tag(sync=True)
        units = traitlets.Dict().tag(sync=True)
        text = traitlets.Dict().tag(sync=True)
        tiles = traitlets.Dict().tag(sync=True)
        height = traitlets.Int(640).tag(sync=True)
        state = traitlets.Dict().tag(sync=True)

    PlanEditorWidget.__module__ = __name__
    PlanEditorWidget.__qualname__ = "PlanEditorWidget"
    return PlanEditorWidget


def _asset(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def _module_text() -> str:
    """One ES module: gridgeo's Leaflet (a UMD script) in a scope of its own, then the editor."""
    from gridgeo.assets import asset_text

    leaflet = asset_text("leaflet.js")
    return (
        "const L = (() => { const module = { exports: {} }; const exports = module.exports;\n"
        f"{leaflet}\n"
        "return module.exports; })();\n"
        "L.noConflict(); // leave window.L to whoever had it (jupyter-leaflet)\n"
        f"{_asset('editor.js')}"
    )


@cache
def _style_text() -> str:
    from gridgeo.assets import asset_text

    return asset_text("leaflet.css") + "\n" + _asset("editor.css")


def _tile_layer(tiles: str | None, key: str | None, crs: str) -> dict | None:
    """A base map as :func:`gridgeo.maps.coverage_map` takes it (``None``: none)."""
    if tiles is None:
        return None  # and no import of the maps (mapclassify takes seconds to import)
    from gridgeo.maps.coverage import _tiles

    return _tiles(tiles, key, None, crs)


def _words(plan: Plan, lang: str) -> dict[str, str]:
    """Level words for the templates, from the configuration's roles."""
    config = plan.config
    out = {}
    for key, role in (
        ("level", Role.WORKLOAD),  # the level edited: "网格" / "grid" for the banner
        ("district", Role.DISTRICT),
        ("micro", Role.REFINEMENT),
    ):
        level = config.role(role)
        label = "" if level is None else (level.label_zh if lang == "zh" else level.label_en)
        out[key] = label
        out[f"{key}_en"] = "" if level is None else level.label_en
    out["Level"] = out["level"][:1].upper() + out["level"][1:]
    return out


def _districts(plan: Plan, district: str | Iterable[str] | None) -> list[str]:
    level = plan.config.role(Role.DISTRICT)
    frame = plan.frame.get(level.name)
    known = sorted(set(plan._units.district.tolist()))
    if district is None:
        return known
    wanted = [district] if isinstance(district, str | int) else list(district)
    names = {}
    if frame is not None and "name" in frame:
        names = dict(zip(frame["name"].astype(str), frame["code"].astype(str), strict=True))
    out = []
    for item in wanted:
        code = names.get(str(item), str(item))
        if code not in known:
            raise GridgeoError(
                f"{option('district', str(item))} is not a {level.label_en} of this plan: use one "
                f"of its codes ({', '.join(known[:5])}{', …' if len(known) > 5 else ''}) or names."
            )
        out.append(code)
    return list(dict.fromkeys(out))


def _local_edges(plan: Plan, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit adjacency among the editor's units, as local index pairs."""
    local = np.full(len(plan._units), -1, dtype=np.int64)
    local[pos] = np.arange(len(pos))
    edges = np.array(list(plan._units.graph.edges), dtype=np.int64).reshape(-1, 2)
    i, j = local[edges[:, 0]], local[edges[:, 1]]
    keep = (i >= 0) & (j >= 0)
    return i[keep], j[keep]


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _palette(k: int) -> str:
    if k < len(PALETTE):
        return PALETTE[k]
    hue = (k * 137.508) % 360  # golden angle: each extra colour far from the last
    return f"hsl({hue:.0f}, 55%, 72%)"


def _unit_payload(plan: Plan, pos: np.ndarray, *, shift: bool) -> dict:
    """The units' outlines as delta-coded micro-degrees, their ids and households.

    ``x``/``y``: running differences of ``round(lon·1e6)``/``round(lat·1e6)``
    over every ring's vertices (the browser adds them up); ``rings``: each
    ring's first vertex, plus the end; ``parts``: each unit's first ring,
    plus the end (exterior first, then holes; the parts of a multipolygon
    follow each other). ``px``/``py``: a point inside each unit, for box
    selection, coded the same way.
    """
    geoms = gpd.GeoSeries(plan._units.geoms[pos], crs=plan._units.frame.crs).to_crs(4326).to_numpy()
    if shift:
        from gridgeo.maps.coverage import _shifted

        geoms = _shifted(geoms, shift)
    polygons, owner = shapely.get_parts(geoms, return_index=True)
    rings, ring_owner = shapely.get_rings(polygons, return_index=True)
    coords, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    # Leaflet closes rings itself: drop each ring's repeated last vertex
    last = np.r_[vertex_ring[1:] != vertex_ring[:-1], True]
    coords, vertex_ring = coords[~last], vertex_ring[~last]
    micro = np.round(coords * 1e6).astype(np.int64)
    ring_start = np.searchsorted(vertex_ring, np.arange(len(rings) + 1))
    unit_of_ring = owner[ring_owner]
    part_start = np.searchsorted(unit_of_ring, np.arange(len(pos) + 1))
    points = np.round(shapely.get_coordinates(shapely.point_on_surface(geoms)) * 1e6).astype(
        np.int64
    )
    return {
        "ids": plan._units.ids[pos].tolist(),
        "households": plan._units.households[pos].tolist(),
        "x": _delta(micro[:, 0]),
        "y": _delta(micro[:, 1]),
        "rings": ring_start.tolist(),
        "parts": part_start.tolist(),
        "px": _delta(points[:, 0]),
        "py": _delta(points[:, 1]),
    }


def _delta(values: np.ndarray) -> list[int]:
    return np.diff(values, prepend=0).tolist()


def _payload_bytes(editor: PlanEditor) -> int:
    """Bytes of the widget's state as JSON (what opening the widget sends, module included)."""
    state = editor.widget.get_state()
    return len(json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
