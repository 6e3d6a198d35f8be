"""The MD tree (Zhou et al., ICML 2024): fixed-shape shallow trees over loss-landscape metrics
whose thresholds are fitted one at a time.

Each tree is a nested :class:`Node` with the shape, initial thresholds and bounds of the
reference code (YefanZhou/ModelDiagnosis, ``method/md_tree.py``; see
``docs/md-tree-protocol.md``). Every node owns one threshold ``slot``; a row goes left when its
feature is ``<=`` the slot's threshold (a NaN feature goes right, as NumPy compares it).
Leaves name the class they predict; there is no majority vote.

Two fits:

* ``"sweep"`` (the reference): one pass over the slots in order, each set by
  :func:`scipy.optimize.minimize_scalar` (bounded) on the train accuracy with the others held.
  The objective is piecewise constant, so this finds *a* local point; the paper's numbers come
  from this optimizer.
* ``"exhaustive"``: coordinate ascent over every candidate threshold (midpoints between the
  train rows' sorted feature values, within the bounds) until no slot changes; never worse on
  the train rows than the sweep started from the same point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar



@dataclass(frozen=True)
class Node:
    """``feature <= thresholds[slot]`` → ``left``, else ``right`` (a Node or a class name)."""

    feature: str
    slot: int
    left: "Node | str"
    right: "Node | str"


@dataclass(frozen=True)
class TreeSpec:
    """A tree shape with its initial thresholds and each slot's search bounds."""

    root: Node
    init: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]

    def features(self) -> list[str]:
        """The frame columns the tree reads, in first-use order."""
        out: list[str] = []
        _walk(self.root, lambda n: out.append(n.feature) if n.feature not in out else None)
        return out

    def slot_features(self) -> dict[int, str]:
        """Each slot's feature."""
        out: dict[int, str] = {}
        _walk(self.root, lambda n: out.__setitem__(n.slot, n.feature))
        return out


def _walk(node: "Node | str", visit) -> None:
    if isinstance(node, Node):
        visit(node)
        _walk(node.left, visit)
        _walk(node.right, visit)


TE, MCP, HT, CKA = "train_error", "mode_connectivity_peak", "hessian_t", "CKA"
# Q1, temperature too small or too large (bs_failure): the paper's MD tree and its CKA variant.
TEMP = TreeSpec(Node(TE, 0, "small", Node(MCP, 1, Node(HT, 2, "large", "small"), "large")),
                (0.5, -10.0, 7.0), ((0, 1), (-30, 0), (4, 9)))
TEMP_CKA = TreeSpec(Node(TE, 0, "small", Node(MCP, 1, Node(CKA, 2, "small", "large"), "large")),
                    (0.5, -10.0, 0.5), ((0, 1), (-30, 0), (0.2, 0.8)))
# Q2, is the load (width or data) or the batch size the failure source.
WIDTH = TreeSpec(Node(TE, 0, Node(MCP, 1, "width", "batch"), Node(MCP, 2, "width", "batch")),
                 (0.5, -10.0, -10.0), ((0, 1), (-30, 0), (-30, 0)))
DATA = TreeSpec(
    Node(TE, 0,
         Node(MCP, 1, Node(HT, 4, "data", "batch"), Node(HT, 2, "data", "batch")),
         Node(MCP, 3, "batch", Node(HT, 5, "data", "batch"))),
    (0.5, -10.0, 7.0, -10.0, 7.0, 7.0),
    ((0, 1), (-30, 0), (4, 9), (-30, 0), (4, 9), (4, 9)))
TREES = {"bs_failure": TEMP, "width_vs_batch": WIDTH, "data_vs_batch": DATA}


def predict(tree: "Node | str", frame: pd.DataFrame, thresholds: np.ndarray) -> np.ndarray:
    """The class of every row of ``frame`` under ``thresholds``."""
    out = np.empty(len(frame), dtype=object)
    _fill(tree, {c: frame[c].to_numpy(float) for c in _columns(tree)}, np.asarray(thresholds),
          np.ones(len(frame), dtype=bool), out)
    return out


def _columns(tree: "Node | str") -> set[str]:
    cols: set[str] = set()
    _walk(tree, lambda n: cols.add(n.feature))
    return cols


def _fill(node: "Node | str", x: dict[str, np.ndarray], t: np.ndarray, mask: np.ndarray,
          out: np.ndarray) -> None:
    if not isinstance(node, Node):
        out[mask] = node
        return
    left = x[node.feature] <= t[node.slot]
    _fill(node.left, x, t, mask & left, out)
    _fill(node.right, x, t, mask & ~left, out)


def fit_thresholds(spec: TreeSpec, frame: pd.DataFrame, labels: np.ndarray,
                   search: str = "sweep") -> np.ndarray:
    """Thresholds of ``spec`` fitted to ``labels`` on ``frame`` (see the module docstring).

    Raises:
        ValueError: on an unknown ``search`` or a missing feature column.
    """
    missing = [c for c in spec.features() if c not in frame]
    if missing:
        raise ValueError(f"MD tree: feature column '{missing[0]}' is missing")
    labels = np.asarray(labels, dtype=object)
    t = np.array(spec.init, dtype=float)

    def accuracy(value: float, slot: int) -> float:
        trial = t.copy()
        trial[slot] = value
        return float(np.mean(predict(spec.root, frame, trial) == labels))

    if search == "sweep":
        for slot, (lo, hi) in enumerate(spec.bounds):
            t[slot] = minimize_scalar(lambda v, s=slot: -accuracy(v, s), method="bounded",
                                      bounds=(lo, hi)).x
        return t
    if search != "exhaustive":
        raise ValueError(f"MD tree: search '{search}' is not sweep or exhaustive")
    slots = spec.slot_features()
    candidates = {s: _candidates(frame[slots[s]].to_numpy(float), *spec.bounds[s]) for s in slots}
    best = accuracy(t[0], 0)
    for _ in range(20):  # coordinate ascent; each pass can only raise the train accuracy
        changed = False
        for slot, values in candidates.items():
            scores = [accuracy(v, slot) for v in values]
            i = int(np.argmax(scores))
            if scores[i] > best:
                t[slot], best, changed = values[i], scores[i], True
        if not changed:
            break
    return t


def _candidates(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The bounds and the midpoints between consecutive distinct finite values inside them."""
    v = np.unique(values[np.isfinite(values)])
    mids = (v[1:] + v[:-1]) / 2
    return np.unique(np.concatenate([[lo, hi], mids[(mids >= lo) & (mids <= hi)]]))
