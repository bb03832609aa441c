"""Benchmarks of the migex node: each prints its figures beside its target.

Run them all with ``bash benchmarks/run`` (``--quick`` for a short pass, ``--only NAME``
for one of load, append, proofs, verify, delivery).
"""
