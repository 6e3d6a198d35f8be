"""The words the stages share: the phase labels, their colours, and which kept epoch is the
landscape epoch.

Why a module of its own: metrics, pairs, phases, publish, the plots and the studies' report
each read these, and none of them should import another stage to get them (a stage's module
pulls in its own dependencies, and two stages that import each other form a circle). Nothing
here imports torch or another phasezoo module.
"""

from __future__ import annotations

# The taxonomy's phases (Yang et al. 2021), in the order tables and legends list them.
PHASES = ("I", "II", "III", "IV-A", "IV-B")
# A cell whose seeds all diverged, and one whose metrics cannot be labelled (non-finite).
DIVERGED, UNLABELLED = "diverged", "unlabelled"
# One colour per label, the same in every picture (phase diagram, profiles, studies' report).
PHASE_COLORS = {"I": "#d62728", "II": "#ff7f0e", "III": "#9467bd", "IV-A": "#2ca02c",
                "IV-B": "#1f77b4", DIVERGED: "#7f7f7f", UNLABELLED: "#dddddd"}


def landscape_epoch_of(kept: list[int], requested: int) -> int:
    """The kept epoch that ``metrics.landscape_epoch`` names (-1 = the last kept one).

    Raises:
        ValueError: if ``requested`` is not one of the ``kept`` epochs.
    """
    epoch = kept[-1] if requested == -1 else requested
    if epoch not in kept:
        raise ValueError(f"metrics.landscape_epoch={epoch} is not a kept epoch {kept}")
    return epoch
