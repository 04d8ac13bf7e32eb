"""Atomic writes: stage beside the target, then move into place."""

from __future__ import annotations

import codecs
import os
import secrets
import shutil
import struct
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj import CRS
from pyproj.exceptions import CRSError

from gridgeo.config import BANNER, GridConfig
from gridgeo.errors import CrsError, DataFileError, EncodingError, LayerError, SchemaError
from gridgeo.model import GridSystem
from gridgeo.io.formats import is_layer_file


# -- atomic writes --------------------------------------------------------------------------
@contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A new hidden folder beside ``target``, removed on exit whatever happens."""
    stage = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    stage.mkdir()
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def check_replaceable_folder(path: Path) -> None:
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
    """Move folder ``new`` to ``target``, replacing any old ``target``."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = stage / "previous"
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        raise
