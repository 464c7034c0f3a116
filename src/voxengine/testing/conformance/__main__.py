"""``python -m voxengine.testing.conformance``."""

from voxengine.testing.conformance.cli import main

raise SystemExit(main())
