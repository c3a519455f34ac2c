"""SecAgg+ client: a legacy NumPyClient behind ``secaggplus_mod`` that returns the received
parameters plus a fixed random update (node config ``partition-id`` seeds it)."""
from __future__ import annotations

import numpy as np
from flwr.app import Context
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod

from secagg import SAMPLES, SPREAD


class SyntheticClient(NumPyClient):
    def __init__(self, partition: int) -> None:
        self.partition = partition

    def fit(self, parameters, config):
        rng = np.random.default_rng(1000 + self.partition)
        return [p + rng.uniform(-SPREAD, SPREAD, p.shape) for p in parameters], SAMPLES, {}


def client_fn(context: Context):
    return SyntheticClient(int(context.node_config["partition-id"])).to_client()


app = ClientApp(client_fn=client_fn, mods=[secaggplus_mod])
