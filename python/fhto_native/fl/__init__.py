"""Federated treatment optimization on top of the CKKS engine.

Hospitals train a treatment-response model locally, send encrypted updates, and a server that
holds only the public context sums them; key holders decrypt the sum. See docs/ARCHITECTURE.md.
"""
