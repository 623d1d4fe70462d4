"""The synthetic experiments E1-E9 of theory.md section 5, one module each.

Each module has ``NAME`` ("e1".."e9"), ``TITLE``, ``get_config(arg=None)`` (the experiment as data;
``arg="quick"`` is the test-suite scale) and ``run(config, out_root, *, progress) -> Outcome``
(writes ``<out_root>/<NAME>/``: config.json with the seed, raw numbers, figures). They train through
the package's engine, :mod:`constellations.synthetic`. Run them with the lab's runner:
``python -m experiments run e6 [--quick]`` (``python -m experiments.synthetic run e6`` is the same command).
"""

#: The report's introduction to E1-E9 (placed before E1 by the runner).
INTRO = """## Synthetic experiments E1-E9: bias parameterizations at the paper's scale

Free unit vectors trained by full-batch Adam (lr 1e-2) with the loss's own row normalization and re-projection after
every step, reduction 'mean', float32 as the paper's code (final m*, b*_rel recomputed in float64 by
constellations.geometry). Every sweep is one compiled JAX function (vmap over runs, lax.scan over steps). The loss is
the exact, stable sigmoid loss unless a table says 'eps' (the authors' float32 form -log(sigmoid(x) + 1e-8), run only
to compare with the paper's numbers).
"""
