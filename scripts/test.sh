#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs it:
# the tests/ modules, the docstring examples of gridgeo/ and the README's
# snippets (pyproject.toml's [tool.pytest.ini_options]). Arguments go to pytest.
# Safe to run again: each step only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests (tests/test_maps_browser.py) drive Debian's Chromium through
# Playwright (never `playwright install`) and compare a screenshot whose Chinese
# text needs the Noto CJK fonts. The plan-store tests (tests/test_plan_store.py)
# start a throwaway PostgreSQL server with PostGIS (tests/conftest_postgis.py):
# Debian's postgresql and postgresql-postgis, metapackages of the release's
# version (postgresql-15 and postgresql-15-postgis-3 on Debian 12), which do not
# start a server themselves here. CI runs as root on a fresh Debian machine.
has_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
for package in fonts-noto-cjk postgresql postgresql-postgis; do
    has_package "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
fi

# Editable, so the tests import this checkout; re-running only refreshes it.
PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

# Two workers, one per core (pytest-xdist); --dist loadfile keeps each test module in
# one worker, in order (the README's snippets build on each other). Pass -n 0 to run
# in one process. exec: pytest's own summary line is the last thing printed, and its
# exit code is ours.
exec python3 -m pytest -n 2 --dist loadfile "$@"
