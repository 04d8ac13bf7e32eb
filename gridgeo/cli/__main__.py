"""``python -m gridgeo.cli``: the ``gridgeo`` command."""

import sys

from gridgeo.cli import main

sys.exit(main())
