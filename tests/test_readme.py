"""The README's snippets run as written.

Every ```python block and every ```bash line that starts with ``gridgeo `` runs,
in the README's order, in one temporary folder laid out like a fresh clone
(``data/`` copied) after ``gridgeo demo`` has written ``outputs/`` there — the
README's own first step. Python blocks share one namespace, as in a notebook.
Commands run through the console script in a shell (redirections work) and
must exit with the code a ``# exit N`` comment gives, 0 otherwise, without a
traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # where pip put the `gridgeo` console script
FENCE = re.compile(r"^```(\w*)\s*$")
EXIT = re.compile(r"#\s*exit\s+(\d+)")
NOWHERE = re.compile(r"(?<![\w/.])(?:hh\.csv|ev\.csv|grids\.gpkg|households\.csv|app_points\.xlsx)")


@dataclass(frozen=True)
class Step:
    line: int  # 1-based line of the README where the snippet starts
    kind: str  # "python" or "bash"
    text: str

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.kind}"


def readme_steps(text: str) -> list[Step]:
    """The runnable snippets of a README, in order.

    >>> readme_steps("```bash\\npip install x\\ngridgeo info d  # exit 2\\n```\\n```python\\nx = 1\\n```")
    [Step(line=3, kind='bash', text='gridgeo info d  # exit 2'), Step(line=6, kind='python', text='x = 1\\n')]
    """
    steps, block, start, lines = [], None, 0, text.splitlines()
    for number, line in enumerate(lines, start=1):
        fence = FENCE.match(line)
        if fence and block is None:
            block, start, body = fence.group(1), number + 1, []
        elif line.strip() == "```" and block is not None:
            if block == "python":
                steps.append(Step(start, "python", "\n".join(body) + "\n"))
            block = None
        elif block == "python":
            body.append(line)
        elif block == "bash" and line.startswith("gridgeo "):
            steps.append(Step(number, "bash", line))
    return steps


STEPS = readme_steps(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A fresh clone's layout: data/ (copied), and outputs/ from `gridgeo demo`."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "data", work / "data", ignore=shutil.ignore_patterns("cache"))
    result = _shell("gridgeo demo --out outputs", work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work


@pytest.fixture(scope="module")
def namespace(workdir) -> dict:
    return {"__name__": "__readme__"}


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        COLUMNS="200",
        PYTHONIOENCODING="utf-8",
        MPLBACKEND="Agg",
    )
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_the_readme_has_runnable_snippets():
    kinds = [s.kind for s in STEPS]
    assert kinds.count("python") >= 4 and kinds.count("bash") >= 6
    assert any(s.text.startswith("gridgeo assign outputs/households.csv") for s in STEPS)
    # Files the README once named but nothing writes (outputs/households.csv is written).
    text = README.read_text(encoding="utf-8")
    assert not NOWHERE.findall(text)
    assert "pip install -e '.[notebooks]'" in text


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_readme_snippet_runs(step, workdir, namespace, monkeypatch):
    monkeypatch.chdir(workdir)
    if step.kind == "python":
        code = compile(step.text, f"README.md:{step.line}", "exec")
        try:
            exec(code, namespace)
        except Exception:
            pytest.fail(f"README.md line {step.line}:\n{traceback.format_exc(limit=-3)}")
        return
    expected = EXIT.search(step.text)
    result = _shell(step.text, workdir)
    message = f"README.md line {step.line}: {step.text}\n{result.stdout[-2000:]}\n{result.stderr}"
    assert result.returncode == (int(expected.group(1)) if expected else 0), message
    assert "Traceback" not in result.stderr, message
