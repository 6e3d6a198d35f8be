"""Weight matching: the permutation of one model that best matches another, by git-re-basin's
coordinate descent (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin",
github.com/samuela/git-re-basin, ``src/weight_matching.py``).

Each group in turn gets the permutation maximising Σ ⟨W_ref, P·W_other⟩ over its entries with the
others held fixed (``scipy.optimize.linear_sum_assignment``), until a sweep improves nothing.
The first sweep goes input to output and matches each group by what produces its units (a
layer's incoming weights and bias, the normalisation after it), in entries whose other groups
are already matched: on its own (``max_sweeps=1``) it is the one-pass matching of a chain, layer
by layer, that :mod:`phasezoo.wsl.studies` runs. An attention group is matched exactly under its
structure: the value of pairing two heads is the best within-head assignment of q/k plus that of
v/out, and the heads are assigned on those values.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from phasezoo.wsl.permutation_spec import (Axis, Group, Permutation, PermutationSpec, compose,
                                           identity, permute_tensor)


def _features(t: torch.Tensor, ax: Axis, units: int) -> torch.Tensor:
    """The slice of ``t`` an axis covers as ``units`` rows, one per index of its group."""
    return t.movedim(ax.axis, 0)[ax.start:ax.start + units * ax.unit].reshape(units, -1)


def _costs(ref: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
           spec: PermutationSpec, perm: Permutation, g: Group,
           seen: set[str] | None) -> list[torch.Tensor | None]:
    """Per family of ``g``: Σ ⟨ref row i, other row j⟩ over its axes, ``other`` permuted by
    every other group. With ``seen`` (the forward sweep): only the axes that produce the units,
    in entries whose other groups are all in ``seen`` (already matched)."""
    touched, out = spec.entries(), []
    for family in g.families:
        cost = None
        for ax in family:
            if ax.key in spec.buffers or (seen is not None and not (
                    ax.produces and all(h.name in seen for h, _, _ in touched[ax.key]))):
                continue
            moves = [(a, perm[h.name][f]) for h, f, a in touched[ax.key]
                     if not (h is g and a.axis == ax.axis)]
            r = _features(ref[ax.key], ax, g.size)
            o = _features(permute_tensor(other[ax.key], moves), ax, g.size)
            term = r.float() @ o.float().T
            cost = term if cost is None else cost + term
        out.append(cost)
    return out


def _lsa(cost: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost, maximize=True)[1]


def _assign(costs: list[np.ndarray], g: Group) -> list[torch.Tensor]:
    """The best index vectors of ``g`` for these family costs: for whole units, one assignment
    on the summed costs; for heads, each pair of heads scored by its best within-head
    assignments (per family), then the heads assigned on those scores."""
    d = g.head_dim
    if d == 1:
        best = _lsa(sum(costs))
        return [torch.as_tensor(best, dtype=torch.long) for _ in costs]
    score, within = np.zeros((g.heads, g.heads)), {}
    for f, c in enumerate(costs):
        for i in range(g.heads):
            for j in range(g.heads):
                block = c[i * d:(i + 1) * d, j * d:(j + 1) * d]
                within[f, i, j] = _lsa(block)
                score[i, j] += block[np.arange(d), within[f, i, j]].sum()
    heads = _lsa(score)
    return [compose(heads, [within[f, i, heads[i]] for i in range(g.heads)], d)
            for f in range(len(costs))]


def _value(costs: list[np.ndarray], idx: list[torch.Tensor]) -> float:
    """The objective Σ cost[i, idx[i]] over the families: what an assignment earns."""
    return float(sum(c[np.arange(len(c)), i.numpy()].sum()
                     for c, i in zip(costs, idx, strict=True)))


@torch.no_grad()
def match(reference: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor],
          spec: PermutationSpec, max_sweeps: int = 100) -> Permutation:
    """The permutation of ``other`` that best matches ``reference`` by weight matching
    (git-re-basin's coordinate descent, see the module docstring): after the forward first
    sweep, groups are revisited in order until a sweep changes none (a change must raise the
    objective by more than rounding) or ``max_sweeps`` sweeps. Deterministic."""
    perm = identity(spec)
    for sweep in range(max_sweeps):
        changed, seen = False, set()
        for g in spec.groups:
            seen.add(g.name)
            found = _costs(reference, other, spec, perm, g, None if sweep else seen)
            if all(c is None for c in found):
                continue  # nothing of it is matched yet (forward sweep): keep it as it is
            costs = [np.zeros((g.size, g.size)) if c is None else c.double().cpu().numpy()
                     for c in found]
            new = _assign(costs, g)
            old_value, new_value = _value(costs, perm[g.name]), _value(costs, new)
            if new_value > old_value + 1e-12 * max(1.0, abs(old_value)):
                perm[g.name], changed = new, True
        if sweep > 0 and not changed:
            break
    return perm
