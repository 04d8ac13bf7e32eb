"""Errors a user can cause.

Every error raised for bad input is a :class:`GridgeoError` subclass whose
message names the file, layer, row or code involved and says what to do.
The command line prints the message without a traceback and exits 2.
"""

from __future__ import annotations

__all__ = [
    "CodeError",
    "CrsError",
    "DataFileError",
    "EncodingError",
    "GeometryError",
    "GridgeoError",
    "LayerError",
    "SchemaError",
]


class GridgeoError(Exception):
    """Base class of every error caused by the user's input."""


class DataFileError(GridgeoError):
    """A file or folder is missing, unreadable or of an unknown format."""


class LayerError(GridgeoError):
    """A level or layer is absent from a data source."""


class SchemaError(GridgeoError):
    """A layer lacks a column, or a column cannot be stored as asked."""


class CrsError(GridgeoError):
    """A layer has no CRS, an unknown CRS, or layers disagree on it."""


class EncodingError(GridgeoError):
    """A Shapefile's text encoding cannot be determined or is wrong."""


class CodeError(GridgeoError):
    """Grid codes are duplicated, malformed, or do not extend their parent's code."""


class GeometryError(GridgeoError):
    """A geometry is missing, empty or not a polygon where one is required."""
