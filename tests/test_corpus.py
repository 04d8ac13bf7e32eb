"""The broken-input corpus of issue 8 (``tests/corpus/``), through every command.

Each case of ``tests/corpus/cases/`` (built by ``tests/corpus/build.py``) runs
through the commands its ``case.json`` lists (``info``, ``check``, ``assign``,
``map``) with :func:`gridgeo.cli.main`, in process. Every run must:

- end with the expected exit code (0, 1 for defects found by ``check``, 2 for a
  named error) or the documented per-row statuses, and print the words the
  case requires (the file, layer, row or code, and what to do);
- raise nothing but ``SystemExit`` out of ``main`` and print no traceback;
- write nothing when it fails (no output, no temporary file) and leave no
  hidden temporary file when it succeeds;
- leave every input byte-identical (the corpus is copied once per session and
  hashed; any change fails the run that made it);
- name command-line flags (``--lon``), never Python keywords (``lon='…'``).

The 2 GiB inputs (sparse, generated at test time) run with the process's
address space capped at its current size plus 1 GiB, so a reader that loads
them whole fails with a ``MemoryError`` instead of taking the machine down. A few representative cases
also run through the installed ``gridgeo`` console script, to see that no
traceback reaches stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import importlib.util
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from gridgeo.cli import main

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES_DIR = CORPUS / "cases"
VALID = "01_valid_system"

_loader = importlib.util.spec_from_file_location("corpus_build", CORPUS / "build.py")
build = importlib.util.module_from_spec(_loader)
_loader.loader.exec_module(build)

# Something to do: every error message says what to do about it.
HINT = re.compile(
    r"\b(fix|replace|add|pass|use|delete|remove|check|export|save|set|rename|give|write|"
    r"choose|convert|reproject|repair|restore|copy|open|create|name|run|keep|list|need|needs|"
    r"must|should)\b",
    re.I,
)
# Python keyword arguments as hints: the CLI must name its flags instead.
PYTHON_KEYWORD = re.compile(
    r"(?<![\w\-.])(lon|lat|crs|encoding|tiles_key|tiles_crs|coords|layer|layers|sheet|strict|"
    r"field_names|on_overlap|gap_tolerance|language)=['\"\w]"
)
MAX_OUTPUT = 100_000  # characters of stdout + stderr (a 10 MB header once printed 42 MB)
HEADROOM = 1024**3  # address space a run on a 2 GiB input may add
BIG_FILE = 50 * 1024**2  # hashed by size, mtime and both ends (the sparse inputs)


def _load_cases() -> list[dict]:
    cases = []
    for folder in sorted(CASES_DIR.iterdir()):
        if (folder / "case.json").is_file():
            cases.append(json.loads((folder / "case.json").read_text(encoding="utf-8")))
    return cases


CASES = _load_cases()
RUNS = [
    pytest.param(spec["name"], command, id=f"{spec['name']}-{command}")
    for spec in CASES
    if not spec.get("large")
    for command in spec["commands"]
]
LARGE_RUNS = [
    pytest.param(spec["name"], command, id=f"{spec['name']}-{command}")
    for spec in CASES
    if spec.get("large")
    for command in spec["commands"]
]
# One of each kind, through the real console script (imports, entry point, stderr).
CONSOLE_RUNS = [
    ("08_prj_garbage", "info"),
    ("06_cpg_with_null_byte", "check"),
    ("40_xlsx_truncated", "assign"),
    ("46_longitude_column_missing", "assign"),
    ("50_bad_crs_code", "assign"),
]


# -- the corpus copy and its fingerprints ---------------------------------------------------
def _fingerprint(root: Path) -> dict[str, str]:
    """Relative path → digest of every file, folder and link under ``root``."""
    prints = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                prints[key] = "link:" + os.readlink(path)
            elif path.is_dir():
                prints[key] = "dir"
            else:
                prints[key] = _digest(path)
    return prints


def _digest(path: Path) -> str:
    stat = path.stat()
    if stat.st_size > BIG_FILE:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
            f.seek(-(1 << 20), os.SEEK_END)
            tail = f.read()
        return f"{stat.st_size}:{stat.st_mtime_ns}:{hashlib.sha256(head + tail).hexdigest()}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Corpus:
    """The session's copy of the cases and the fingerprint of each case folder."""

    root: Path
    prints: dict[str, dict[str, str]]

    def changes(self, names: set[str]) -> list[str]:
        """Inputs of the cases ``names`` that differ from the copy's first state."""
        changed = []
        for name in sorted(names):
            was, now = self.prints[name], _fingerprint(self.root / name)
            changed += [
                f"{name}/{k}" for k in sorted(was.keys() | now.keys()) if was.get(k) != now.get(k)
            ]
        return changed

    def restore(self, names: set[str]) -> None:
        for name in names:
            shutil.rmtree(self.root / name)
            _copy_case(name, self.root)


def _copy_case(name: str, root: Path) -> None:
    shutil.copytree(CASES_DIR / name, root / name, symlinks=True)
    if _spec(name).get("generate"):
        build.generate(root / name)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    """The cases copied once (the committed files are never run), with the large inputs."""
    root = tmp_path_factory.mktemp("corpus") / "cases"
    root.mkdir()
    for spec in CASES:
        _copy_case(spec["name"], root)
    return Corpus(root, {spec["name"]: _fingerprint(root / spec["name"]) for spec in CASES})


@pytest.fixture
def unchanged(corpus, request):
    """Fail the run that changes any of its inputs (and restore them for the next runs).

    A run reads its own case folder and the valid system's; only those are compared.
    """
    yield corpus
    names = {request.node.callspec.params["name"], VALID}
    if changed := corpus.changes(names):
        corpus.restore(names)
        pytest.fail(f"inputs changed: {changed[:10]}", pytrace=False)


# -- command lines ------------------------------------------------------------------------
DEFAULT_ARGV = {
    "grids": {
        "info": ["info", "{input}"],
        "check": ["check", "{input}", "-o", "{out}/defects.gpkg"],
        "assign": ["assign", "{households}", "--grids", "{input}", "-o", "{out}/out.csv"],
        "map": ["map", "{input}", "-o", "{out}/map.html"],
    },
    "households": {
        "assign": ["assign", "{input}", "--grids", "{valid}", "-o", "{out}/out.csv"],
        "map": ["map", "{valid}", "-o", "{out}/map.html", "--households", "{input}"],
    },
    "incidents": {
        "assign": ["assign", "{input}", "--grids", "{valid}", "-o", "{out}/out.csv"],
        "map": ["map", "{valid}", "-o", "{out}/map.html", "--incidents", "{input}"],
    },
}


def _places(spec: dict, corpus_root: Path, out: Path) -> dict[str, str]:
    valid = corpus_root / VALID
    places = {
        "valid": str(valid / "grids"),
        "households": str(valid / "households.csv"),
        "incidents": str(valid / "incidents.csv"),
        "out": str(out),
        "case": str(corpus_root / spec["name"]),
    }
    places["input"] = (
        spec["input"].format(**places)
        if spec["input"].startswith("{")
        else str(corpus_root / spec["name"] / spec["input"])
    )
    return places


def argv_for(spec: dict, command: str, places: dict[str, str]) -> list[str]:
    template = spec.get("argv", {}).get(command) or DEFAULT_ARGV[spec["role"]][command]
    template = template + spec.get("extra", {}).get(command, [])
    return [part.format(**places) for part in template]


def _prepare(spec: dict, places: dict[str, str]) -> None:
    for folder in spec.get("setup_dirs", []):
        Path(folder.format(**places)).mkdir(parents=True)
    for file in spec.get("setup_files", []):
        Path(file.format(**places)).write_text("not a folder\n", encoding="utf-8")


def _listing(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*")}


# -- what a run must show -----------------------------------------------------------------
def _flat(text: str) -> str:
    """Output with the console's line wrapping and table borders undone."""
    text = re.sub(r"[│┃║┆┊|]", " ", text)
    return re.sub(r"\s+", " ", text)


def _page_text(path: Path) -> str:
    """An HTML page with JSON and HTML escapes decoded, to look for literal user text."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    text = text.replace('\\"', '"').replace("\\/", "/")
    return html.unescape(text)


def problems(rule: dict, code: int, output: str, places: dict[str, str]) -> list[str]:
    """What is wrong with one run against one expectation (empty: it holds)."""
    found = []
    if code != rule["exit"]:
        found.append(f"exit {code}, expected {rule['exit']}")
    flat = _flat(output)
    for pattern in rule.get("message", []):
        if not re.search(pattern, flat, re.I):
            found.append(f"message lacks /{pattern}/")
    for pattern in rule.get("message_not", []):
        if re.search(pattern, flat, re.I):
            found.append(f"message has /{pattern}/")
    if rule["exit"] == 2 and code == 2 and not HINT.search(flat):
        found.append("message says nothing to do")
    if len(output) > rule.get("max_output", MAX_OUTPUT):
        found.append(f"{len(output):,} characters of output")
    if code != rule["exit"]:
        return found  # the files are not worth looking at
    for file in rule.get("writes", []):
        if not Path(file.format(**places)).exists():
            found.append(f"did not write {Path(file).name}")
    if "rows" in rule:
        found += _row_problems(rule["rows"], places)
    if "html" in rule:
        found += _html_problems(rule["html"], places)
    return found


def _row_problems(rows: dict, places: dict[str, str]) -> list[str]:
    path = Path(rows["file"].format(**places))
    if not path.exists():
        return [f"did not write {path.name}"]
    table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if rows["key"] not in table:
        return [f"{path.name} has no column {rows['key']!r}"]
    table = table.set_index(rows["key"])
    found = []
    for key, columns in rows["expect"].items():
        if key not in table.index:
            found.append(f"{path.name} lost row {key}")
            continue
        for column, pattern in columns.items():
            if column not in table:
                found.append(f"{path.name} has no column {column!r}")
            elif not re.fullmatch(pattern, table.at[key, column], re.S):
                found.append(f"{key}.{column} = {table.at[key, column]!r}, expected /{pattern}/")
    return found


def _html_problems(rule: dict, places: dict[str, str]) -> list[str]:
    path = Path(rule.get("file", "{out}/map.html").format(**places))
    if not path.exists():
        return [f"did not write {path.name}"]
    page = _page_text(path)
    found = [f"page lacks {t!r}" for t in rule.get("contains", []) if t not in page]
    found += [f"page has {t!r}" for t in rule.get("not_contains", []) if t in page]
    found += [f"page has /{p}/" for p in rule.get("not_contains_regex", []) if re.search(p, page)]
    return found


def verdict(spec: dict, command: str, code: int, output: str, places: dict[str, str]) -> list[str]:
    """Problems of a run: none if it meets one accepted expectation and every general rule."""
    rule = spec["expect"].get(command, spec["expect"].get("*"))
    options = rule.get("accept", [rule])
    tried = [problems(option, code, output, places) for option in options]
    found = [] if any(not t for t in tried) else ["; ".join(t) for t in tried]
    if "Traceback" in output:
        found.append("a traceback was printed")
    if match := PYTHON_KEYWORD.search(output):
        found.append(f"names a Python keyword ({match.group(0)}…), not a flag")
    return found


def _hidden_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*"))


def run_in_process(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and everything a user would see: stdout, stderr and warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = _main(argv, capsys)
    captured = capsys.readouterr()
    hidden = (DeprecationWarning, PendingDeprecationWarning)  # not shown to CLI users
    shown = "".join(
        f"{w.category.__name__}: {w.message}\n"
        for w in caught
        if not issubclass(w.category, hidden)
    )
    return code, captured.out + captured.err + shown


def _main(argv: list[str], capsys) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return exc.code if isinstance(exc.code, int) else 2
    except Exception:
        captured = capsys.readouterr()
        pytest.fail(
            "traceback escaped main():\n" + traceback.format_exc(limit=-3) + captured.err[-500:],
            pytrace=False,
        )


def _spec(name: str) -> dict:
    return next(spec for spec in CASES if spec["name"] == name)


def _check_run(spec, command, code, output, places, out, before) -> None:
    found = verdict(spec, command, code, output, places)
    if code == 2 and _listing(out) != before:
        found.append(f"wrote {sorted(_listing(out) - before)} although it failed")
    if hidden := _hidden_files(out):
        found.append(f"left temporary files {hidden}")
    assert not found, (
        f"{spec['name']} / {' '.join(['gridgeo', command])}: "
        + " | ".join(found)
        + (f"\n--- output ---\n{output[-1500:]}")
    )


# -- the tests ------------------------------------------------------------------------------
def test_corpus_has_at_least_40_broken_input_cases():
    broken = [spec for spec in CASES if spec["area"] != "control"]
    assert len(broken) >= 40
    assert len({spec["name"][:2] for spec in CASES}) == len(CASES)  # numbered once each


def test_committed_cases_are_small_and_hold_no_large_input():
    sizes = {
        p: p.stat().st_size for p in CASES_DIR.rglob("*") if p.is_file() and not p.is_symlink()
    }
    assert max(sizes.values()) < 200_000, max(sizes, key=sizes.get)
    assert sum(sizes.values()) < 5_000_000
    for spec in CASES:
        for item in spec.get("generate", []):
            target = CASES_DIR / spec["name"] / item["path"]
            assert not target.exists() or target.stat().st_size < 200_000


@pytest.mark.parametrize(("name", "command"), RUNS)
def test_case(name, command, unchanged, tmp_path, capsys):
    spec = _spec(name)
    out = tmp_path / "out"
    out.mkdir()
    places = _places(spec, unchanged.root, out)
    _prepare(spec, places)
    before = _listing(out)
    code, output = run_in_process(argv_for(spec, command, places), capsys)
    _check_run(spec, command, code, output, places, out, before)


def _console_script() -> str:
    beside = Path(sys.executable).with_name("gridgeo")
    return str(beside) if beside.exists() else shutil.which("gridgeo") or "gridgeo"


def _run_console(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [_console_script(), *argv],
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
        timeout=300,
    )


@contextlib.contextmanager
def _address_space_limit(headroom: int):
    """Cap this process's address space at its current size plus ``headroom`` bytes."""
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + headroom, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.parametrize(("name", "command"), LARGE_RUNS)
def test_large_case_with_bounded_memory(name, command, unchanged, tmp_path, capsys):
    """2 GiB inputs with at most 1 GiB more address space: reading them whole fails."""
    spec = _spec(name)
    out = tmp_path / "out"
    out.mkdir()
    places = _places(spec, unchanged.root, out)
    before = _listing(out)
    argv = argv_for(spec, command, places)
    with _address_space_limit(HEADROOM):
        try:
            code, output = run_in_process(argv, capsys)
        except MemoryError:
            code, output = None, "MemoryError"
    if code is None:
        pytest.fail(
            f"{name} / {command}: MemoryError within {HEADROOM >> 30} GiB more address "
            "space (the input is read whole)",
            pytrace=False,
        )
    _check_run(spec, command, code, output, places, out, before)


@pytest.mark.parametrize(("name", "command"), CONSOLE_RUNS)
def test_console_script_prints_no_traceback(name, command, unchanged, tmp_path):
    spec = _spec(name)
    out = tmp_path / "out"
    out.mkdir()
    places = _places(spec, unchanged.root, out)
    before = _listing(out)
    result = _run_console(argv_for(spec, command, places))
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    _check_run(spec, command, result.returncode, result.stdout + result.stderr, places, out, before)


def test_build_matches_the_committed_cases(tmp_path):
    """The committed corpus is exactly the builder's output: nothing edited by hand, and
    the build is deterministic (timestamps inside DBF, GeoPackage and xlsx are pinned)."""
    build.build(tmp_path / "cases")
    fresh, committed = _fingerprint(tmp_path / "cases"), _fingerprint(CASES_DIR)
    stale = sorted(k for k in fresh.keys() | committed.keys() if fresh.get(k) != committed.get(k))
    assert not stale, f"rerun `python tests/corpus/build.py`: {stale[:10]}"
