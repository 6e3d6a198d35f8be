"""Phase-aware weight-space-learning benchmarks on any zoo ``datasets.load_dataset`` reads.

``phasezoo benchmark ZOO`` predicts, from the weights alone, a checkpoint's test accuracy, its
generalization gap, its cell's phase and its temperature and load values, with the field's
baselines (hyperparameters-only gradient boosting, LayerQuintiles + linear probe, per-layer
statistics + gradient boosting or an MLP, HT-SR features + gradient boosting, raw weights + linear
model, a permutation-invariant NFN) and any user's method, on the splits a zoo ships (random,
leave-one-phase-out, scale transfer; :mod:`phasezoo.splits`), scored overall and per phase.
Modules: :mod:`~phasezoo.wsl.table` (loading), :mod:`~phasezoo.wsl.features`,
:mod:`~phasezoo.wsl.methods` (your own method), :mod:`~phasezoo.wsl.nfn`,
:mod:`~phasezoo.wsl.neuron_sets` (the learned baseline for every architecture),
:mod:`~phasezoo.wsl.symmetry` (permutation augmentation and alignment of rows; beneath it
:mod:`~phasezoo.wsl.permutation_spec`, :mod:`~phasezoo.wsl.permutation_rules`,
:mod:`~phasezoo.wsl.weight_matching`),
:mod:`~phasezoo.wsl.benchmark` (runs :mod:`~phasezoo.wsl.baselines` on the splits of
:mod:`~phasezoo.wsl.subsets` through :mod:`~phasezoo.wsl.fit_steps`, scored by
:mod:`~phasezoo.wsl.scoring`), :mod:`~phasezoo.wsl.benchmark_report`,
:mod:`~phasezoo.wsl.report` (report files written atomically, JSON last),
:mod:`~phasezoo.wsl.studies`, :mod:`~phasezoo.wsl.regimes` (the three-regime model of pruning).
"""
