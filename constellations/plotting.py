"""Plots a person would rather see than read: the (m, b_rel) plane of theory.md E9.

Kept out of the math core (which never imports matplotlib); used by the report sections, the
experiments and the notebooks.
"""

from __future__ import annotations

import numpy as np


def plot_region(ax, *, N: int | None = None, points=None, labels=None, annotate: bool = True):
    """Draw the (b_rel, m) plane: C7's impossible region, the exponential-size region of C6/C8, and the
    provable modality-gap region m > |b_rel| of C9; optionally place configurations on it.

    Args:
      ax: a matplotlib Axes.
      N: number of pairs for C7's finite-N line (3 - 4/N) m = 1 + b_rel (None: the limit 3m = 1 + b_rel).
      points: (k, 2) array of (m, b_rel) to scatter, with ``labels`` (k,) strings for the legend.
    """
    b = np.linspace(-1, 1, 801)
    coef = 3.0 if N is None else 3.0 - 4.0 / N
    m_max = np.maximum(np.minimum(1 - b, (1 + b) / coef), 0)
    ax.fill_between(b, m_max, 1.05, color="0.85", label="impossible (C7)")
    ax.fill_between(b, 0, m_max, color="tab:green", alpha=0.15, label="exponential size in d (C6/C8)")
    gap = np.minimum(np.abs(b), m_max)
    ax.fill_between(b, gap, m_max, where=m_max > np.abs(b), color="tab:purple", alpha=0.25,
                    label="provable modality gap m > |b_rel| (C9)")
    ax.plot(b, np.minimum(1 - b, (1 + b) / coef), color="k", lw=1)
    if points is not None:
        points = np.atleast_2d(np.asarray(points, dtype=float))
        labels = [None] * len(points) if labels is None else list(labels)
        for (m, br), lab in zip(points, labels):
            ax.scatter([br], [m], s=30, zorder=3, label=lab, edgecolor="k", linewidth=0.5)
    ax.set(xlim=(-1, 1), ylim=(0, 0.6 if N is None or N > 4 else 1.05), xlabel="relative bias b_rel",
           ylabel="margin m", title="(m, b_rel) plane" + ("" if N is None else f", N = {N}"))
    if annotate:
        ax.legend(fontsize=7, loc="upper left")
    return ax
