"""``python -m experiments.synthetic run e6``: the lab's one runner (:mod:`experiments.runner`) under the name api.md gives it."""

from experiments.runner import main

raise SystemExit(main(prog="python -m experiments.synthetic"))
