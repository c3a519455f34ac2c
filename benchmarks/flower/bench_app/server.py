"""The synthetic round's server: plans out, encrypted updates summed one at a time, the sum
decrypted by the key holder; timings, message sizes and this process's memory per phase.

Run config ``fhto-config`` names the settings file the launcher wrote (JSON): ``values``,
``public`` (the public context file), ``nodes`` (partition id -> node id), ``key_holder`` (a
partition id), ``collect`` and ``result`` (where this writes what it measured).

``collect = "transport"`` gathers the updates as the study's server does: every plan out and
every update back through :class:`~fhto_native.fl.flower.transport.FlowerTransport`, then the
sum, with the updates kept until the decrypted sum is back (as
:class:`~fhto_native.fl.server.Server` keeps them). ``collect = "stream"`` pushes the plans,
drops them, and pulls one reply at a time, adding each upload to the sum before the next is
pulled.
"""
from __future__ import annotations

import ctypes
import gc
import json
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from bench_app import SAMPLES, SPREAD, peak, reset_peak, rss
from fhto_native import Accumulator, PublicContext
from fhto_native.fl.flower.messages import POLL_SECONDS, bytes_record, record_bytes
from fhto_native.fl.flower.transport import Federation, FlowerTransport, RemoteKeyHolder, study_record
from fhto_native.fl.protocol import HospitalUpdate, RoundPlan, split_sum

app = ServerApp()
STUDY = "bench"
_libc = ctypes.CDLL("libc.so.6")


def _plans(weights: np.ndarray, partitions: List[int]) -> Dict[int, RoundPlan]:
    return {p: RoundPlan(round=1, weights=weights, eta0=0.05, alpha=0.0, local_epochs=1, batch_size=16,
                         seed=1000 + p, parties=len(partitions)) for p in partitions}


def _streamed(grid: Grid, nodes: Dict[int, int], plans: Dict[int, RoundPlan], acc: Accumulator,
              timeout: float, adds: List[float]) -> None:
    """Plans out, then one reply at a time into the sum; nothing but the sum and one upload kept."""
    tag = study_record(STUDY, len(nodes))
    messages = [Message(RecordDict({"plan": bytes_record(plans[p].to_wire()), "study": tag}),
                        dst_node_id=nodes[p], message_type="train", group_id="round 1") for p in plans]
    waiting = {i for i in grid.push_messages(messages) if i}
    del messages
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for sent in list(waiting):
            replies = list(grid.pull_messages([sent]))
            if not replies:
                continue
            waiting.discard(sent)
            if replies[0].has_error():
                raise RuntimeError(f"a hospital failed: {replies[0].error.reason}")
            data = record_bytes(replies[0], "update")
            del replies
            update = HospitalUpdate.from_wire(data)
            del data
            t = time.perf_counter()
            acc.add(update.payload)
            adds.append(time.perf_counter() - t)
            del update
        if waiting:
            time.sleep(POLL_SECONDS)
    if waiting:
        raise RuntimeError(f"{len(waiting)} hospitals did not answer within {timeout:g} s")


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = json.loads(Path(str(context.run_config["fhto-config"])).read_text())
    values, timeout = int(settings["values"]), float(settings.get("timeout", 1200))
    nodes = {int(p): int(n) for p, n in settings["nodes"].items()}
    public = PublicContext.load(settings["public"])
    federation = Federation({f"hospital {p + 1}": n for p, n in nodes.items()},
                            f"hospital {int(settings['key_holder']) + 1}")
    memory, seconds, sizes = {"baseline": rss()}, {}, {}
    t_round = time.perf_counter()

    def phase(name: str, t0: float) -> float:
        seconds[name], memory[f"peak {name}"] = time.perf_counter() - t0, peak()
        memory[f"after {name}"] = rss()
        gc.collect()
        _libc.malloc_trim(0)  # what is still resident after this is in use, not kept by the allocator
        memory[f"after {name}, trimmed"] = rss()
        reset_peak()
        return time.perf_counter()

    reset_peak()
    t = time.perf_counter()
    weights = np.random.default_rng(0).normal(0.0, 0.1, values)  # the global model the server holds
    plans = _plans(weights, sorted(nodes))
    t = phase("model", t)
    acc, adds, updates = Accumulator(public, threads=1), [], []
    if settings["collect"] == "transport":
        # As the study's Server: the round's updates stay referenced until the decrypted sum is back.
        updates, failures = FlowerTransport(grid, federation, STUDY).exchange(
            {f"hospital {p + 1}": plan for p, plan in plans.items()}, timeout)
        if failures:
            raise RuntimeError(f"hospitals failed: {failures}")
        del plans
        t = phase("exchange", t)
        for update in updates:
            t_add = time.perf_counter()
            acc.add(update.payload)
            adds.append(time.perf_counter() - t_add)
        del update  # the list keeps them
        t = phase("add", t)
    else:
        _streamed(grid, nodes, plans, acc, timeout, adds)
        del plans
        t = phase("exchange+add", t)
    summed = acc.result().to_bytes()
    sizes["sum"] = len(summed)
    del acc
    t = phase("serialize sum", t)
    total = RemoteKeyHolder(grid, federation, timeout, STUDY).decrypt_sum(summed)
    sizes["plain"] = 8 * total.size
    del summed, updates
    t = phase("decrypt exchange", t)
    seconds["round"] = time.perf_counter() - t_round
    sizes["plan"] = len(_plans(weights, [0])[0].to_wire())  # the uploads' sizes: in the hospitals' reports
    result = split_sum(total, len(nodes))
    del total
    error = 0.0
    if settings.get("check", True):  # against the plaintext mean of the same updates, in chunks
        streams = [np.random.default_rng(1000 + p) for p in sorted(nodes)]
        for lo in range(0, values, 1 << 20):
            n = min(1 << 20, values - lo)
            mean = sum(s.uniform(-SPREAD, SPREAD, n) for s in streams) / len(streams)
            error = max(error, float(np.max(np.abs(result.weighted_sum[lo:lo + n] / result.total_n - mean))))
    out = {"values": values, "collect": settings["collect"], "nodes": len(nodes), "seconds": seconds,
           "adds": adds, "sizes": sizes, "memory": memory, "total_n": result.total_n,
           "expected_total_n": SAMPLES * len(nodes), "max_abs_error": error}
    Path(settings["result"]).write_text(json.dumps(out, indent=1))
