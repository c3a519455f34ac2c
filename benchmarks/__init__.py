"""Micro-benchmarks of the fhto_native engine (run: python -m pytest benchmarks/ --benchmark-only).

A package so that its ``conftest`` module is imported as ``benchmarks.conftest`` and does not
shadow ``tests/conftest.py`` (which the tests import by name) when both directories are
collected in one run.
"""
