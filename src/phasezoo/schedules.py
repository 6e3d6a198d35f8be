"""Learning-rate schedules as pure functions of the global step (a resumed run needs no
scheduler state): ``constant``, ``step`` (milestones × gamma) and ``onecycle``."""

from __future__ import annotations

import math

from phasezoo.settings import TrainSettings


def lr_at(step: int, steps_per_epoch: int, train: TrainSettings) -> float:
    """Learning rate at global ``step`` (0-based) for the cell's schedule.

    ``onecycle`` reproduces ``torch.optim.lr_scheduler.OneCycleLR`` (cosine, div_factor 25,
    final_div_factor 1e4, momentum not cycled) as a pure function of the step, so resuming needs
    no scheduler state.
    """
    peak, schedule = train.lr, train.schedule
    if schedule == "constant":
        return peak
    if schedule == "step":
        epoch = step // steps_per_epoch
        return peak * train.step_gamma ** sum(epoch >= m for m in train.step_milestones)
    total = train.epochs * steps_per_epoch
    start, end = peak / 25.0, peak / 25.0 / 1e4
    warm_end = float(train.onecycle_pct_start * total) - 1
    if step <= warm_end:
        return _cos(start, peak, step / warm_end)
    return _cos(peak, end, (step - warm_end) / (total - 1 - warm_end))


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
