"""The federated layer on top of the CKKS engine: round protocol, aggregation server, key holder
and the adaptive learning-rate scheduler.

It needs numpy only: the server works on flat weight vectors and scores them through a callback,
and hospitals are callables, so no model object or patient row ever reaches it. The study
(:mod:`fhto_native.study`) builds hospitals and models on top of it. See docs/ARCHITECTURE.md.
"""
