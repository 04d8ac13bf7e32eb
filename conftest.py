"""Run every docstring Example (``--doctest-modules`` over ``gridgeo/``) in a temporary folder.

An Example that writes a relative path (``write_system(system, "out/banner.gpkg")``)
must not write into the checkout. This file sits at the repository's top level
because the doctests live in ``gridgeo/``, outside the reach of ``tests/conftest.py``.
"""

import pytest


@pytest.fixture(autouse=True)
def _doctests_run_in_a_temporary_folder(request):
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))
