"""Phase-aware weight-space-learning benchmarks on any zoo ``datasets.load_dataset`` reads.

``phasezoo benchmark ZOO`` predicts, from the weights alone, a checkpoint's test accuracy, its
generalization gap, its cell's phase and its temperature and load values, with the field's
baselines (hyperparameters-only gradient boosting, LayerQuintiles + linear probe, per-layer
statistics + gradient boosting, HT-SR features + gradient boosting, raw weights + linear model),
on splits grouped by cell (random, leave-one-phase-out, scale transfer), scored overall and per
phase. Modules: :mod:`~phasezoo.wsl.table` (loading), :mod:`~phasezoo.wsl.features`,
:mod:`~phasezoo.splits`, :mod:`~phasezoo.wsl.benchmark` (baselines, scores, report),
:mod:`~phasezoo.wsl.report` (report files written atomically, JSON last).
"""
