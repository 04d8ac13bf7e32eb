"""Atomic writes: stage beside the target, check the write, then move into place.

Every file gridgeo writes is written first into a hidden *stage* folder beside
its target, ``.{target name}.{pid}-{random}.tmp``, and moved into place with
:func:`os.replace` only once it is complete, so a target holds either its old
or its new content. The stage is removed whatever happens; a writer killed
outright (SIGKILL, power loss) cannot remove it, so every write first removes
the *stale* stages of the same target: those whose writing process (the pid in
the name) is gone, or, when the writer cannot be identified (another host, an
older gridgeo), that are older than :data:`STALE_AFTER` seconds. Stages of other
targets, and of writers still running, are left alone.

Writing also

* creates missing parent folders (and removes them again if the write fails);
* turns a full disk (``ENOSPC``, SQLite's "database or disk is full", …) into a
  :class:`~gridgeo.errors.DiskFullError` that says how much space the write
  needed and where; a folder that cannot be written into (permissions, a
  read-only disk, a folder where a file should go) into a
  :class:`~gridgeo.errors.DataFileError`;
* forces written data to the disk (``fsync``) before the move, so a write that
  the disk could not hold fails instead of reporting success.

Example
-------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_bytes("<p>你好</p>".encode(), folder / "new" / "page.html").read_text(encoding="utf-8")
'<p>你好</p>'
>>> sorted(p.name for p in folder.rglob("*"))  # the parent was created, no stage left
['new', 'page.html']
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from gridgeo.errors import DataFileError, DiskFullError, GridgeoError
from gridgeo.io.formats import is_layer_file

__all__ = [
    "STALE_AFTER",
    "check_replaceable_folder",
    "commit",
    "make_parents",
    "remove_stale_stages",
    "staging",
    "swap_files",
    "swap_folder",
    "write_bytes",
]

STALE_AFTER = 10 * 60
"""Seconds after which a stage whose writer cannot be identified counts as stale."""

_FOREIGN_STALE_AFTER = 24 * 60 * 60  # a stage written from another host (shared disk)
_OWNER = ".owner"  # inside a stage: the host that writes it
_KEEP = ".keep"  # inside a stage: it holds the only copy of old files, never remove it
_STAGE_ID = re.compile(r"(?:(?P<pid>\d+)-)?[0-9a-f]{8}")
_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded", "errno 28")
_MAYBE_FULL = ("failed to commit transaction", "disk i/o error")
_NOT_WRITABLE = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the disk is read-only",
    errno.EISDIR: "a folder is in the way",
    errno.ENOTDIR: "a file is in the way of a folder",
    errno.ENOTEMPTY: "a non-empty folder is in the way",
    errno.EEXIST: "something is in the way",
}


# -- the stage ------------------------------------------------------------------------------------
@contextmanager
def staging(
    target: str | os.PathLike[str], *, size: Callable[[], int] | int | None = None
) -> Iterator[Path]:
    """A new hidden folder beside ``target`` to write into, removed on exit whatever happens.

    Missing parent folders of ``target`` are created first (and removed again
    if the block fails), and stale stages of ``target`` left by killed writers
    are removed. Inside the block, a full disk becomes a
    :class:`~gridgeo.errors.DiskFullError` and an unwritable folder a
    :class:`~gridgeo.errors.DataFileError`; the block moves its result into
    place, best with :func:`commit`.

    Parameters
    ----------
    target:
        The file or folder being written.
    size:
        Bytes the write needs (or a function computing them, called only if
        the disk fills), for the :class:`~gridgeo.errors.DiskFullError`
        message; by default what had been written when the disk filled.

    Yields
    ------
    pathlib.Path
        The stage folder, ``.{target name}.{pid}-{random}.tmp``.

    Example
    -------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with staging(target) as stage:
    ...     _ = (stage / "out.txt").write_text("done")
    ...     commit(stage / "out.txt", target)
    >>> [p.name for p in target.parent.iterdir()]
    ['out.txt']
    """
    target = Path(target)
    created = make_parents(target)
    try:
        remove_stale_stages(target)
        stage = target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        with _translated(target, stage, size):
            stage.mkdir()
            (stage / _OWNER).write_text(socket.gethostname(), encoding="utf-8")
        try:
            with _translated(target, stage, size):
                yield stage
        finally:
            if not (stage / _KEEP).exists():
                shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        _remove_empty(created)
        raise


def commit(temp: Path, target: Path) -> None:
    """Force ``temp`` (a file, or a folder of files) to the disk, then move it onto ``target``.

    ``fsync`` makes a write the disk cannot hold fail here, while the previous
    ``target`` is still in place, instead of after the move.
    """
    _fsync_tree(temp)
    os.replace(temp, target)
    _fsync_folder(target.parent)


def write_bytes(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` to ``path`` atomically, checking every byte reached the disk.

    Missing parent folders are created. A failed write keeps the previous file
    and leaves no temporary file.

    Parameters
    ----------
    data:
        The complete content.
    path:
        The target file.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DiskFullError
        The disk cannot hold ``data``.
    DataFileError
        The folder cannot be written into, or ``path`` is a folder.

    Example
    -------
    >>> import tempfile
    >>> out = write_bytes(b"a,b\\n1,2\\n", Path(tempfile.mkdtemp()) / "t.csv")
    >>> out.read_bytes()
    b'a,b\\n1,2\\n'
    """
    path = Path(path)
    if path.is_dir():
        raise DataFileError(f"{path} is a folder; give the path of a file to write.")
    with staging(path, size=len(data)) as stage:
        temp = stage / path.name
        with open(temp, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        written = temp.stat().st_size
        if written != len(data):  # a disk that reports success for a short write
            raise DiskFullError(
                f"{path}: only {_human(written)} of {_human(len(data))} reached the disk "
                f"in {path.parent}; it is probably full. Free some space or write "
                f"elsewhere. {_previous(path)}"
            )
        commit(temp, path)
    return path


# -- replacing --------------------------------------------------------------------------------------
def check_replaceable_folder(path: Path) -> None:
    """:class:`DataFileError` unless ``path`` is absent or a folder of layer files only."""
    if not path.exists():
        return
    if not path.is_dir():
        raise DataFileError(
            f"{path} exists and is a file; write the grid system to a folder (or a .gpkg file)."
        )
    foreign = sorted(p.name for p in path.iterdir() if not is_layer_file(p))
    if foreign:
        raise DataFileError(
            f"{path} already holds files that are not layer files ({foreign[:5]}); "
            "write_system replaces the whole folder, so write to a new or empty folder, "
            "or move those files out first."
        )


def swap_folder(new: Path, target: Path, stage: Path) -> None:
    """Move folder ``new`` to ``target``, replacing any old ``target`` (kept on failure)."""
    _fsync_tree(new)
    if not target.exists():
        os.replace(new, target)
        _fsync_folder(target.parent)
        return
    aside = stage / "previous"
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        raise
    _fsync_folder(target.parent)


def swap_files(new: Sequence[Path], old: Sequence[Path], folder: Path, stage: Path) -> None:
    """Replace the set of files ``old`` in ``folder`` by the set ``new``, as one unit.

    The old set is moved aside into ``stage`` first, then the new files are
    moved in (the first of ``new`` last: for a Shapefile, its ``.shp``, so no
    reader sees a layer before its parts are in place). If any move fails, the
    new files already moved in are removed and the old set is moved back, so
    ``folder`` holds either the whole old set or the whole new set. Should the
    roll-back itself fail, the old files stay in ``stage`` (never deleted) and
    the error says where.
    """
    for file in new:
        _fsync_tree(file)
    aside = stage / "previous"
    aside.mkdir()
    moved: list[Path] = []
    placed: list[Path] = []
    try:
        for file in old:
            os.replace(file, aside / file.name)
            moved.append(file)
        for file in [*new[1:], *new[:1]]:
            destination = folder / file.name
            os.replace(file, destination)
            placed.append(destination)
    except BaseException as exc:
        try:
            for destination in placed:
                destination.unlink()
            for file in moved:
                os.replace(aside / file.name, file)
        except OSError as failure:
            (stage / _KEEP).touch()
            raise DataFileError(
                f"{folder}: replacing {[f.name for f in old]} failed ({exc}) and the old "
                f"files could not be put back ({failure}). They are in {aside}; move them "
                "back into the folder by hand."
            ) from failure
        raise
    _fsync_folder(folder)


# -- folders --------------------------------------------------------------------------------------
def make_parents(path: Path) -> list[Path]:
    """Create the missing parent folders of ``path``; returns those created, deepest first."""
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise DataFileError(
            f"{path}: {parent} is a file (or a broken link), not a folder; choose another "
            "output path or move that file."
        )
    created: list[Path] = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.insert(0, folder)
    except OSError as exc:
        _remove_empty(created)
        raise DataFileError(
            f"{path}: cannot create the folder {exc.filename or folder} ({exc.strerror}). "
            "Choose an output folder you can write into."
        ) from exc
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def remove_stale_stages(target: Path) -> list[Path]:
    """Remove the stale stages of ``target`` left by killed writers; returns them.

    A stage is stale when the process named in it no longer runs on this host,
    or, when its writer cannot be identified (written from another host, or
    by a gridgeo without the pid in the name), when it is older than
    :data:`STALE_AFTER` seconds (a day for another host's). Stages of other
    targets, of live writers and stages holding the only copy of old files
    are kept.
    """
    prefix, suffix = f".{target.name}.", ".tmp"
    try:
        candidates = [
            entry
            for entry in os.scandir(target.parent)
            if entry.name.startswith(prefix) and entry.name.endswith(suffix)
        ]
    except OSError:
        return []
    removed = []
    for entry in candidates:
        found = _STAGE_ID.fullmatch(entry.name[len(prefix) : -len(suffix)])
        stage = Path(entry.path)
        if found is None or not _stale(stage, found["pid"]):
            continue
        if stage.is_dir() and not stage.is_symlink():
            shutil.rmtree(stage, ignore_errors=True)
        else:
            stage.unlink(missing_ok=True)
        removed.append(stage)
    return removed


def _stale(stage: Path, pid: str | None) -> bool:
    if (stage / _KEEP).exists():
        return False
    try:
        age = time.time() - stage.lstat().st_mtime
        host = (stage / _OWNER).read_text(encoding="utf-8") if (stage / _OWNER).is_file() else None
    except OSError:
        return False
    if pid is None:
        return age > STALE_AFTER
    if host is not None and host != socket.gethostname():
        return age > _FOREIGN_STALE_AFTER
    return int(pid) != os.getpid() and not _running(int(pid))


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def _fsync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        descriptor = os.open(file, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# -- errors -------------------------------------------------------------------------------------------
@contextmanager
def _translated(target: Path, stage: Path, size: Callable[[], int] | int | None) -> Iterator[None]:
    """A full disk or an unwritable folder inside the block → a named error."""
    try:
        yield
    except GridgeoError:
        raise
    except Exception as exc:
        full = _disk_full(exc, target, stage, size)
        if full is not None:
            raise full from exc
        if isinstance(exc, OSError) and exc.errno in _NOT_WRITABLE:
            where = exc.filename2 or exc.filename or target.parent
            raise DataFileError(
                f"{target}: cannot write {where} ({_NOT_WRITABLE[exc.errno]}: "
                f"{exc.strerror}). Choose an output path in a folder you can write into, "
                f"or move what is in the way. {_previous(target)}"
            ) from exc
        raise


def _disk_full(
    exc: BaseException, target: Path, stage: Path, size: Callable[[], int] | int | None
) -> DiskFullError | None:
    text = str(exc).lower()
    errors = (getattr(exc, "errno", None), *(getattr(exc, "args", ()) or ())[:1])
    strong = errno.ENOSPC in errors or errno.EDQUOT in errors or any(m in text for m in _FULL)
    if not strong and not any(m in text for m in _MAYBE_FULL):
        return None
    written = _tree_size(stage)
    try:
        needed = size() if callable(size) else size
    except Exception:  # the estimate must never hide the real error
        needed = None
    needed = max(needed or 0, written)
    free = _free(target.parent)
    if free is not None:
        free += written  # what is free once the partial write is removed
    if not strong and (free is None or free > max(needed, 1 << 20)):
        return None
    how_much = f"about {_human(needed)}" if needed > written else f"more than {_human(written)}"
    room = "" if free is None else f", and {_human(free)} is free there"
    return DiskFullError(
        f"{target}: the disk is full. Writing it needs {how_much} in {target.parent}"
        f"{room}. Free some space or write to another disk. {_previous(target)}"
    )


def _previous(target: Path) -> str:
    if target.exists():
        return f"The previous {target.name} is unchanged."
    return "Nothing was written."


def _tree_size(path: Path) -> int:
    try:
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


def _free(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _human(size: int) -> str:
    """``1536`` → ``'1.5 KB'`` (powers of 1024)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover
