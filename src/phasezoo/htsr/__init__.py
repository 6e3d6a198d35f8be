"""HT-SR (heavy-tailed self-regularization) metrics of weight matrices: α, FARMS α, norms.

Numbers follow WeightWatcher 0.7.7 and the FARMS reference code convention for convention (both
kept as test references), so a zoo's α means what papers report; only how the work is done
differs: one batched eigensolve per matrix shape for a whole population, and a vectorized
x_min search. Every convention, and why, is listed in ``docs/htsr.md``.
"""

from phasezoo.htsr.analysis import (
                                    COLUMNS,
                                    CONV_EIG_SCALE,
                                    FARMS_MIN_WINDOW_EVALS,
                                    MAX_EVALS,
                                    MAX_N,
                                    MIN_EVALS,
                                    analyze,
                                    analyze_many,
                                    layer_names,
                                    summarize,
)
from phasezoo.htsr.farms import FARMS_FITS, FARMS_OPS, FARMS_Q, FARMS_WINDOW
from phasezoo.htsr.fit import EVALS_THRESH, FAILED_FIT, PowerLawFit, fit_power_law
from phasezoo.htsr.spectra import squared_singular_values

__all__ = ["COLUMNS", "CONV_EIG_SCALE", "EVALS_THRESH", "FAILED_FIT", "FARMS_FITS",
           "FARMS_MIN_WINDOW_EVALS", "FARMS_OPS",
           "FARMS_Q", "FARMS_WINDOW", "MAX_EVALS", "MAX_N", "MIN_EVALS", "PowerLawFit", "analyze",
           "analyze_many", "fit_power_law", "layer_names", "squared_singular_values", "summarize"]
