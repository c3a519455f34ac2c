"""The federated treatment-optimization study (``fhto run``): data, models, baselines, the
scheduler experiment, treatment-policy evaluation, the privacy audit and the report.

It builds on :mod:`fhto_native.fl` (rounds, server, key holder, scheduler) and the engine; the
imports go one way: study -> fl -> engine.
"""
