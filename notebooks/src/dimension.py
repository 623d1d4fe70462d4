# %% [markdown]
# # How many dimensions do N pairs need?
#
# An (m, b_rel)-constellation of N pairs (theory.md section 3) exists in dimension d only if d is large
# enough. This notebook answers the question three ways, all with the package's functions:
#
# 1. **Asymptotically** (C6, C8): ln N_max(d) / d lies between -(1/2) ln(1 - alpha^2) (Thm 3.3) and
#    (1/2) ln((1 + b_rel + m) / (4m)) (Thm 3.5). These are statements about d -> infinity.
# 2. **Rigorously at finite d on the code line** m + b_rel = 1, where constellations are spherical codes
#    with s = 1 - 2m: Levenshtein, certified Delsarte LP, volume and Rankin bounds above; explicit codes
#    and the (non-constructive) Chabauty-Shannon-Wyner bound below.
# 3. **By search**: the smallest d in which the max-margin search finds a verified constellation.
#
# Set `CONSTELLATIONS_QUICK=1` for the quick mode the test suite runs.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import constellations as cs
from constellations import bounds, codes, dimension, regions
from constellations.search import max_margin_search

QUICK = os.environ.get("CONSTELLATIONS_QUICK") == "1"
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## 1. Size exponents of C6 and C8 against d
#
# For a few (m, b_rel), the asymptotic window for log10 N_max(d): at least d times the C6 exponent,
# at most d times the C8 exponent (both in nats per dimension; dashed = lower, solid = upper).

# %%
pairs = [(0.05, 0.0), (0.1, 0.5), (0.2, 0.6), (0.25, 0.75)]
ds = np.arange(1, 257)
fig, ax = plt.subplots(figsize=(7, 4.5))
exponents = {}
for (m, b), color in zip(pairs, plt.cm.viridis(np.linspace(0, 0.9, len(pairs)))):
    hi = regions.asymptotic_upper_size_exponent(m, b)
    lo = regions.asymptotic_lower_size_exponent(m, b * (1 - 1e-12)) if m + b < 1 else np.nan
    exponents[(m, b)] = (lo, hi)
    ax.plot(ds, ds * hi / np.log(10), color=color, label=f"m = {m}, b_rel = {b}: C8 (upper)")
    if np.isfinite(lo):
        ax.plot(ds, ds * lo / np.log(10), color=color, ls="--", label=f"m = {m}, b_rel = {b}: C6 (lower)")
ax.set(xlabel="dimension d", ylabel="log10 N_max(d) (asymptotic)", title="C6 and C8: exponential size in d")
ax.legend(fontsize=7)
plt.show()
for (m, b), (lo, hi) in exponents.items():
    assert not np.isfinite(lo) or 0 < lo <= hi, (m, b)  # C6 <= C8 wherever both apply

# %% [markdown]
# ## 2. Finite-d bounds on the code line m + b_rel = 1
#
# With U = V = a code of maximal inner product s = 1 - 2m, the bounds on A(d, s) are rigorous at every d.
# Upper: the best of exact values, Levenshtein, the certified LP, volume and Rankin. Lower: the package's
# explicit codes (largest one in each dimension) and CSW (non-constructive). The asymptotic C6/C8 lines
# are drawn for comparison: at these d they are far from the truth, which is why they are labelled asymptotic.

# %%
d_max = 12 if QUICK else 24
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
checks = []
for ax, m in zip(axes, [0.25, 1 / 3]):
    s = 1 - 2 * m
    dd = np.arange(2, d_max + 1)
    up = np.array([bounds.best_upper_bound(int(d), s).log_value for d in dd]) / np.log(2)
    csw = np.array([bounds.csw_lower_bound(int(d), s).log_value for d in dd]) / np.log(2)
    built = np.array([max([c.size for c in codes.constructions_in_dimension(int(d)) if c.max_inner_product <= s + 1e-12],
                          default=1) for d in dd])
    ax.plot(dd, up, "k-", label="best upper bound")
    ax.plot(dd, np.log2(built), "o", label="largest code built here")
    ax.plot(dd, csw, "--", label="CSW (non-constructive)")
    ax.plot(dd, dd * regions.asymptotic_upper_size_exponent(m, 1 - m) / np.log(2), ":", label="C8 asymptotic")
    ax.set(xlabel="dimension d", ylabel="log2 A(d, s)", title=f"m = {m:.3f}, b_rel = {1 - m:.3f} (s = {s:.3f})")
    ax.legend(fontsize=7)
    checks.append((m, dd, up, np.log2(built), csw))
plt.show()
for m, dd, up, built, csw in checks:
    assert np.all(built <= up + 1e-9), m          # no construction beats an upper bound
    assert np.all(csw <= up + 1e-9), m            # nor does CSW
best8 = bounds.best_upper_bound(8, 0.5)
assert round(best8.value) == 240, best8          # the kissing number in d = 8 is pinned by the bounds
print(f"d = 8, s = 1/2: best upper bound {best8.value:.6f} ({best8.name}); E8 has 240 points")

# %% [markdown]
# ## 3. The smallest d in which the max-margin search finds a constellation
#
# For (m, b_rel) = (0.1, 0.5), off the code line, the search (Adam on log L_rb / t with t annealed, b_rel frozen)
# is run in d = 2, 3, ... until it returns a verified (m, b_rel)-constellation. Next to it: the asymptotic C8
# estimate and the dimension of the package's Theorem 3.3 construction.

# %%
m, b = 0.1, 0.5
Ns = [10, 20, 40] if QUICK else [10, 20, 40, 80, 160]
kw = dict(restarts=2, steps=800) if QUICK else dict(restarts=4, steps=3000)
rows = []
for N in Ns:
    rep = dimension.necessary_dimension(N, m, b, search_dims=range(2, 17), search_kwargs=kw)
    rows.append(rep)
    if rep.search_dimension is not None:
        r = max_margin_search(N, rep.search_dimension, b_rel=b, **kw)
        assert cs.is_constellation(r.U, r.V, m, b), N  # verified from the vectors
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(Ns, [r.search_dimension or np.nan for r in rows], "o-", label="max-margin search (verified)")
ax.plot(Ns, [r.construction_dimension or np.nan for r in rows], "s-", label="Theorem 3.3 construction")
ax.plot(Ns, [r.asymptotic_necessary_C8 for r in rows], "k:", label="C8 estimate (asymptotic)")
ax.set(xscale="log", xlabel="N pairs", ylabel="dimension d", title=f"(m, b_rel) = ({m}, {b})")
ax.legend()
plt.show()
found = [r.search_dimension for r in rows if r.search_dimension is not None]
assert found == sorted(found), "more pairs never need fewer dimensions in this search"

# %% [markdown]
# ## 4. How many dimensions for N = 10^k pairs at margin m?
#
# At a given margin the smallest dimension is reached on the code line b_rel = 1 - m (C8's exponent grows with
# b_rel and C7 caps b_rel at 1 - m), where finite-d bounds are rigorous. "bound" is the smallest d the upper bounds
# do not rule out (below it, no such constellation exists); "built" is the smallest d in which a code of the package
# has N points; C8 and C6 are the asymptotic estimates.

# %%
ks = [2, 3, 4] if QUICK else [2, 3, 4, 5, 6]
margins = [0.05, 0.1, 0.2]
lines = ["| N | m | bound (rigorous) | built here | C8 estimate (asymptotic) |", "|---|---|---|---|---|"]
table = {}
for k in ks:
    for m in margins:
        rep = dimension.necessary_dimension(10**k, m, 1 - m, use_lp=not QUICK)
        table[(k, m)] = rep
        lines.append(f"| 10^{k} | {m} | {rep.code_bound_dimension} | {rep.construction_dimension} | "
                     f"{rep.asymptotic_necessary_C8:.1f} |")
display(Markdown("\n".join(lines)))
for (k, m), rep in table.items():
    assert rep.on_code_line and rep.code_bound_dimension >= 1
    assert rep.construction_dimension is None or rep.construction_dimension >= rep.code_bound_dimension
