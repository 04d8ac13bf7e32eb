"""A real PostgreSQL + PostGIS server for the tests, started once per session.

A pytest plugin (``pytest_plugins = ["conftest_postgis"]`` in ``tests/conftest.py``)
providing :func:`postgis_dsn`. It runs Debian's ``postgresql`` and ``postgresql-postgis``
packages (``scripts/test.sh`` installs them): ``initdb`` into a temporary folder — as
the ``postgres`` OS user when the tests run as root, since ``initdb`` refuses root —
``pg_ctl start`` on a free port of ``localhost`` only, one database with the ``postgis``
extension, and at the end ``pg_ctl stop`` and the folder removed, whatever happened.

The throwaway cluster trusts connections from ``localhost`` (no password) and runs
without ``fsync``: it holds nothing worth keeping and starts in a few seconds. A
missing PostgreSQL or PostGIS fails the tests that need it — never skips them.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["postgis_dsn"]

DATABASE = "gridgeo_test"
_INSTALL = (
    "Install Debian's packages (scripts/test.sh does): "
    "apt-get install postgresql postgresql-postgis"
)


@pytest.fixture(scope="session")
def postgis_dsn() -> Iterator[str]:
    """``postgresql://postgres@localhost:PORT/gridgeo_test``: a live database with PostGIS.

    Tests that write into it should use their own schema, so they do not see
    each other's tables.
    """
    bin_dir = _server_binaries()
    folder = Path(tempfile.mkdtemp(prefix="gridgeo-postgis-"))
    data = folder / "data"
    started = False
    try:
        as_server = _server_user(folder)
        initdb = ["-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"]
        _run("initdb", [*as_server, str(bin_dir / "initdb"), *initdb, "--no-sync"], folder)
        port = _free_port()
        options = (
            f"-p {port} -c listen_addresses=localhost -k {folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = True  # from here on, a failed start may still have left a server
        start = ["-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o", options]
        _run("pg_ctl start", [*as_server, str(bin_dir / "pg_ctl"), *start, "start"], folder)
        dsn = f"postgresql://postgres@localhost:{port}/{DATABASE}"
        _create_database(dsn, port)
        yield dsn
    finally:
        if started:
            _stop(as_server, bin_dir, data, folder)
        shutil.rmtree(folder, ignore_errors=True)


def _server_binaries() -> Path:
    """The newest PostgreSQL's ``bin`` folder, having checked that PostGIS is there too."""
    found = []
    for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        if re.fullmatch(r"\d+(\.\d+)?", initdb.parent.parent.name):
            found.append((float(initdb.parent.parent.name), initdb.parent))
    if not found:
        pytest.fail(
            f"PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb). {_INSTALL}"
        )
    bin_dir = max(found)[1]
    share = (
        subprocess.run(
            [str(bin_dir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or f"/usr/share/postgresql/{bin_dir.parent.name}"
    )
    if not (Path(share) / "extension" / "postgis.control").exists():
        pytest.fail(
            f"PostGIS is not installed for PostgreSQL {bin_dir.parent.name} "
            f"(no {share}/extension/postgis.control). {_INSTALL}"
        )
    return bin_dir


def _server_user(folder: Path) -> list[str]:
    """The command prefix that runs the server's programs: as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(f"The tests run as root but there is no 'postgres' OS user. {_INSTALL}")
    os.chown(folder, user.pw_uid, user.pw_gid)
    # runuser (util-linux) lives in /usr/sbin, which a root PATH may lack
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", "postgres", "--"]


def _run(what: str, command: list[str], folder: Path) -> None:
    # cwd: the postgres user may not be allowed into the checkout.
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log = folder / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        pytest.fail(
            f"{what} failed ({result.returncode}): {' '.join(command)}\n"
            f"{result.stdout}{result.stderr}{tail}"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _create_database(dsn: str, port: int) -> None:
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[test]' (scripts/test.sh does).")

    admin = f"postgresql://postgres@localhost:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {DATABASE}")
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute("CREATE EXTENSION postgis")
    except psycopg.Error as error:
        pytest.fail(f"CREATE EXTENSION postgis failed: {error}. {_INSTALL}")


def _stop(as_server: list[str], bin_dir: Path, data: Path, folder: Path) -> None:
    """Stop the server; if a fast shutdown fails, an immediate one (it holds nothing)."""
    for mode in ("fast", "immediate"):
        stopped = subprocess.run(
            [*as_server, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop"],
            cwd=folder,
            capture_output=True,
            check=False,
        )
        if stopped.returncode == 0 or not (data / "postmaster.pid").exists():
            return
