"""``python -m constellations.experiments run NAME [--quick] [--seed S] [--out DIR]`` (see :mod:`.cli`)."""

from .cli import main

raise SystemExit(main())
