"""Reading and writing grid systems: Shapefile folders, GeoPackage, GeoParquet.

A grid system is stored as one layer per level (``banner``, ``town``,
``grid``, ``micro_grid``) plus any source layers (``party_grid``,
``sanitation_grid``), in one of three containers:

* a folder of Shapefiles, ``{layer}.shp`` with its sidecar files;
* a GeoPackage ``.gpkg`` with one layer per level;
* a folder of GeoParquet files, ``{layer}.parquet``.

Three things that usually go wrong with Chinese Shapefiles are handled here:

* **Encoding.** Names are read in the encoding the file really uses, found
  by :func:`detect_encoding` (``.cpg`` file, DBF language driver, or the
  bytes themselves), and checked strictly, so a name is either read right or
  an :class:`~gridgeo.errors.EncodingError` says what to pass. Nothing comes
  back as mojibake, and nothing is written that the encoding cannot hold.
* **Field names.** DBF field names hold 10 bytes. Long column names are
  renamed through :attr:`GridConfig.shapefile_fields
  <gridgeo.config.GridConfig.shapefile_fields>` (plus a ``field_names=``
  mapping) on writing and renamed back on reading; an undeclared long name
  is a :class:`~gridgeo.errors.SchemaError`, never a silent truncation.
* **Codes.** ``code`` and ``parent_code`` always come back as text, with
  leading zeros, whatever type a driver inferred.

Every write goes to a hidden temporary file or folder beside the target and
is moved into place with :func:`os.replace`, so a failed write leaves the
previous data intact and no temporary files behind.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> from gridgeo import load_demo
>>> folder = Path(tempfile.mkdtemp()) / "banner"
>>> write_system(load_demo(), folder).name
'banner'
>>> read_system(folder)["town"].loc[0, "name"]
'乌拉山镇'
"""

from gridgeo.io.atomic import staging
from gridgeo.io.read import read_layer, read_system
from gridgeo.io.shapefile import detect_encoding
from gridgeo.io.stream import open_writer
from gridgeo.io.tables import read_points, write_table
from gridgeo.io.write import write_html, write_layer, write_system

__all__ = [
    "detect_encoding",
    "open_writer",
    "read_layer",
    "read_points",
    "read_system",
    "staging",
    "write_html",
    "write_layer",
    "write_system",
    "write_table",
]
