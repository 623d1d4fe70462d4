# %% [markdown]
# # The modality gap of sigmoid-loss constellations
#
# Theorem 3.6 (claim C9 of theory.md): if N >= d + 2, s_ii > 0 for all i and s_ij < 0 for all i != j, some unit
# direction h has every U_i on its positive side and at least N - d of the V_j on its negative side: the two
# modalities sit apart, a *modality gap*. The package builds h by the theorem's proof (an LP for a direction,
# the move into the cone of the U's, Caratheodory down to at most d support points), so it can be checked
# on any configuration: trained synthetic ones here, a SigLIP model's embeddings at the end.
#
# Set `CONSTELLATIONS_QUICK=1` for the quick mode the test suite runs.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)
import matplotlib.pyplot as plt
import numpy as np

import constellations as cs
from constellations import regions
from constellations.synthetic import train_synthetic
from constellations.plotting import plot_region

QUICK = os.environ.get("CONSTELLATIONS_QUICK") == "1"
SEEDS, STEPS = (4, 5000) if QUICK else (16, 10000)
print("quick mode" if QUICK else "full mode", f"({SEEDS} seeds x {STEPS} steps)")

# %% [markdown]
# ## 1. Train constellations in d = 3 with the threshold frozen at b_rel = 0
#
# E1's setting: N = 20 pairs on the sphere S^2, relative-bias loss, t trainable, b_rel frozen at 0. A positive
# margin with b*_rel near 0 puts every positive pair above 0 and every negative pair below: C9's sign condition.

# %%
N, d = 20, 3
run = train_synthetic(N, d, seeds=SEEDS, steps=STEPS, b_rel0=0.0, trainable=("U", "V", "t"), seed=0)
U_all, V_all = np.asarray(run.U, np.float64), np.asarray(run.V, np.float64)
U_all /= np.linalg.norm(U_all, axis=-1, keepdims=True)
V_all /= np.linalg.norm(V_all, axis=-1, keepdims=True)
for i in range(SEEDS):
    print(f"seed {i}: final loss {run.final_loss[i]:.2e}, t = {run.t[i]:7.1f}, m* = {run.margin[i]:.4f}, "
          f"b*_rel = {run.relative_bias[i]:+.4f}, sign condition: {cs.satisfies_sign_condition(U_all[i], V_all[i])}")

# %% [markdown]
# ## 2. The direction h of Theorem 3.6
#
# For every run that satisfies the sign condition: the count of V's on the far side, against the guarantee N - d.

# %%
directions = {}
for i in range(SEEDS):
    if not cs.satisfies_sign_condition(U_all[i], V_all[i]):
        continue
    g = cs.modality_gap_direction(U_all[i], V_all[i])
    directions[i] = g
    print(f"seed {i}: {g.n_separated:2d} of {N} V's with <h, V> < 0 (guarantee {g.guaranteed}); support {g.support.tolist()}; "
          f"min <h, U> = {g.min_u_projection:.3f}")
    assert g.n_separated >= g.guaranteed and g.min_u_projection > 0 and len(g.support) <= d
assert directions, "no run reached the sign condition"

# %% [markdown]
# A picture of one run: U's (blue), V's (red), the support of h (circled), h itself (black arrow) and the great
# circle orthogonal to h, which separates the U's from most V's.

# %%
i0 = next(iter(directions))
g, U, V = directions[i0], U_all[i0], V_all[i0]
fig = plt.figure(figsize=(6, 6))
ax = fig.add_subplot(projection="3d")
uu, vv = np.mgrid[0:2 * np.pi:40j, 0:np.pi:20j]
ax.plot_wireframe(np.cos(uu) * np.sin(vv), np.sin(uu) * np.sin(vv), np.cos(vv), color="0.85", lw=0.4)
ax.scatter(*U.T, color="tab:blue", s=30, label="U (image side)")
ax.scatter(*V.T, color="tab:red", s=30, label="V (text side)")
ax.scatter(*U[g.support].T, s=160, facecolors="none", edgecolors="k", label="support of h")
ax.quiver(0, 0, 0, *g.h, color="k", lw=2, arrow_length_ratio=0.1)
e1 = np.cross(g.h, [1.0, 0, 0] if abs(g.h[0]) < 0.9 else [0, 1.0, 0])
e1 /= np.linalg.norm(e1)
e2 = np.cross(g.h, e1)
phi = np.linspace(0, 2 * np.pi, 200)
ax.plot(*(np.outer(np.cos(phi), e1) + np.outer(np.sin(phi), e2)).T, color="k", lw=1)
ax.set_box_aspect((1, 1, 1))
ax.set_title(f"seed {i0}: {g.n_separated}/{N} V's beyond the great circle")
ax.legend(loc="upper left", fontsize=8)
plt.show()

# %% [markdown]
# ## 3. Linear separability and the xi statistic
#
# A hyperplane (not necessarily through 0) separating all U's from all V's, decided exactly by an LP; and
# xi = the variance of U_i - V_i (claim C13): 0 iff the two modalities differ by a pure shift.

# %%
for i in range(SEEDS):
    sep = cs.linear_separability(U_all[i], V_all[i])
    xi = cs.xi_statistic(U_all[i], V_all[i])
    print(f"seed {i}: linearly separable: {sep.separable} (certified: {sep.certified}), xi = {xi:.2e}")
if "xi" in run.history:
    xi_hist = np.asarray(run.history["xi"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(run.history_steps, xi_hist.T, color="tab:purple", alpha=0.5)
    ax.set(xlabel="step", ylabel="xi", title="xi during training (E8)")
    plt.show()

# %% [markdown]
# ## 4. Where trained configurations land in the (m, b_rel) plane (E9)
#
# Runs with the threshold frozen at several values: each lands inside the feasible region of C7, and those with
# m* > |b*_rel| inside the provable modality-gap region of C9.

# %%
frozen = [-0.5, 0.0, 0.5, 0.75]
points, labels = [], []
for b in frozen:
    r = train_synthetic(N, d, seeds=2, steps=STEPS, b_rel0=b, trainable=("U", "V", "t"), seed=1)
    for m_, b_ in zip(r.margin, r.relative_bias):
        if m_ > 0:
            points.append((m_, b_))
            labels.append(f"frozen b_rel = {b}")
            assert regions.impossible_region(float(m_), float(np.clip(b_, -1, 1)), N).feasible  # C7 holds
fig, ax = plt.subplots(figsize=(7, 5))
plot_region(ax, N=N, points=points, labels=labels)
plt.show()

# %% [markdown]
# ## 5. The same analysis on a SigLIP model trained by the package
#
# The lab-xs towers of `experiments/siglip/shapes_tiny.py` trained on procedural shapes with the sigmoid loss
# (SigLIP's t, b; init t = 10, b = -10), then the held-out embeddings exported (`python -m constellations.siglip
# embed`) and analysed with the statistics of the paper's real-model study (E10; `python -m constellations analyze`).
# Real towers are not constellations: m* < 0. The trimmed margin (5th-percentile positive vs 95th-percentile
# negative) and the mean-based one describe them better, and the modality gap is still there.

# %%
from pathlib import Path

import constellations
from constellations.analysis import analyze_embeddings
from constellations.siglip.config import load_config, merge
from constellations.siglip.train import export_embeddings, train

# The checkout holding the lab's configs: the working directory or one above it, else where the package is
# installed from (an editable install), so the notebook runs from any working directory.
CONFIG = Path("experiments/siglip/shapes_tiny.py")
ROOT = next((p for p in (Path.cwd(), *Path.cwd().parents, Path(constellations.__file__).resolve().parents[1])
             if (p / CONFIG).is_file()), None)
if ROOT is None:
    raise FileNotFoundError(f"{CONFIG} not found: run this notebook from a checkout of the repository")
OUT = Path(os.environ.get("CONSTELLATIONS_NOTEBOOK_OUT", ROOT / "results" / "notebooks"))
steps = 300 if QUICK else 2000
workdir = OUT / f"siglip_shapes_{steps}"
cfg = merge(load_config(ROOT / CONFIG),
            dict(seed=0, total_steps=steps, progress=False, eval=dict(every_steps=0)))
train(cfg, workdir)
export_embeddings(workdir, OUT / "siglip_embeddings.npz")
emb = np.load(OUT / "siglip_embeddings.npz")
paired, (edges, pos_h, neg_h) = analyze_embeddings(emb["image"], emb["text"], normalize=True, return_histograms=True)
labelled = analyze_embeddings(emb["image"], emb["shape_classes"], emb["shape_labels"], normalize=True)
for name, a in [("image vs its caption", paired), ("image vs shape class prompts", labelled)]:
    print(f"{name}: m* = {a.margin:+.3f}, b*_rel = {a.relative_bias:+.3f} | trimmed m = {a.trimmed_margin:+.3f}, "
          f"b_rel = {a.trimmed_relative_bias:+.3f} | mean-based m = {a.mean_margin:+.3f}, b_rel = {a.mean_relative_bias:+.3f}"
          f" | xi = {a.xi:.3f} | separable: {a.linearly_separable} | C9 count {a.c9_v_separated}/{a.c9_v_total} "
          f"({a.c9_direction_method}) | image->text accuracy {a.image_to_text_accuracy:.3f}")

centers = (edges[:-1] + edges[1:]) / 2
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(centers, pos_h / pos_h.sum(), width=edges[1] - edges[0], alpha=0.6, label="positive pairs")
ax.bar(centers, neg_h / neg_h.sum(), width=edges[1] - edges[0], alpha=0.6, label="negative pairs")
ax.axvline(paired.trimmed_relative_bias, color="k", ls="--", label="trimmed b_rel")
ax.set(xlabel="<image, caption>", ylabel="fraction", title="SigLIP towers on shapes: held-out inner products")
ax.legend(fontsize=8)
plt.show()

for a in (paired, labelled):
    assert a.margin <= a.trimmed_margin + 1e-12          # min <= 5th percentile, max >= 95th percentile
    assert a.separability_certified
chance = 1 / paired.n_texts
assert paired.image_to_text_accuracy > 10 * chance, "the towers learned to retrieve"
