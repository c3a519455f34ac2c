"""SecAgg+ server: FedAvg's fit rounds through ``SecAggPlusWorkflow``, with the Grid wrapped to
time each of the protocol's four exchanges and count the bytes each message carries.

Run config ``fhto-config`` names the settings file (JSON): ``values``, ``rounds``, ``nodes``,
``poll`` (seconds between pulls: null keeps Flower's own ``send_and_receive``, which waits 3 s
between pulls) and ``result``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np
from flwr.app import Context, Message
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common.recorddict_compat import arrayrecord_to_parameters
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from secagg import SPREAD

app = ServerApp()


def content_bytes(message: Message) -> int:
    """Bytes a message's records hold: array data, and config and metric values (bytes and
    strings by length, numbers as 8, booleans as 1, lists element by element), counted here
    because Flower 1.42's ``ConfigRecord.count_bytes`` fails on an empty list, which SecAgg+ sends."""
    if message.has_error():
        return 0
    c = message.content

    def size(value) -> int:
        if isinstance(value, list):
            return sum(size(v) for v in value)
        if isinstance(value, (bytes, str)):
            return len(value)
        return 1 if isinstance(value, bool) else 8

    arrays = sum(len(a.data) for record in c.array_records.values() for a in record.values())
    return arrays + sum(size(v) for records in (c.config_records, c.metric_records)
                        for record in records.values() for v in record.values())


class MeasuredGrid:
    """A Grid whose ``send_and_receive`` records each exchange: seconds and bytes per message."""

    def __init__(self, grid: Grid, poll: Optional[float]) -> None:
        self._grid, self.poll, self.exchanges = grid, poll, []

    def __getattr__(self, name: str):
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: Optional[float] = None) -> List[Message]:
        messages = list(messages)
        sent = [content_bytes(m) for m in messages]
        stage = next((str(m.content.config_records[k]["stage"]) for m in messages for k in m.content.config_records
                      if "stage" in m.content.config_records[k]), messages[0].metadata.message_type if messages else "")
        t = time.perf_counter()
        if self.poll is None:
            replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        else:
            replies = self._poll(messages, timeout)
        self.exchanges.append({"stage": stage, "seconds": time.perf_counter() - t, "sent": sent,
                               "received": [content_bytes(r) for r in replies]})
        return replies

    def _poll(self, messages: List[Message], timeout: Optional[float]) -> List[Message]:
        waiting = {i for i in self._grid.push_messages(messages) if i}
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        replies: List[Message] = []
        while waiting and time.monotonic() < deadline:
            for reply in self._grid.pull_messages(list(waiting)):
                waiting.discard(reply.metadata.reply_to_message_id)
                replies.append(reply)
            if waiting:
                time.sleep(self.poll)
        return replies


def timed(workflow, rounds: List[float]):
    def run(grid, context) -> None:
        t = time.perf_counter()
        workflow(grid, context)
        rounds.append(time.perf_counter() - t)

    return run


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = json.loads(Path(str(context.run_config["fhto-config"])).read_text())
    values, n, rounds = int(settings["values"]), len(settings["nodes"]), int(settings["rounds"])
    strategy = FedAvg(fraction_fit=1.0, min_fit_clients=n, min_available_clients=n, fraction_evaluate=0.0,
                      min_evaluate_clients=0, initial_parameters=ndarrays_to_parameters([np.zeros(values)]))
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
    measured, round_seconds = MeasuredGrid(grid, settings.get("poll")), []
    secagg = SecAggPlusWorkflow(num_shares=n, reconstruction_threshold=max(2, n - 1), timeout=600.0)
    t = time.perf_counter()
    DefaultWorkflow(fit_workflow=timed(secagg, round_seconds))(measured, legacy)
    total = time.perf_counter() - t
    final = parameters_to_ndarrays(
        arrayrecord_to_parameters(legacy.state.array_records["parameters"], keep_input=True))[0]
    expected = rounds * sum(np.random.default_rng(1000 + p).uniform(-SPREAD, SPREAD, values) for p in range(n)) / n
    out = {"values": values, "nodes": n, "rounds": round_seconds, "workflow_s": total, "exchanges": measured.exchanges,
           "max_abs_error": float(np.max(np.abs(final - expected))), "poll": settings.get("poll")}
    Path(settings["result"]).write_text(json.dumps(out, indent=1))
