"""Drawing primitives shared by the procedural data sets (:mod:`.data`'s shapes, :mod:`.finegrained`).

The shape silhouettes, the colour palette and where evaluation indices start: one home, so the
fine-grained set draws the same shapes in the same colours as the shapes set without the two data
modules importing each other.
"""

from __future__ import annotations

import numpy as np

EVAL_OFFSET = 1 << 40  # shapes evaluation indices start here: disjoint from any training step

SHAPES = ("circle", "square", "triangle", "cross", "diamond", "ring")
COLOURS = {
    "red": (0.95, 0.15, 0.15), "green": (0.15, 0.8, 0.2), "blue": (0.2, 0.35, 1.0), "yellow": (0.95, 0.9, 0.15),
    "purple": (0.6, 0.2, 0.85), "orange": (1.0, 0.55, 0.05), "cyan": (0.1, 0.85, 0.9), "white": (1.0, 1.0, 1.0),
}


def shape_mask(shape: str, dx, dy, r):
    """Pixels inside ``shape`` of radius r, at offsets (dx, dy) from its centre (boolean array)."""
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "ring":
        d2 = dx**2 + dy**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.85 * r
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= 1.15 * r
    if shape == "triangle":  # apex up, base at +0.8 r
        return (dy >= -r) & (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) / 1.8)
    if shape == "cross":
        a, b = np.abs(dx), np.abs(dy)
        return ((a <= 0.3 * r) & (b <= r)) | ((b <= 0.3 * r) & (a <= r))
    raise ValueError(f"unknown shape {shape!r}")
