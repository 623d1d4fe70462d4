"""Command line: ``python -m constellations analyze IMAGE_EMB TEXT_EMB [--labels LABELS] [--json OUT]``.

Prints a short summary in words (m*, b*_rel, the trimmed and mean-based versions, the modality gap,
retrieval; see :data:`constellations.analysis.FIELDS` for every key) and writes the statistics as
JSON to ``--json OUT`` (``--json -`` prints the JSON instead of the summary) with a histogram beside it.

Bad input (unreadable files, arrays of different widths, non-finite values, rows that are not unit
vectors without --normalize, labels of the wrong length) ends with one ``error: ...`` line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from . import io
from .analysis import analyze_embeddings


#: How a .npy file starts (NumPy's format) and how a .npz (a zip archive) starts.
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def load_array(path: str, name: str, key: str | None = None) -> np.ndarray:
    """Load a numeric .npy array, or one array of a .npz (``key``, or the only one), with clear errors.

    Anything else (a text file renamed .npy, a pickle, an object array, an empty or truncated file)
    is refused with a ValueError that names ``name`` and the file.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{name}: no such file: {path}")
    try:
        with open(p, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise ValueError(f"{name}: cannot read {path} ({e.strerror or e})") from None
    if not (head.startswith(_NPY_MAGIC) or head.startswith(_ZIP_MAGIC)):
        raise ValueError(f"{name}: cannot read {path}: it is not a numeric .npy or .npz file (it does not start "
                         "with NumPy's header); save the array with numpy.save or numpy.savez")
    try:
        obj = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if "pickle" in str(e):
            raise ValueError(f"{name}: {path} holds Python objects (pickled), not a numeric array") from None
        raise ValueError(f"{name}: cannot read {path} as .npy/.npz ({type(e).__name__}: {e})") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            keys = list(obj.keys())
            if key is None:
                if len(keys) != 1:
                    raise ValueError(f"{name}: {path} holds arrays {keys}; say which with --{name.split()[0]}-key")
                key = keys[0]
            if key not in keys:
                raise ValueError(f"{name}: {path} has no array {key!r} (it has {keys})")
            try:
                arr = obj[key]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
                what = "holds Python objects (pickled), not numbers" if "pickle" in str(e) else f"cannot be read ({e})"
                raise ValueError(f"{name}: array {key!r} of {path} {what}") from None
    else:
        arr = obj
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name}: {path} holds a {arr.dtype} array, not real numbers")
    return arr


def _check_outputs(args) -> None:
    """Refuse unwritable output paths before anything is loaded or computed (not after the work)."""
    for flag, value in (("--json", args.json), ("--plot", args.plot)):
        if not value or value == "-":  # "-" is standard output
            continue
        target = Path(value)
        if target.is_dir():
            raise ValueError(f"{flag}: {value} is a directory; give a file path")
        try:
            io.check_writable_dir(target.parent)
        except ValueError as e:
            raise ValueError(f"{flag}: {e}") from None
        if target.exists() and not os.access(target, os.W_OK):
            raise ValueError(f"{flag}: {value} exists and is not writable")


def _plot_histograms(path: Path, edges, pos, neg, stats) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centers = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(centers, pos / max(pos.sum(), 1), width=width, alpha=0.6, label=f"positive pairs ({pos.sum():,})")
    ax.bar(centers, neg / max(neg.sum(), 1), width=width, alpha=0.6, label=f"negative pairs ({neg.sum():,})")
    for x, ls, lab in [(stats.relative_bias, "-", "b*_rel"), (stats.trimmed_relative_bias, "--", "trimmed b_rel")]:
        ax.axvline(x, color="k", ls=ls, lw=1, label=f"{lab} = {x:.3f}")
    ax.set(xlabel="inner product <image, text>", ylabel="fraction of pairs",
           title=f"m* = {stats.margin:.4f}, trimmed m = {stats.trimmed_margin:.4f}, xi = {stats.xi:.3f}")
    ax.legend(fontsize=8)
    io.save_figure(fig, path)
    plt.close(fig)


def _analyze(args) -> int:
    U = load_array(args.image_emb, "image embeddings", args.image_key)
    V = load_array(args.text_emb, "text embeddings", args.text_key)
    labels = load_array(args.labels, "labels", args.labels_key) if args.labels else None
    stats, (edges, pos, neg) = analyze_embeddings(U, V, labels, normalize=args.normalize, return_histograms=True)
    text = json.dumps(stats.to_dict(), indent=2)
    if args.json == "-":
        print(text)
    else:
        print(stats.summary())
    if args.json and args.json != "-":
        io.write_text(args.json, text + "\n")
        print(f"statistics (every key explained in constellations.analysis.FIELDS): {args.json}")
    plot = args.plot or (str(Path(args.json).with_suffix(".png")) if args.json and args.json != "-" else None)
    if plot:
        _plot_histograms(Path(plot), edges, pos, neg, stats)
        print(f"histogram: {plot}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m constellations", description="constellations command line")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="margin, relative bias, modality gap, xi and retrieval of two embedding arrays")
    a.add_argument("image_emb", help=".npy or .npz array (N_img, d)")
    a.add_argument("text_emb", help=".npy or .npz array (N_txt, d)")
    a.add_argument("--labels", help=".npy/.npz (N_img,) caption index of each image (many images per caption)")
    a.add_argument("--json", help="write the statistics as JSON here (and the histogram beside it, as .png); "
                                  "'-' prints the JSON instead of the summary")
    a.add_argument("--plot", help="histogram path (default: beside --json)")
    a.add_argument("--normalize", action="store_true", help="divide rows by their norms instead of requiring unit rows")
    a.add_argument("--image-key", help="array name inside an image .npz")
    a.add_argument("--text-key", help="array name inside a text .npz")
    a.add_argument("--labels-key", help="array name inside a labels .npz")
    args = parser.parse_args(argv)
    try:
        _check_outputs(args)
        return _analyze(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
