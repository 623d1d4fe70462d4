"""`make reproduce`: run every section of the report and write results/REPORT.md.

Each section is a module in experiments/ with ``run(out_dir, quick=..., seed=...) -> (markdown, ok)``.
Exit status 1 if any section reports that a check it makes failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


import jax  # noqa: E402

# Geometry checks in the report are float64; engines that want float32 ask for it explicitly.
jax.config.update("jax_enable_x64", True)

from experiments import foundation, spherical_codes, synthetic_section, theory  # noqa: E402
from constellations import io  # noqa: E402

SECTIONS = [foundation, spherical_codes, theory, synthetic_section]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--quick", action="store_true", help="small sizes (the CI scale)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    parts = ["# constellations: reproduction report", "",
             f"Scale: {'quick' if args.quick else 'full'}; seed {args.seed}.", ""]
    all_ok = True
    for section in SECTIONS:
        t0 = time.perf_counter()
        print(f"[reproduce] {section.NAME} ...", flush=True)
        text, ok = section.run(args.out, quick=args.quick, seed=args.seed)
        all_ok &= ok
        parts += [text, f"_({section.NAME}: {time.perf_counter() - t0:.1f} s)_", ""]
    report = io.write_text(args.out / "REPORT.md", "\n".join(parts))
    print(f"[reproduce] wrote {report}" + ("" if all_ok else " -- SOME CHECKS FAILED"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
