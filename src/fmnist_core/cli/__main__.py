"""``python -m fmnist_core.cli``: the ``fmnist`` command (data-parallel launchers use it)."""

import sys

from . import main

sys.exit(main())
