"""Run one app on a fresh local Flower deployment (the benchmarks' shared launcher step).

The app's modules live next to this file and reach the Flower processes through ``PYTHONPATH``;
the ServerApp reads its settings from the JSON file named by run config ``fhto-config`` and
writes what it measured to ``settings["result"]``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, Mapping, Tuple

from fhto_native.fl.flower.launch import DeploymentError, LocalDeployment, write_app

HERE = Path(__file__).resolve().parent


def run_app(folder: Path, server_app: str, client_app: str, nodes: Mapping[str, Mapping[str, object]],
            settings: Dict[str, object], timeout: float) -> Tuple[dict, dict]:
    """Start a SuperLink and ``nodes``, run the app once, stop everything.

    ``settings`` is written for the ServerApp, with ``nodes`` (partition id -> node id, in the
    order of ``nodes``) and ``result`` added. Returns the ServerApp's result and the launcher's
    own numbers: seconds to start, wall seconds and Flower's traffic count for the run.
    """
    app = write_app(folder / "app", server_app, client_app)
    t0 = time.perf_counter()
    with LocalDeployment(folder / "processes") as deployment:
        deployment.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), deployment.env.get("PYTHONPATH")]))
        deployment.start(nodes)
        deadline = time.monotonic() + 60
        while len(deployment.node_ids()) < len(nodes):
            if time.monotonic() > deadline:
                raise DeploymentError("the SuperNodes did not register within 60 s")
            time.sleep(0.2)
        ids = deployment.node_ids()
        settings = {**settings, "nodes": {str(i): ids[name] for i, name in enumerate(nodes)},
                    "result": str(folder / "result.json")}
        (folder / "settings.json").write_text(json.dumps(settings))
        started = time.perf_counter() - t0
        run = deployment.submit(app, {"fhto-config": str(folder / "settings.json")})
        status = deployment.wait(run, timeout)
        if status != "finished:completed":
            print(deployment.run_log(run)[-3000:])
            raise DeploymentError(f"the run ended {status}")
        # Flower's own count of the run's Fleet traffic (SuperLink <-> SuperNodes); the CLI home is
        # the deployment's, reached through its private helper.
        done = deployment._cli("ls", "fhto-local", "--run-id", str(run), "--format", "json")  # noqa: SLF001
        traffic = json.loads(done.stdout)["runs"][0]["network-traffic"]
    launcher = {"start_s": started, "wall_s": time.perf_counter() - t0, "traffic": traffic}
    return json.loads((folder / "result.json").read_text()), launcher


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"
