"""Errors a user can cause.

Every error raised for bad input is a :class:`GridgeoError` subclass whose
message names the file, layer, row or code involved and says what to do.
The command line prints the message without a traceback and exits 2.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "CodeError",
    "ConfigError",
    "ConflictError",
    "CrsError",
    "DataFileError",
    "DiskFullError",
    "EncodingError",
    "GeometryError",
    "GridgeoError",
    "GridgeoWarning",
    "LayerError",
    "PlanError",
    "PlanWarning",
    "SchemaError",
    "StoreError",
    "cli_voice",
    "option",
]

_CLI = contextvars.ContextVar("gridgeo_cli_voice", default=False)


class GridgeoError(Exception):
    """Base class of every error caused by the user's input."""


class DataFileError(GridgeoError):
    """A file or folder is missing, unreadable or of an unknown format."""


class DiskFullError(DataFileError):
    """The disk filled up while writing; the message says how much space was needed."""


class LayerError(GridgeoError):
    """A level or layer is absent from a data source."""


class SchemaError(GridgeoError):
    """A layer lacks a column, or a column cannot be stored as asked."""


class CrsError(GridgeoError):
    """A layer has no CRS, an unknown CRS, or layers disagree on it."""


class EncodingError(GridgeoError):
    """A Shapefile's text encoding cannot be determined or is wrong."""


class ConfigError(GridgeoError):
    """A configuration (a ``gridgeo.toml`` file or a ``GridConfig``) is malformed or inconsistent."""


class CodeError(GridgeoError):
    """Grid codes are duplicated, malformed, or do not extend their parent's code."""


class GeometryError(GridgeoError):
    """A geometry is missing, empty or not a polygon where one is required."""


class PlanError(GridgeoError):
    """A plan operation would break a rule (contiguity, nesting, a locked grid, …).

    ``rule`` names the rule (``"contiguity"``, ``"district"``, ``"empty"``,
    ``"locked"``, ``"refinement"``, ``"unknown"``); ``codes`` the grids involved.
    The plan the operation was called on is unchanged.
    """

    def __init__(self, message: str, rule: str = "", codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.rule = rule
        self.codes = tuple(codes)


class StoreError(GridgeoError):
    """A plan store cannot be opened, is not a gridgeo store, or lacks a version."""


class ConflictError(StoreError):
    """Another planner saved on the same parent version first; nothing was written."""


class GridgeoWarning(UserWarning):
    """Base class of gridgeo's warnings: the result is right, but look at it."""


class PlanWarning(GridgeoWarning):
    """A plan breaks a norm (households per grid, per worker); the numbers are in the text."""


def option(name: str, value: str | None = None) -> str:
    """How a user sets the option ``name``, in the words of where they are.

    Messages name options the way the user can set them: ``--tiles-key KEY`` when
    the command line raised the error (inside :func:`cli_voice`), ``tiles_key='KEY'``
    when Python code did. One helper, so no message names a Python keyword to a
    command-line user.

    Examples
    --------
    >>> option("lon", "your column")
    "lon='your column'"
    >>> with cli_voice():
    ...     option("lon", "your column")
    "--lon 'your column'"
    >>> with cli_voice():
    ...     option("on_overlap")
    '--on-overlap'
    """
    if _CLI.get():
        flag = "--" + name.replace("_", "-")
        return flag if value is None else f"{flag} {value!r}"
    return f"{name}=" if value is None else f"{name}={value!r}"


@contextmanager
def cli_voice() -> Iterator[None]:
    """Within this block, :func:`option` names command-line flags (used by the CLI)."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)
