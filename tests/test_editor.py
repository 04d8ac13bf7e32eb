"""gridgeo.plan.editor without a browser: the kernel side of the plan editor.

The widget's messages (what a click or a button sends) go through
``PlanEditor._on_msg`` as the browser's would; the state the browser draws
is read from the widget's synced ``state`` trait. Built on the lattice plan
of tests/test_plan.py (two towns × four 3 × 3 grids) and, for the payload,
the demo's 乌拉山镇. tests/test_editor_browser.py clicks the real thing.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gridgeo
from gridgeo.errors import GridgeoError, PlanWarning
from gridgeo.plan import Plan, PlanStore
from gridgeo.plan.editor import PALETTE, PlanEditor, _payload_bytes, edit
from tests.test_plan import _unit_id, lattice_system

ROOT = Path(__file__).resolve().parent.parent
EDITOR = ROOT / "gridgeo" / "plan" / "editor"
NW, NE, SW, SE = (f"150823100{k:03d}" for k in (1, 2, 3, 4))
EDGE_UNIT = _unit_id(0, 2, 5)  # NW grid, east column, top row: borders NE
CUT_UNITS = [_unit_id(0, 1, j) for j in range(3)]  # SW's middle column: cuts SW in two


@pytest.fixture(scope="module")
def lattice() -> Plan:
    return Plan.from_system(lattice_system(), author="tester")


@pytest.fixture
def editor(lattice) -> PlanEditor:
    return edit(lattice, "150823100")


@pytest.fixture(scope="module")
def wulashan() -> PlanEditor:
    return edit(Plan.from_system(gridgeo.load_demo(units=True)), "150823100")


def click(editor: PlanEditor, **content) -> dict:
    """What the browser sends, handled as the widget would; the new state."""
    editor._on_msg(editor.widget, content, [])
    return editor.widget.state


def index_of(editor: PlanEditor, unit: str) -> int:
    return editor.widget.units["ids"].index(unit)


def rows(state: dict) -> dict[str, list[str]]:
    return {r[0]: r for r in state["panel"]["rows"]}


def proper_colouring(editor: PlanEditor) -> bool:
    """No two grids sharing a unit edge have one colour, in the state the browser has."""
    state = editor.widget.state
    assign = np.asarray(state["assign"])
    colour = [g["colour"] for g in state["grids"]]
    i, j = editor._edges
    a, b = assign[i], assign[j]
    cross = a != b
    return all(colour[x] != colour[y] for x, y in zip(a[cross], b[cross], strict=True))


# -- opening ---------------------------------------------------------------------------
def test_gridgeo_imports_without_the_widget_libraries():
    code = (
        "import sys; sys.modules['anywidget'] = None; sys.modules['ipywidgets'] = None\n"
        "import gridgeo, gridgeo.plan, gridgeo.plan.editor\n"
        "from gridgeo.plan import Plan\n"
        "plan = Plan.from_system(gridgeo.load_demo(units=True))\n"
        "try:\n    gridgeo.plan.editor.edit(plan, '150823100')\n"
        "except gridgeo.errors.GridgeoError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert "pip install 'gridgeo[edit]'" in out.stdout


def test_opening_shows_the_district_and_no_personal_data(editor, lattice):
    state = editor.widget.state
    assert editor.widget.units["ids"] == sorted(editor.widget.units["ids"])  # the 36 units
    assert len(state["assign"]) == 36 and len(state["grids"]) == 4
    assert [g["code"] for g in state["grids"]] == [NW, NE, SW, SE]
    assert state["target"] == "" and not state["can_undo"]
    assert state["panel"]["title"].startswith("乌拉山镇（150823100）· 4 个网格")
    text = json.dumps(editor.widget.get_state(), ensure_ascii=False)
    assert "王伟" not in text  # the grid leaders' names never reach the browser
    assert "村0" not in text  # nor the units' villages
    assert set(editor.widget.units) == {"ids", "households", "x", "y", "rings", "parts", "px", "py"}
    assert all(isinstance(v, int) for k in ("x", "y", "px", "py") for v in editor.widget.units[k])


def test_outlines_decode_to_the_units_within_a_micro_degree(editor, lattice):
    units = editor.widget.units
    lon = np.cumsum(units["x"]) / 1e6
    lat = np.cumsum(units["y"]) / 1e6
    rings, parts = units["rings"], units["parts"]
    shapes = []
    for p, q in itertools.pairwise(parts):
        outer, *holes = (
            np.column_stack([lon[a:b], lat[a:b]])
            for a, b in zip(rings[p:q], rings[p + 1 : q + 1], strict=True)
        )
        shapes.append(shapely.Polygon(outer, holes))
    truth = lattice.units.set_index("unit_id").loc[units["ids"]].geometry.to_numpy()
    assert shapely.equals_exact(shapes, truth, tolerance=1e-6, normalize=True).all()
    inside = shapely.points(np.cumsum(units["px"]) / 1e6, np.cumsum(units["py"]) / 1e6)
    assert shapely.contains(truth, inside).all()


def test_wulashan_payload_and_colours(wulashan):
    assert len(wulashan.widget.units["ids"]) == 5170
    size = _payload_bytes(wulashan)
    assert 200_000 < size < 5_000_000, size
    assert proper_colouring(wulashan)
    colours = {g["colour"] for g in wulashan.widget.state["grids"]}
    assert colours <= set(PALETTE) and len(colours) >= 4


def test_arguments_are_checked(lattice):
    with pytest.raises(GridgeoError, match="not a town of this plan"):
        edit(lattice, "150823199")
    with pytest.raises(GridgeoError, match="lang='fr'"):
        edit(lattice, lang="fr")
    with pytest.raises(GridgeoError, match="neither one of"):
        edit(lattice, tiles="nowhere")
    assert edit(lattice, "乌拉山镇")._districts == ["150823100"]  # by name
    both = edit(lattice, tiles="osm", lang="en")
    assert len(both.widget.state["assign"]) == 72
    assert both.widget.tiles["url"].startswith("https://tile.openstreetmap.org/")
    assert edit(lattice).widget.tiles == {}  # no base map: nothing to fetch


# -- edits -----------------------------------------------------------------------------
def test_a_click_moves_the_unit_and_the_panel_shows_both_grids(editor, lattice):
    before = lattice.households_of([NW, NE])
    hh = int(lattice.units.set_index("unit_id").loc[EDGE_UNIT, "households"])
    click(editor, op="target", code=NE)
    state = click(editor, op="move", units=[index_of(editor, EDGE_UNIT)], to=NE)
    assert editor.plan.households_of([NW, NE]) == {NW: before[NW] - hh, NE: before[NE] + hh}
    assert lattice.households_of([NW, NE]) == before  # the plan handed in is unchanged
    shown = rows(state)
    assert shown[NE][2:4] == [str(before[NE] + hh), f"+{hh}"]
    assert shown[NW][2:4] == [str(before[NW] - hh), f"-{hh}"]
    assert shown[NE][5:7] == ["3", f"{(before[NE] + hh) / 3:.0f}"]  # workers, per worker
    assert state["panel"]["message"]["kind"] == "ok"
    assert state["panel"]["message"]["text"] == f"已将 1 个单元（{hh} 户）划入网格 {NE}。"
    assert state["grids"][state["assign"][index_of(editor, EDGE_UNIT)]]["code"] == NE
    assert state["can_undo"] and proper_colouring(editor)


def test_deviation_is_from_the_norm_window_centre(editor, lattice):
    state = click(editor, op="target", code=SW)
    hh = lattice.households_of([SW])[SW]
    # the lattice grids are urban comprehensive: 300–500 households, centre 400
    assert rows(state)[SW][7] == f"{hh / 400 - 1:+.0%}"


def test_refused_moves_leave_the_plan_and_say_why(editor, lattice):
    click(editor, op="target", code=SE)
    state = click(editor, op="move", units=[index_of(editor, u) for u in CUT_UNITS], to=SE)
    assert editor.plan is lattice
    message = state["panel"]["message"]
    assert message["kind"] == "refused"
    assert message["text"].startswith("未执行：网格 150823100003 会被分成互不相连的几块")
    assert "fall apart" in message["detail"]  # the model's own words, numbers included
    # into a locked grid
    click(editor, op="lock", code=SE)
    assert editor.plan.grid_table.loc[SE, "locked"]
    state = click(editor, op="move", units=[index_of(editor, _unit_id(0, 2, 0))], to=SE)
    assert (
        state["panel"]["message"]["text"]
        == "未执行：网格 150823100004 已锁定，先解锁，或不要改动它。"
    )
    assert state["target_locked"] and len(editor.plan.steps) == 1  # the lock only


def test_english_refusals_are_the_model_messages(lattice):
    editor = edit(lattice, "150823100", lang="en")
    assert editor.move(CUT_UNITS, to=SE) is False
    assert editor.message.startswith("Refused: grid 150823100003 would fall apart into 2 pieces")
    assert editor.move([EDGE_UNIT]) is False
    assert editor.message.startswith("Choose a target grid first")


def test_undo_redo_split_merge(editor, lattice):
    editor.target = NW
    assert editor.split() and len(editor.plan.grid_table) == len(lattice.grid_table) + 1
    new = editor.plan.steps[-1].touched
    assert set(new) == {NW, "150823100005"} and editor.target == NW
    state = editor.widget.state
    assert rows(state)["150823100005"][3] == "新"
    assert len(state["grids"]) == 5 and proper_colouring(editor)
    assert editor.undo() and editor.plan.grid_table.index.equals(lattice.grid_table.index)
    assert rows(editor.widget.state)["150823100005"][3] == "已不存在"
    assert editor.widget.state["can_redo"]
    assert editor.redo() and len(editor.widget.state["grids"]) == 5
    assert editor.message == "已重做：拆分。"
    # merge with a neighbour picked from the list the panel offers
    editor.target = SW
    assert SE in editor.widget.state["neighbours"]
    click(editor, op="merge", code=SW, other=SE)
    assert SE not in editor.plan.grid_table.index and editor.target == SW
    assert editor.plan.steps[-1].op == "merge" and proper_colouring(editor)
    assert editor.message == f"已将网格 {SE} 并入 {SW}。"
    assert rows(editor.widget.state)[SE][3] == "已不存在"


def test_a_click_on_the_target_changes_nothing(editor):
    editor.target = NW
    steps = len(editor.plan.steps)
    assert editor.move([EDGE_UNIT]) is False
    assert len(editor.plan.steps) == steps and "未作改动" in editor.message


def test_norm_warnings_are_the_models(lattice):
    editor = edit(lattice, "150823100", lang="en")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlanWarning)  # the editor must not emit them
        assert editor.merge(SE, code=SW)
    codes = [c for c in editor._touched if c in editor.plan.grid_table.index]
    shown = editor.widget.state["panel"]["warnings"]
    assert shown and shown == editor.plan.norm_warnings(codes)
    zh = edit(lattice, "150823100")
    zh.merge(SE, code=SW)
    hh = zh.plan.households_of([SW])[SW]
    assert zh.widget.state["panel"]["warnings"] == [
        f"网格 {SW}：{hh} 户，高于“urban comprehensive”规范 300–500 户。"
    ]


def test_save_goes_through_the_plan_store(editor, tmp_path):
    editor.target = NE
    editor.move([EDGE_UNIT])
    store = PlanStore(tmp_path / "plans.gpkg")
    assert editor.save(store, "NE takes a block", "planner A") == "v1"
    assert store.load().households_of([NE]) == editor.plan.households_of([NE])
    editor.undo()
    assert editor.save(store, "back again", "planner A") == "v2"  # on v1, the editor's last
    assert store.log()["parent"].tolist() == [None, "v1"]
    assert editor.message == "已保存为版本 v2。"
    store.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 35), st.integers(0, 3), st.booleans()), max_size=8))
def test_the_browser_state_always_matches_the_plan(lattice, edits):
    """Any mix of moves and undos: the state's assignment is the plan's, colours stay proper."""
    editor = edit(lattice, "150823100", lang="en")
    codes = [NW, NE, SW, SE]
    for unit, grid, undo in edits:
        if undo and editor.plan.steps:
            editor.undo()
        else:
            editor._on_msg(editor.widget, {"op": "move", "units": [unit], "to": codes[grid]}, [])
        state = editor.widget.state
        shown = [state["grids"][k]["code"] for k in state["assign"]]
        assert shown == editor.plan.workload[editor._pos].tolist()
        assert proper_colouring(editor)


def test_names_reach_the_browser_as_text_only():
    script = (EDITOR / "editor.js").read_text(encoding="utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)
    assert "textContent" in script
    # no address of the outside world in what the widget ships, outside comments
    # (but Leaflet's attribution link, not shown without tiles, and the SVG namespace)
    from gridgeo.plan.editor import _module_text, _style_text

    shipped = re.sub(r"/\*.*?\*/", "", _module_text() + _style_text(), flags=re.DOTALL)
    assert not re.search(r"https?://(?!leafletjs\.com|www\.w3\.org/)", shipped)
