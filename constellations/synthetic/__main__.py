"""``python -m constellations.synthetic train N d [options]`` (see :mod:`.cli`)."""

from .cli import main

raise SystemExit(main())
