"""The SigLIP paper's own studies at lab scale (issue 8), one module each.

* ``siglit``: SigLiT batch-size sweep, sigmoid vs softmax, frozen image tower (cached embeddings).
* ``bias_init``: b = -10 vs b = 0 vs b = log(1/B) vs the relative-bias parameterization.
* ``bottleneck``: the text tower's token embedding vocab -> K -> width against the full table, on
  captions in many generated languages.
* ``memory``: the largest batch under a per-device memory budget, sigmoid ring vs softmax all-gather,
  on emulated CPU devices.
* ``hard_negatives``: sigmoid vs softmax on the fine-grained set (near-duplicate captions) at two
  false-negative rates.

Each module has ``NAME``, ``TITLE``, ``get_config(arg)`` (arg: "quick", "large" and/or "seed=N";
:func:`experiments.lab.parse_options`) and ``run(config, out_root, *, progress) -> Outcome`` (writes
``<out_root>/<NAME>/``: config.json with the seed, raw metrics, figures, summary.md). Run one with
``python -m experiments run NAME [--quick | --scale large]`` (``run studies`` runs all of them and writes
SIGLIP_STUDIES.md; ``report studies`` writes it again from the studies' saved outcomes). Every
finished SigLiT run is saved in ``<out_root>/<NAME>/runs_cache/`` (:func:`.common.train_lit`), so a
study run again after a crash trains only the runs it had not finished. Claims are judged by :func:`experiments.lab.compare`, whose verdict states the
smallest effect the study could have detected.
"""
