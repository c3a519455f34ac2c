"""Memory of each step that carries one FHTO upload through a Flower message, in one process
(no deployment): what the ServerApp's peaks in ``bench_round.py`` are made of.

    .venv/bin/python benchmarks/flower/message_copies.py [--bytes 180148922]

Each step prints its peak resident memory above the memory before it (``VmHWM`` reset through
``/proc/self/clear_refs``) and what it keeps, in units of the upload's size. The send side is
``bytes_record`` and the deflated objects Flower pushes (one per 5 MiB chunk); the receive side is
Flower's inflation from the pulled contents, ``record_bytes`` and the body slice of
``HospitalUpdate.from_wire``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable, List, Optional

from fhto_native.fl.flower.messages import bytes_record, record_bytes
from fhto_native.fl.protocol import HospitalUpdate
from flwr.app import Message, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents
from flwr.supercore.task_identity import TaskIdentity


def _status(field: str) -> int:
    return next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith(field + ":"))


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bytes", type=int, default=180_148_922,
                   help="encrypted payload size (default: a ResNet-50 upload, compact)")
    size = p.parse_args(argv).bytes
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 1  # a Message needs them outside an app

    def step(name: str, fn: Callable[[], object]) -> object:
        before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        out = fn()
        print(f"| {name} | {(_status('VmHWM') - before) / size:.2f} | {(_status('VmRSS') - before) / size:.2f} |")
        return out

    held = {"wire": HospitalUpdate("hospital 1", 1, payload=os.urandom(size)).to_wire()}  # what is alive
    print(f"upload: {len(held['wire']):,} bytes\n")
    print("| step | peak above before (uploads) | kept (uploads) |\n|---|---|---|")
    record = step("send: bytes_record (np.save into the Array)", lambda: bytes_record(held["wire"]))
    held["message"] = Message(RecordDict({"update": record}), dst_node_id=1, message_type="train")
    del record
    held["objects"] = step("send: nested objects (chunks are memoryviews)",
                           lambda: get_all_nested_objects(held["message"]))
    held["contents"] = step("send: deflate every object (the pushed bytes)",
                            lambda: {k: o.deflate() for k, o in held["objects"].items()})
    root = held.pop("message").object_id
    del held["objects"]
    held["pulled"] = step("receive: inflate the message from the pulled contents",
                          lambda: inflate_object_from_contents(root, held.pop("contents")))
    held["data"] = step("receive: record_bytes (np.load, then tobytes)",
                        lambda: record_bytes(held.pop("pulled"), "update"))
    step("receive: HospitalUpdate.from_wire (the body is a slice)", lambda: HospitalUpdate.from_wire(held["data"]))


if __name__ == "__main__":
    main()
