"""The synthetic hospital: encrypts a random update of the plan's length; the key holder decrypts
sums. Node config: ``keys`` (the key set file), ``partition-id``, ``key-holder`` (bool) and
``report`` (a file each handler appends its timings and peak memory to)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp

from bench_app import SAMPLES, SPREAD, append_json, peak, rss
from fhto_native import KeySet
from fhto_native.fl.flower.messages import bytes_record, record_bytes
from fhto_native.fl.keyholder import KeyHolder
from fhto_native.fl.protocol import HospitalUpdate, RoundPlan, contribution

app = ClientApp()


@app.train()
def train(message: Message, context: Context) -> Message:
    config = context.node_config
    pid = int(config["partition-id"])
    seconds, t = {}, time.perf_counter()
    start_rss = rss()
    keys = KeySet.load(Path(str(config["keys"])))
    seconds["load-keys"], t = time.perf_counter() - t, time.perf_counter()
    plan = RoundPlan.from_wire(record_bytes(message, "plan"))
    seconds["read-plan"], t = time.perf_counter() - t, time.perf_counter()
    update = np.random.default_rng(plan.seed).uniform(-SPREAD, SPREAD, plan.weights.size)
    seconds["draw-update"], t = time.perf_counter() - t, time.perf_counter()
    batch = keys.encrypt(contribution(update, 0.5), weight=SAMPLES, parties=plan.parties, threads=1)
    seconds["encrypt"], t = time.perf_counter() - t, time.perf_counter()
    wire = HospitalUpdate(f"hospital {pid + 1}", plan.round, payload=batch.to_bytes()).to_wire()
    del batch
    seconds["to-wire"], t = time.perf_counter() - t, time.perf_counter()
    record = bytes_record(wire)
    seconds["bytes-record"] = time.perf_counter() - t
    append_json(str(config["report"]), {"handler": "train", "partition": pid, "seconds": seconds,
                                        "upload_bytes": len(wire), "rss_at_start": start_rss, "peak": peak()})
    return Message(RecordDict({"update": record}), reply_to=message)


@app.query("decrypt")
def decrypt(message: Message, context: Context) -> Message:
    config = context.node_config
    if not bool(config.get("key-holder", False)):
        raise RuntimeError("this node does not hold the key")
    t = time.perf_counter()
    holder = KeyHolder(KeySet.load(Path(str(config["keys"]))), min_contributions=2)
    data = record_bytes(message, "sum")
    total = holder.decrypt_sum(data)
    seconds = {"decrypt": time.perf_counter() - t}
    append_json(str(config["report"]), {"handler": "decrypt", "partition": int(config["partition-id"]),
                                        "seconds": seconds, "sum_bytes": len(data), "peak": peak()})
    return Message(RecordDict({"plain": bytes_record(np.ascontiguousarray(total, dtype="<f8").tobytes())}),
                   reply_to=message)
