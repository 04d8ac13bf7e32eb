"""The plan editor in a real JupyterLab, driven in Debian's headless Chromium.

One JupyterLab server per session, on 127.0.0.1 with a token the test passes,
its configuration, data, runtime, settings and workspaces in temporary
folders (nothing of the user's leaks in). The page opens a notebook that
builds the editor on the demo's 乌拉山镇 (150823100); Playwright runs it,
clicks units on the map and buttons in the panel, and reads the plan back
from the same kernel. Every request that is not for 127.0.0.1 is aborted and
recorded: the editor needs none.

The screenshot goes to pytest's temporary folder and is copied to
``outputs/editor.png`` (ignored by git) for people to look at;
``benchmarks/bench_editor.py`` writes the one kept in
``benchmarks/results/editor.png``.
:mod:`benchmarks.bench_editor` reuses :class:`Lab` and :class:`Editor` to
print the latency and payload numbers.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page

from gridgeo.io.atomic import write_bytes

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1600, "height": 1000}
DISTRICT = "150823100"  # 乌拉山镇
EVIL = '<img src=x onerror="window.__ggXss=1">幸福里{#3}'  # a grid name that must stay text
SCREENSHOT = ROOT / "outputs" / "editor.png"  # git-ignored: for people to look at

# The notebook the page opens: the editor on Wulashan, one grid renamed with markup.
SETUP = f"""\
import json
import gridgeo
from gridgeo.plan import Plan
from gridgeo.plan.editor import edit, _payload_bytes

plan = Plan.from_system(gridgeo.load_demo(units=True))
plan = plan.set("{DISTRICT}003", name={EVIL!r}, by="test")
editor = edit(plan, "{DISTRICT}")
editor"""

# Units to click, chosen in the kernel from the unit graph: border units of a
# grid A next to a grid B whose move both ways is allowed (``free``), largest
# first so that they are good click targets with the whole district in view;
# and a cut vertex of its grid, whose move would disconnect it (``cut``).
PICK = """\
def _pick():
    import networkx as nx
    p, (i, j) = editor.plan, editor._edges
    u, pos = p._units, editor._pos
    gi, gj = pos[i], pos[j]
    w = p.workload
    cross = (w[gi] != w[gj]) & ~p.grid_table.locked.reindex(w[gj]).to_numpy(bool)
    cross &= u.households[gi] > 0  # a move that changes the numbers
    pairs = sorted(set(zip(gi[cross].tolist(), w[gj][cross].tolist())), key=lambda t: -u.area[t[0]])
    free, cut = [], None
    for k, b in pairs:
        uid, a = str(u.ids[k]), str(w[k])
        if len(free) < 12:
            try:
                p.move([uid], to=b).move([uid], to=a)
                free.append((uid, a, b))
            except gridgeo.errors.PlanError:
                pass
        if cut is None and k in set(nx.articulation_points(u.graph.subgraph(
                (w == a).nonzero()[0].tolist()))):
            try:
                p.move([uid], to=b)
            except gridgeo.errors.PlanError as e:
                if e.rule == "contiguity":
                    cut = (uid, a, b)
        if len(free) >= 12 and cut:
            break
    return {"free": free, "cut": cut}
print(json.dumps(_pick()))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server of our own: temp root and Jupyter folders, a token, loopback only."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.root = folder / "root"
        self.root.mkdir(parents=True)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
        for name in ("config", "data", "runtime", "settings", "workspaces", "ipython"):
            (folder / name).mkdir()
        env.update(
            JUPYTER_CONFIG_DIR=str(folder / "config"),
            JUPYTER_DATA_DIR=str(folder / "data"),
            JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(folder / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(folder / "workspaces"),
            IPYTHONDIR=str(folder / "ipython"),
            MPLBACKEND="Agg",
        )
        # Every cell's DOM stays in place (no windowing), no news or update checks.
        settings = folder / "settings" / "@jupyterlab"
        for plugin, values in (
            ("notebook-extension/tracker", {"windowingMode": "none"}),
            ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
        ):
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        self.log = (folder / "lab.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                "--ServerApp.port_retries=0",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",  # no PyPI look-ups
                *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
            ],
            env=env,
            cwd=self.root,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {self.logged()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not start in {timeout} s: {self.logged()}")

    def logged(self) -> str:
        self.log.flush()
        return (self.folder / "lab.log").read_text(errors="replace")[-3000:]

    def notebook(self, name: str, *cells: str) -> str:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(nb, self.root / name)
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Editor:
    """The notebook page with the editor: run it, click, read the panel and the kernel."""

    def __init__(self, page: Page, url: str):
        self.page = page
        self.external: list[str] = []
        self.ws_frames: list[tuple[float, int]] = []
        self.page_errors: list[str] = []
        page.route("**/*", self._route)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("websocket", self._websocket)
        page.goto(url, wait_until="load")
        # The app, the open notebook and its kernel, all ready.
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
            timeout=60_000,
        )
        page.evaluate(
            "async () => { const w = window.jupyterapp.shell.currentWidget;"
            " await w.context.ready; await w.sessionContext.ready; }"
        )

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def _websocket(self, ws) -> None:
        def frame(payload) -> None:
            size = len(payload.encode("utf-8") if isinstance(payload, str) else payload)
            self.ws_frames.append((time.monotonic(), size))

        ws.on("framereceived", frame)

    def run_all(self, timeout: float = 120_000) -> int:
        """Run every cell; the bytes the kernel's websocket brought until the editor showed."""
        start = time.monotonic()
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.page.wait_for_selector(".gridgeo-editor[data-seq]", timeout=timeout)
        self.page.wait_for_function(
            "() => document.querySelectorAll('.gridgeo-editor-map path.leaflet-interactive').length > 5000",
            timeout=timeout,
        )
        end = time.monotonic()
        return sum(size for t, size in self.ws_frames if start <= t <= end)

    def kernel(self, code: str) -> str:
        """Run ``code`` in the notebook's kernel (not in a cell); its stdout."""
        return self.page.evaluate(
            """async (code) => {
                const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                const future = kernel.requestExecute({ code, store_history: false });
                let out = "", error = null;
                future.onIOPub = (msg) => {
                    if (msg.header.msg_type === "stream") out += msg.content.text;
                    if (msg.header.msg_type === "error") error = msg.content.evalue;
                };
                await future.done;
                if (error) throw new Error(error);
                return out;
            }""",
            code,
        )

    def data(self, code: str):
        return json.loads(self.kernel(f"print(json.dumps({code}))"))

    def households(self, *codes: str) -> dict[str, int]:
        return self.data(f"editor.plan.households_of({list(codes)!r})")

    def seq(self) -> int:
        return int(self.page.get_attribute(".gridgeo-editor", "data-seq"))

    def wait_seq(self, after: int) -> None:
        self.page.wait_for_function(
            "n => Number(document.querySelector('.gridgeo-editor').dataset.seq) > n",
            arg=after,
            timeout=10_000,
        )

    def show_all(self) -> None:
        """Frame the whole district, as the editor opens."""
        self.page.evaluate(
            """() => { const g = document.querySelector('.gridgeo-editor').gridgeo;
                       g.map.invalidateSize({animate: false});
                       g.map.fitBounds(g.bounds, {animate: false, padding: [8, 8]}); }"""
        )

    def unit_xy(self, unit: str) -> tuple[float, float] | None:
        """Where to click ``unit`` on the page (``None``: another path is on top there)."""
        return self.page.evaluate(
            """(id) => { const root = document.querySelector('.gridgeo-editor'), g = root.gridgeo;
                const i = g.unitIndex(id), p = g.map.latLngToContainerPoint(g.unitPoint(i));
                const r = g.map.getContainer().getBoundingClientRect();
                const x = r.left + p.x, y = r.top + p.y;
                return document.elementFromPoint(x, y) === g.layer(i)._path ? [x, y] : null; }""",
            unit,
        )

    def click_unit(self, unit: str, modifiers: list[str] | None = None) -> float:
        """Click ``unit`` with the real mouse; ms from the click until the panel changed."""
        self.page.locator(".gridgeo-editor").scroll_into_view_if_needed()
        xy = self.unit_xy(unit)
        assert xy, f"unit {unit} is not the topmost path at its own point"
        self.page.evaluate(
            """() => { const panel = document.querySelector('.gridgeo-editor-panel');
                window.__ggLatency = new Promise((resolve) => {
                    let t0 = null;
                    document.addEventListener('click', () => { t0 = performance.now(); },
                                              { capture: true, once: true });
                    const seen = new MutationObserver(() => {
                        if (t0 === null) return;
                        seen.disconnect();
                        requestAnimationFrame(() => resolve(performance.now() - t0));
                    });
                    seen.observe(panel, { childList: true, subtree: true, characterData: true });
                }); }"""
        )
        for key in modifiers or []:
            self.page.keyboard.down(key)
        self.page.mouse.click(*xy)
        for key in modifiers or []:
            self.page.keyboard.up(key)
        return self.page.evaluate("() => window.__ggLatency")

    def panel(self) -> str:
        return self.page.inner_text(".gridgeo-editor-panel")

    def row(self, code: str) -> list[str]:
        return self.page.eval_on_selector(
            f'.gridgeo-editor-table tr[data-code="{code}"]',
            "tr => [...tr.children].map(td => td.textContent)",
        )

    def choose_target(self, code: str) -> None:
        seq = self.seq()
        self.page.select_option(".gridgeo-editor-target", code)
        self.wait_seq(seq)

    def press(self, name: str) -> None:
        seq = self.seq()
        self.page.click(f".gridgeo-editor-{name}")
        self.wait_seq(seq)


# -- fixtures ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def editor(lab, browser):
    """The editor notebook run in a page of the session's one Chromium (conftest.browser)."""
    url = lab.notebook("editor.ipynb", SETUP)
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    view = Editor(page, url)
    view.payload = view.run_all()
    view.picks = json.loads(view.kernel(PICK))
    yield view
    context.close()


# -- tests ---------------------------------------------------------------------------
def test_opens_offline_with_its_payload(editor):
    assert editor.external == []
    assert editor.page_errors == []
    paths = editor.page.locator(".gridgeo-editor-map path.leaflet-interactive").count()
    assert paths == editor.data("len(editor._pos)") == 5170
    # what the websocket brought while the cell ran, and the widget's own state
    assert editor.payload < 5_000_000
    assert 100_000 < editor.data("_payload_bytes(editor)") < 5_000_000
    assert "乌拉山镇" in editor.panel()
    assert editor.page.locator(".gridgeo-editor-message").inner_text() == ""


def test_names_are_text_not_markup(editor):
    editor.choose_target(f"{DISTRICT}003")
    assert EVIL in editor.page.inner_text(".gridgeo-editor-target-line")
    assert editor.page.evaluate("() => window.__ggXss") is None
    assert editor.page.locator(".gridgeo-editor img").count() == 0


def test_click_moves_a_unit_in_the_kernel_and_the_panel(editor):
    unit, a, b = editor.picks["free"][0]
    before = editor.households(a, b)
    moved = editor.data(
        f"int(editor.plan._units.households[editor.plan._units.position[{unit!r}]])"
    )
    editor.choose_target(b)
    editor.show_all()
    seq = editor.seq()
    editor.click_unit(unit)
    editor.wait_seq(seq)
    after = editor.households(a, b)
    assert after == {a: before[a] - moved, b: before[b] + moved}
    assert editor.data(f"editor.plan.units.set_index('unit_id').loc[{unit!r}].iloc[1]") == b
    assert editor.row(b)[2:4] == [str(after[b]), f"+{moved}"]
    assert editor.row(a)[2:4] == [str(after[a]), f"-{moved}"]
    assert editor.page.get_attribute(".gridgeo-editor-message", "data-kind") == "ok"
    # undo restores the plan and the panel
    editor.press("undo")
    assert editor.households(a, b) == before
    assert editor.row(b)[2] == str(before[b])
    assert "已撤销" in editor.panel()


def test_refused_moves_leave_the_plan_and_say_why(editor):
    unit, a, b = editor.picks["cut"]
    before = editor.data("editor.plan.workload.tolist()")
    steps = editor.data("len(editor.plan.steps)")
    editor.choose_target(b)
    editor.page.evaluate(
        """(id) => { const g = document.querySelector('.gridgeo-editor').gridgeo;
                     g.map.setView(g.unitPoint(g.unitIndex(id)), 16, {animate: false}); }""",
        unit,
    )
    seq = editor.seq()
    editor.click_unit(unit)
    editor.wait_seq(seq)
    message = editor.page.locator(".gridgeo-editor-message")
    assert message.get_attribute("data-kind") == "refused"
    assert "不相连" in message.inner_text() and a in message.inner_text()
    assert "fall apart" in editor.page.inner_text(".gridgeo-editor-detail")
    assert editor.data("editor.plan.workload.tolist()") == before
    assert editor.data("len(editor.plan.steps)") == steps
    # a locked target refuses too, and says so
    free, a2, b2 = editor.picks["free"][1]
    editor.choose_target(b2)
    editor.press("lock")
    assert editor.data(f"bool(editor.plan.grid_table.loc[{b2!r}, 'locked'])") is True
    seq = editor.seq()
    editor.show_all()
    editor.click_unit(free)
    editor.wait_seq(seq)
    assert "已锁定" in message.inner_text()
    assert editor.data(f"editor.plan.households_of([{a2!r}])") == editor.households(a2)
    assert editor.data("editor.plan.workload.tolist()") == before
    editor.press("undo")  # the lock
    assert editor.data(f"bool(editor.plan.grid_table.loc[{b2!r}, 'locked'])") is False


def test_ctrl_click_picks_the_target_and_shift_drag_moves_a_box(editor):
    unit, a, b = editor.picks["free"][2]
    other = editor.data(f"editor.plan.border_units({b!r}, {a!r})")[0]
    editor.choose_target(a)
    editor.page.evaluate(
        """(id) => { const g = document.querySelector('.gridgeo-editor').gridgeo;
                     g.map.setView(g.unitPoint(g.unitIndex(id)), 16, {animate: false}); }""",
        other,
    )
    seq = editor.seq()
    editor.click_unit(other, modifiers=["Control"])  # a unit of b: b becomes the target
    editor.wait_seq(seq)
    assert editor.data("editor.target") == b
    assert editor.page.input_value(".gridgeo-editor-target") == b
    before = editor.households(a, b)
    steps = editor.data("len(editor.plan.steps)")
    # Shift+drag a small box around the unit's own point
    editor.page.evaluate(
        """(id) => { const g = document.querySelector('.gridgeo-editor').gridgeo;
                     g.map.setView(g.unitPoint(g.unitIndex(id)), 17, {animate: false}); }""",
        unit,
    )
    x, y = editor.unit_xy(unit)
    seq = editor.seq()
    editor.page.keyboard.down("Shift")
    editor.page.mouse.move(x - 3, y - 3)
    editor.page.mouse.down()
    editor.page.mouse.move(x + 3, y + 3, steps=3)
    editor.page.mouse.up()
    editor.page.keyboard.up("Shift")
    editor.wait_seq(seq)
    assert editor.data(f"editor.plan.workload[editor.plan._units.position[{unit!r}]]") == b
    step = editor.data("editor.plan.steps[-1].to_dict()")
    assert step["op"] == "move" and unit in step["params"]["units"]
    assert editor.data("len(editor.plan.steps)") == steps + 1
    assert editor.households(a, b)[b] > before[b]
    editor.press("undo")
    assert editor.households(a, b) == before


def test_click_to_panel_latency_and_screenshot(editor, tmp_path):
    editor.show_all()
    latencies = []
    chosen = None
    for unit, a, b in editor.picks["free"]:
        if editor.unit_xy(unit):
            chosen = (unit, a, b)
            break
    assert chosen, "no candidate unit is clickable with the whole district in view"
    unit, a, b = chosen
    start = editor.households(a, b)
    for k in range(6):
        to = b if k % 2 == 0 else a
        editor.choose_target(to)
        seq = editor.seq()
        latencies.append(editor.click_unit(unit))
        editor.wait_seq(seq)
        owner = editor.data(f"editor.plan.workload[editor.plan._units.position[{unit!r}]]")
        assert owner == to
    assert editor.households(a, b) == start
    median = statistics.median(latencies)
    print(f"click → panel: median {median:.0f} ms over {len(latencies)} clicks {latencies}")
    assert median < 300
    shot = tmp_path / "editor.png"
    editor.page.locator(".gridgeo-editor").screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    write_bytes(shot.read_bytes(), SCREENSHOT)
    assert editor.external == [] and editor.page_errors == []  # after every click too
