"""The analysis plan of one layer: where its eigenvalues will be once the batched eigensolve
has run. Shared by ``analysis`` (which plans every layer) and ``farms`` (which fits the FARMS
ESDs a plan names), so neither imports the other's internals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from phasezoo.htsr.spectra import Slot


@dataclass
class LayerPlan:
    """One analysed layer: where its ESD's (and FARMS ESDs') eigenvalues will be."""

    name: str
    kind: str
    shape: str
    main: Slot
    scale: float
    farms: list[Slot] = field(default_factory=list)
    farms_window_evals: float = math.nan  # eigenvalues per FARMS window (NaN: FARMS off)
