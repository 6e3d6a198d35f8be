"""An example weight-space-learning method for ``phasezoo benchmark --method``.

It predicts from each trainable tensor's log mean square (read one row at a time, so it also
runs on zoos larger than memory) plus the grid coordinates it may see, with a ridge model
chosen on the validation rows. Score it beside the built-in baselines:

    phasezoo benchmark zoos/mnist-mlp --out results/mine --method examples/wsl_method.py:NormRidge

A method is any object with ``fit(train, y, val, y_val, kind, seed)`` and ``predict(rows)``
(:class:`phasezoo.wsl.methods.Method`); ``train``, ``val`` and ``rows`` are
:class:`phasezoo.wsl.methods.Rows`, which never hold a target column.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.metrics import accuracy_score, r2_score


class NormRidge:
    name = "norms+ridge"  # the column name in benchmark.md

    def features(self, rows) -> np.ndarray:
        grid = rows.meta  # ids and grid coordinates; the task's own column is left out
        coords = [np.log2(grid[c].to_numpy(float)) for c in ("temperature_value", "load_value")
                  if c in grid]
        norms = []
        for w, layout in zip(rows.weights(), rows.layouts):
            tensors = [e for e in layout["entries"] if e.get("kind", "parameter") == "parameter"]
            norms.append([np.log(np.mean(np.square(
                w[e["offset"]:e["offset"] + int(np.prod(e["shape"]))], dtype=np.float64)) + 1e-12)
                for e in tensors])
        return np.column_stack([np.asarray(norms), *coords])

    def fit(self, train, y, val, y_val, kind, seed) -> None:
        x, x_val = self.features(train), self.features(val)
        model = Ridge if kind == "regression" else RidgeClassifier
        score = r2_score if kind == "regression" else accuracy_score
        fits = [model(alpha=a).fit(x, y) for a in (0.01, 1.0, 100.0)]
        self.model = max(fits, key=lambda m: score(y_val, m.predict(x_val)))

    def predict(self, rows) -> np.ndarray:
        return self.model.predict(self.features(rows))
