"""``fhto flower``: the study's encrypted method trained by a Flower deployment over real
processes, everything else as ``fhto run`` does it.

On one machine (``--local N``) the launcher prepares the cohort exactly as ``fhto run`` does (the
same split, censoring weights, encrypted federated standardization and seeded key set), then:

1. writes what each party gets, under ``OUT/flower/``: a hospital file per hospital (its rows,
   the standardization and the model settings: ``nodes/<i>.npz``), the key set (``keys/``:
   every hospital's copy of the shared key, as ``fhto keygen`` would provision it), and the
   server's settings (``server.json``: hospitals by name, the public context, the initial weights,
   the schedule, the checkpoint folder; the validation rows when validation is central);
2. starts ``flower-superlink`` and one ``flower-supernode`` per hospital, each with its hospital
   file in its node config, submits the app (:mod:`fhto_native.study.flower_app`) with
   ``flwr run``, prints the server's progress, and waits for the run to finish;
3. reads the server's verified checkpoint (the selected model and the round history), stops
   every Flower process it started (also on error and Ctrl-C), and hands the method to the
   study, which scores it on the test rows and writes the same report folder as ``fhto run``.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .._files import make_folder, refused, remove_file, write_atomic
from ..errors import ParameterError
from ..fl import checkpoint as checkpoint_file
from .cohort import Cohort
from .data import TreatmentData
from .flower_files import NodeFile, ServerSettings, write_node
from .hospital import derived_seed
from .models import flat_weights
from .results import MethodKind, RoundRecord
from .training import Trained, method_result, model_seed

__all__ = ["FlowerOptions", "flower_trainer", "describe"]
@dataclass
class FlowerOptions:
    """How ``fhto flower --local N`` deploys: hospitals' SuperNodes on this machine."""

    validation: str = "central"  #: "central" (the server's validation rows) or "federated"
    timeout: float = 1800.0  #: seconds the whole run may take
    round_timeout: float = 120.0  #: a round's deadline when the study sets none (a lost SuperNode never answers)
    restarts: int = 2  #: times a failed ServerApp is started again (it continues from its checkpoint)
    #: Called with each round's record and the deployment (tests use it to kill processes mid-run).
    on_round: Optional[Callable[[dict, object], None]] = field(default=None, repr=False)


def _validation_shares(validation: TreatmentData, parts: int, seed: int) -> List[TreatmentData]:
    """The central validation rows dealt to the hospitals (federated validation in a demo)."""
    order = np.random.default_rng(seed).permutation(len(validation))
    return [validation.subset(np.sort(order[i::parts])) for i in range(parts)]


def _prepare(
    cohort: Cohort, folder: Path, options: FlowerOptions, study: str
) -> Tuple[Dict[str, Dict[str, object]], ServerSettings]:
    """Write every hospital's files; returns each SuperNode's node config and the server's
    settings (saved once the SuperNodes' ids are known)."""
    config = cohort.config
    seed = model_seed(config.seed)
    threshold = cohort.keys.kind == "threshold"
    if threshold and options.validation != "central":
        raise ParameterError("multiparty keys over Flower validate centrally for now (--validation central)")
    keys_folder = make_folder(folder / "keys")
    if threshold:
        # The hospitals make the keys in round 0 over Flower messages; the launcher writes only
        # the public consortium file, and the ServerApp writes the collective public context.
        keys_file, public_file = None, keys_folder / "collective.pub"
        consortium_file = keys_folder / "consortium.fhto"
        write_atomic(consortium_file, cohort.keys.consortium.to_bytes())
        unit = cohort.keys.weight_unit(sum(len(d) for d in cohort.hospitals))
    else:
        keys_file, public_file = keys_folder / "fhto.keys", keys_folder / "fhto.pub"
        cohort.keys.keys.save(keys_file)
        cohort.keys.public_context().save(public_file)
        consortium_file, unit = None, 1.0
    shares = _validation_shares(cohort.validation, len(cohort.hospitals), config.seed)
    nodes: Dict[str, Dict[str, object]] = {}
    encryption_seed = derived_seed("encryption", config.seed, "encrypted")
    for i, (name, data) in enumerate(zip(cohort.names, cohort.hospitals)):
        path = make_folder(folder / "nodes") / f"{i}.npz"
        write_node(path, NodeFile(name, data, cohort.mean, cohort.std, config.hidden, seed,
                                  encryption_seed=encryption_seed,
                                  validation=shares[i] if options.validation == "federated" else None))
        state = folder / "state" / str(i)
        nodes[f"supernode-{i + 1}"] = {
            "hospital-file": str(path), "state-dir": str(state), "min-contributions": min(2, len(cohort.hospitals)),
            **({"keys": str(keys_file), "key-holder": i == 0} if not threshold else {
                "keys": str(state / "share.key"), "key-holder": True, "consortium": str(consortium_file),
                "party": i + 1, "key-seed": derived_seed("keys", config.seed), "weight-unit": unit,
            }),
        }
    weights = folder / "initial-weights.npy"
    write_atomic(weights, _npy(flat_weights(cohort.factory(seed)())))
    validation_file = None
    if options.validation == "central":
        validation_file = folder / "validation.npz"
        write_node(validation_file, NodeFile("server", cohort.validation, cohort.mean, cohort.std, config.hidden, seed))
    federated = len(cohort.hospitals) > 1
    min_hospitals = (config.min_hospitals or max(1, -(-len(cohort.hospitals) // 2))) if federated else 1
    settings = ServerSettings(
        study=study, hospitals=list(cohort.names), public_context=public_file, initial_weights=weights,
        scheduler=config.scheduler().state_dict(), rounds=config.rounds, local_epochs=config.local_epochs,
        batch_size=config.batch_size, seed=config.seed, min_hospitals=min(min_hospitals, len(cohort.hospitals)),
        round_timeout=config.timeout or options.round_timeout, early_stopping=config.early_stopping,
        checkpoint=Path(config.out).resolve() / "checkpoints" / "encrypted", validation=options.validation,
        validation_file=validation_file, log_file=folder / "server-log.jsonl",
        key_model=cohort.keys.kind, consortium=consortium_file, weight_unit=unit,
    )
    return nodes, settings


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _study_id(folder: Path, resume: bool) -> str:
    """The study's id: kept on resume (hospitals keep their state per study), new otherwise."""
    marker = folder / "study-id"
    if resume and marker.exists():
        return marker.read_text().strip()
    study = uuid.uuid4().hex
    write_atomic(marker, study.encode())
    return study


class _Tail:
    """Follows the server's log file and passes each new entry on."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def entries(self) -> List[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def describe(options: FlowerOptions, hospitals: int, threshold: Optional[int] = None) -> str:
    """The report's deployment line for a local Flower run (``threshold``: multiparty keys, that
    many hospitals decrypt each sum)."""
    validation = ("central: the server's own validation rows score every round" if options.validation == "central"
                  else "federated: each hospital scores its own validation rows and only the encrypted sum of "
                       "their statistics is decrypted")
    keys = ("the key holder is hospital 1" if threshold is None else
            f"multiparty keys made in round 0 over Flower messages, {threshold} of the {hospitals} hospitals decrypt "
            "each sum with shares")
    return (f"Flower 1.42 over real processes on this machine (a SuperLink and {hospitals} SuperNodes, one per "
            f"hospital; {keys}); validation {validation}")


def flower_trainer(options: FlowerOptions):
    """The study's encrypted-method trainer that runs a local Flower deployment."""

    def train(cohort: Cohort, out: Path, say) -> Trained:
        from ..fl.flower.launch import DeploymentError, LocalDeployment, write_app
        from .run import _progress

        config = cohort.config
        folder = make_folder(Path(out).resolve() / "flower")
        study = _study_id(folder, config.resume)
        if not config.resume:
            remove_file(folder / "server-log.jsonl")
            remove_file(Path(config.out).resolve() / "checkpoints" / "encrypted" / checkpoint_file.FILE_NAME)
        nodes, settings = _prepare(cohort, folder, options, study)
        app = write_app(folder / "app", "fhto_native.study.flower_app:server_app",
                        "fhto_native.study.flower_app:client_app")
        show = _progress("HE", config.rounds, say)
        tail = _Tail(folder / "server-log.jsonl")
        tail.entries()  # skip what an earlier run logged
        t0 = time.perf_counter()
        with LocalDeployment(folder / "processes", say=say) as deployment:
            deployment.start(nodes)
            # The launcher knows which SuperNode serves which hospital (each announces its id in
            # its log), so the ServerApp needs no hello round; each update still names its
            # hospital, and the server checks it.
            ids = deployment.node_ids()
            if len(ids) == len(nodes):
                settings.nodes = {name: ids[node] for name, node in zip(cohort.names, nodes)}
                settings.key_holder = cohort.names[0]
            settings.save(folder / "server.json")
            say(f"  Flower: SuperLink on 127.0.0.1:{deployment.port}, {len(nodes)} SuperNodes "
                f"({time.perf_counter() - t0:.1f} s to start); validation {options.validation}")
            for attempt in range(options.restarts + 1):
                run = deployment.submit(app, {"fhto-config": str(folder / "server.json")})
                status = _follow(deployment, run, tail, show, say, options)
                if status == "finished:completed":
                    break
                log = deployment.run_log(run).strip().splitlines()
                if attempt == options.restarts:
                    raise DeploymentError(f"the Flower run ended {status}: " + " | ".join(log[-6:]))
                say(f"  the ServerApp's run ended {status}; starting it again from its last checkpoint")
        return _trained(cohort, options)

    return train


def _follow(deployment, run: int, tail: "_Tail", show, say, options: FlowerOptions) -> str:
    """Print the server's progress until the run finished; returns Flower's final status.

    Asking Flower for the status costs a ``flwr`` command (about 0.7 CPU-s), so it is asked when
    the server says it finished, when its process is gone, and otherwise every 5 s.
    """
    from ..fl.flower.launch import DeploymentError

    deadline = time.monotonic() + options.timeout
    seen, finished, last_seen, last_asked = False, False, time.monotonic(), 0.0
    while True:
        for entry in tail.entries():
            if "say" in entry:
                say("  " + entry["say"])
            if "record" in entry:
                show(entry["record"])
                if options.on_round is not None:
                    options.on_round(entry["record"], deployment)
            finished = finished or "finished" in entry
        now = time.monotonic()
        alive = deployment.server_app_alive()
        if alive:
            seen, last_seen = True, now
        gone = seen and not alive and now - last_seen > 3.0
        if finished or gone or now - last_asked > 5.0:
            last_asked = now
            status = deployment.status(run)
            if status.startswith("finished"):
                for entry in tail.entries():
                    if "record" in entry:
                        show(entry["record"])
                return status
            if gone:
                # The ServerApp process is gone but Flower has not noticed yet (it would, after its
                # heartbeat timeout of about a minute): stop the run and let the caller restart it.
                deployment.stop_run(run)
        if now > deadline:
            raise DeploymentError(f"the Flower run did not finish within {options.timeout:g} s")
        time.sleep(0.3)


def _trained(cohort: Cohort, options: FlowerOptions) -> Trained:
    """The method as the server's verified checkpoint records it."""
    config = cohort.config
    path = Path(config.out) / "checkpoints" / "encrypted" / checkpoint_file.FILE_NAME
    try:
        state = checkpoint_file.decode(path.read_bytes())
    except OSError as exc:
        raise refused("read", path, exc) from exc
    size = flat_weights(cohort.factory(0)()).size
    checkpoint_file.verify(state, size=size, encrypted=True, hospitals=cohort.names)
    best = state["best"]
    result = method_result(
        cohort, key="encrypted", kind=MethodKind.ENCRYPTED, label="encrypted FL (FHTO)",
        description=("federated over Flower (a SuperLink and one SuperNode per hospital); each hospital's update "
                     "encrypted (CKKS), the server only sums ciphertexts"),
        rows=int(sum(len(d) for d in cohort.hospitals)),
        history=[RoundRecord.from_server(r, {}) for r in state["history"]],
        best_weights=np.asarray(best["weights"], dtype=np.float64), best_round=int(best["round"]),
        rounds_run=int(state["round"]), stopped_early=bool(state["stopped_early"]),
    )
    loss = float("inf") if best["loss"] is None else float(best["loss"])
    return Trained(result, np.asarray(best["weights"], dtype=np.float64), loss, {})
