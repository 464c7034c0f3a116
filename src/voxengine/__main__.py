"""``python -m voxengine`` runs the command line."""

from __future__ import annotations

import sys

from voxengine.cli import main

if __name__ == "__main__":
    sys.exit(main())
