"""The model stage: fabric designs, the cost of each collective on them, fitting it to measurements, predicting.

topology (TOML -> Topology, sizing, bill of materials) -> cost (per-algorithm cost terms, NCCL's protocols) ->
fit (measurements -> fitted Topology with its FitSummary) -> predict (Topology -> predictions with bands).
Imports no MPI and no CuPy: it runs anywhere, from records alone.
"""
