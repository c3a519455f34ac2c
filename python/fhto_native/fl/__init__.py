"""The federated layer on top of the CKKS engine (numpy only: no torch, no patient data).

* :mod:`~fhto_native.fl.protocol`: what crosses machines: the round plan, the hospital update
  (``Enc(n_i * [u_i, 1, loss_i])``), their byte forms, and the aggregation math;
* :mod:`~fhto_native.fl.server`: the server's round phases and checkpoint over flat weights;
* :mod:`~fhto_native.fl.transport`: how plans and updates travel (in process here; Flower in a
  deployment);
* :mod:`~fhto_native.fl.keyholder`: the hospital-side role that decrypts only sums;
* :mod:`~fhto_native.fl.scheduler`: eta_0's schedule (server) and each hospital's own rate;
* :mod:`~fhto_native.fl.validation`: federated validation from encrypted sufficient statistics.

The study (:mod:`fhto_native.study`) builds hospitals and models on top of it. See
docs/ARCHITECTURE.md.
"""
