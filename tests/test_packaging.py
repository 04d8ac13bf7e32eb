"""The built wheel: it carries the demo data and the static assets, and works installed.

The wheel is built once per module from a copy of the working tree (building
in place would write ``build/`` into the checkout), offline with this
environment's setuptools, and installed with ``--no-deps`` into a fresh venv
that sees this environment's packages — the same wheel ``pip install gridgeo``
would get, without the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Assets another module may add: every one of them must ship (pyproject package-data).
PROBE_ASSETS = ("_probe_assets/leaflet/probe.js", "_probe_assets/probe.css", "probe.json")


def _run(*args: str | Path, cwd: Path | None = None, timeout: float = 120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(COLUMNS="200", PYTHONIOENCODING="utf-8", PIP_NO_INPUT="1")
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _source_copy(target: Path) -> Path:
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "cache", "*.egg-info")
    for folder in ("gridgeo", "data"):
        shutil.copytree(ROOT / folder, target / folder, ignore=junk)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    for asset in PROBE_ASSETS:
        path = target / "gridgeo" / asset
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("/* probe */\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return _source_copy(tmp_path_factory.mktemp("source") / "gridgeo-src")


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", dist, source)  # fmt: skip
    (found,) = dist.glob("gridgeo-*.whl")
    return found


def _venv(folder: Path, *install: str | Path) -> Path:
    """A fresh venv holding only gridgeo; its dependencies come from this environment."""
    _run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", folder)
    _run(sys.executable, "-m", "pip", "--python", folder / "bin" / "python", "install",
         "--no-deps", "--no-index", "--no-build-isolation", "-q", *install)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    return _venv(tmp_path_factory.mktemp("venv") / "env", wheel)


def _wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_wheel_ships_every_committed_demo_file(wheel):
    names = _wheel_names(wheel)
    committed = {
        p.relative_to(ROOT / "data").as_posix()
        for p in (ROOT / "data").rglob("*")
        if p.is_file() and "cache" not in p.relative_to(ROOT / "data").parts
    }
    assert {"shapefiles/grid.shp", "dirty/urad_front_dirty.gpkg", "dual_grid_truth.geojson"} <= (
        committed
    )
    assert {f"gridgeo/data/{name}" for name in committed} <= names
    # The data live inside the package only: nothing lands at site-packages' top level.
    assert {n.split("/")[0] for n in names} == {
        "gridgeo",
        wheel.name.rsplit("-", 3)[0] + ".dist-info",
    }


def test_wheel_ships_static_assets_under_the_package(wheel):
    names = _wheel_names(wheel)
    assert {f"gridgeo/{asset}" for asset in PROBE_ASSETS} <= names
    shipped = {
        p.relative_to(ROOT).as_posix()
        for suffix in ("*.js", "*.css", "*.json")
        for p in (ROOT / "gridgeo").rglob(suffix)
    }
    assert shipped <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_installed_wheel_reads_its_own_data(venv, tmp_path):
    code = (
        "import gridgeo, gridgeo.demo as d; "
        "print(gridgeo.__file__); print(d.DATA_DIR); print(gridgeo.load_demo().counts())"
    )
    out = _run(venv / "bin" / "python", "-c", code, cwd=tmp_path).stdout.splitlines()
    package, data_dir, counts = out[-3:]
    site = (venv / "lib").resolve()
    assert Path(package).resolve().is_relative_to(site)  # not the checkout
    assert Path(data_dir).resolve() == Path(package).resolve().parent / "data"
    assert counts == str({"banner": 1, "town": 11, "grid": 662, "micro_grid": 897})


def test_editable_install_reads_the_top_level_data_folder(source, tmp_path):
    env = _venv(tmp_path / "env", "-e", source)
    code = "import gridgeo.demo as d; print(d.DATA_DIR); print(d.load_demo().counts()['grid'])"
    data_dir, grids = _run(env / "bin" / "python", "-c", code, cwd=tmp_path).stdout.split()[-2:]
    assert Path(data_dir) == source / "data"  # where users look, and --regenerate writes
    assert grids == "662"


def test_gridgeo_demo_runs_from_the_installed_wheel(venv, tmp_path):
    work = tmp_path / "elsewhere"  # outside the checkout: nothing to find by accident
    work.mkdir()
    result = _run(venv / "bin" / "gridgeo", "demo", "--out", work / "out", cwd=work, timeout=180)
    assert "662" in result.stdout
    summary = json.loads((work / "out" / "demo_summary.json").read_text(encoding="utf-8"))
    assert summary["levels"] == {"banner": 1, "town": 11, "grid": 662, "micro_grid": 897}
    assert summary["check"]["dirty"]["ok"] is False  # the dirty variant shipped too
    assert sorted(p.name for p in work.iterdir()) == ["out"]


def test_a_checkout_reads_and_regenerates_the_top_level_data_folder():
    # Editable installs and plain checkouts: users find the data in data/, and
    # `gridgeo demo --regenerate` (whose default --data-dir is DATA_DIR) writes there.
    from gridgeo.cli import build_parser
    from gridgeo.demo import DATA_DIR, DIRTY_PATH

    assert DATA_DIR == ROOT / "data"
    assert DIRTY_PATH == ROOT / "data" / "dirty" / "urad_front_dirty.gpkg"
    assert build_parser().parse_args(["demo", "--regenerate"]).data_dir in (None, DATA_DIR)


# -- the test harness ----------------------------------------------------------------
def test_the_suite_runs_every_docstring_example():
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pytest_options = options["tool"]["pytest"]["ini_options"]
    assert "gridgeo" in pytest_options["testpaths"]
    # No --doctest-modules on the command line: the configuration alone collects them.
    collected = _run(sys.executable, "-m", "pytest", "--collect-only", "-q",
                     "-p", "no:cacheprovider", "gridgeo/__init__.py", "gridgeo/demo/files.py",
                     cwd=ROOT).stdout  # fmt: skip
    assert "gridgeo/__init__.py::gridgeo.load_demo" in collected
    assert "gridgeo/demo/files.py::gridgeo.demo.files.load_demo" in collected


def test_doctests_write_into_a_temporary_folder(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(ROOT / "conftest.py", project / "conftest.py")
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (project / "writer.py").write_text(
        '"""\n>>> from pathlib import Path\n'
        '>>> Path("out").mkdir(); Path("out/banner.gpkg").write_text("x")\n1\n"""\n',
        encoding="utf-8",
    )
    result = _run(sys.executable, "-m", "pytest", "--doctest-modules", "-q",
                  "-p", "no:cacheprovider", cwd=project)  # fmt: skip
    assert "1 passed" in result.stdout
    assert not (project / "out").exists()


def test_ci_runs_the_readme_test_command_and_ends_with_the_pytest_summary(tmp_path):
    # A copy of the checkout's scripts around two tiny tests; pip and apt are recorded,
    # not run (the real install is what the scripts do on CI), pytest runs for real.
    repo = tmp_path / "repo"
    for script in (".ci/run", "scripts/test.sh"):
        (repo / script).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / script, repo / script)
    (repo / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (repo / "test_tiny.py").write_text(
        "import os\n\ndef test_ok():\n    pass\n\n"
        "def test_fails_on_request():\n    assert not os.environ.get('FAIL')\n",
        encoding="utf-8",
    )
    shims, log = tmp_path / "bin", tmp_path / "calls.log"
    shims.mkdir()
    shim = f'#!/bin/sh\necho "$(basename "$0") $*" >> {log}\n'
    (shims / "python3").write_text(
        shim + f'[ "$1 $2" = "-m pytest" ] && exec {sys.executable} "$@"\nexit 0\n'
    )
    for name in ("apt-get", "sudo", "dpkg-query"):
        (shims / name).write_text(shim + "exit 0\n")
    for path in shims.iterdir():
        path.chmod(0o755)
    env = {"PATH": f"{shims}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}

    def ci(**extra):
        return subprocess.run(
            ["bash", ".ci/run", "-q", "-p", "no:cacheprovider"],
            cwd=repo, env={**env, **extra}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    first, second = ci(), ci()
    assert first.returncode == second.returncode == 0, first.stdout + first.stderr
    for run in (first, second):
        assert re.fullmatch(r"2 passed in [\d.]+s", run.stdout.strip().splitlines()[-1])
    calls = log.read_text().splitlines()
    installs = [c for c in calls if " pip install " in c]
    assert len(installs) == 2 and all("-e .[test]" in c for c in installs)
    failing = ci(FAIL="1")
    assert failing.returncode == 1
    assert re.fullmatch(r"1 failed, 1 passed in [\d.]+s", failing.stdout.strip().splitlines()[-1])
