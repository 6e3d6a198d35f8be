"""Loss-landscape metrics: Hessian spectrum (``hessian``), seed similarity (``similarity``),
connectivity between seeds (``connectivity``), and the per-cell pair table (``pairs``)."""

from phasezoo.landscape.connectivity import interpolate, interpolation_barrier
from phasezoo.landscape.hessian import (
    HessianOperator,
    HessianSummary,
    hessian_density,
    hessian_summary,
    hessian_top_eigenvalue,
    hessian_trace,
)
from phasezoo.landscape.similarity import linear_cka

__all__ = [
    "HessianOperator", "HessianSummary", "hessian_density", "hessian_summary",
    "hessian_top_eigenvalue", "hessian_trace", "interpolate", "interpolation_barrier", "linear_cka",
]
