"""The one piece of packaging pyproject.toml cannot declare: where the demo data ships.

The committed demo data stays at the repository's top level, ``data/``, where
users look for it. Built wheels (and sdists) carry the same folder inside the
package as ``gridgeo/data``, so ``gridgeo.demo`` finds it with
:mod:`importlib.resources` after ``pip install gridgeo``; an editable install
reads ``data/`` in place. Which files ship is declared in pyproject.toml
(``[tool.setuptools.package-data]``); everything else is configured there too.
"""

from setuptools import find_namespace_packages, setup

# data/, data/shapefiles/, data/dirty/ become gridgeo.data, gridgeo.data.shapefiles, …
# (data/cache/ is a local download cache, never shipped).
DEMO_DATA = find_namespace_packages(include=["data", "data.*"], exclude=["data.cache*"])

setup(
    packages=[
        *find_namespace_packages(include=["gridgeo*"], exclude=["*__pycache__*"]),
        *(f"gridgeo.{name}" for name in DEMO_DATA),
    ],
    package_dir={"gridgeo.data": "data"},
)
