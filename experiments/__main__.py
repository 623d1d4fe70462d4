"""``python -m experiments``: see :mod:`experiments.runner`."""

from experiments.runner import main

raise SystemExit(main())
