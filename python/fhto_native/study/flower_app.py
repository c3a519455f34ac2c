"""The study's Flower app: the ServerApp runs the aggregation server, each SuperNode's ClientApp
is one hospital.

ServerApp (``server_app``): reads the server's settings file (run config ``fhto-config``), finds
which SuperNode is which hospital (a hello query), and runs :class:`~fhto_native.fl.server.Server`
over a :class:`~fhto_native.fl.flower.transport.FlowerTransport`, with the key holder reached by a
query message. It holds the public context only. Validation is central (the server's own
validation rows, when it holds some) or federated (each hospital scores its own validation rows
and sends encrypted sufficient statistics; only their sum is decrypted). It checkpoints every
round, so a restarted ServerApp continues from the last completed round.

ClientApp (``client_app``): the hospital named by its SuperNode's node config. Node config keys:
``hospital-file`` (its rows and the study's model settings, see :mod:`fhto_native.study.deploy`),
``keys`` (the key set file), ``state-dir`` (where it keeps its own state), ``key-holder``
(whether it decrypts sums) and ``min-contributions`` (the smallest sum it decrypts).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Optional

import numpy as np
from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from .. import Accumulator, KeySet, PublicContext
from .._files import make_folder
from ..errors import FormatError, ParameterError
from ..fl.flower.messages import bytes_record, exchange, record_bytes
from ..fl.flower.transport import (
    EVALUATE,
    Federation,
    FlowerTransport,
    RemoteKeyHolder,
    discover,
    hello_record,
    study_record,
)
from ..fl.keyholder import KeyHolder
from ..fl.protocol import RoundPlan
from ..fl.scheduler import AdaptiveLR
from ..fl.server import Server
from ..fl.validation import metrics_from_statistics, validation_statistics
from .flower_files import ServerSettings, load_node

if TYPE_CHECKING:
    from .hospital import Hospital

__all__ = ["server_app", "client_app"]

server_app = ServerApp()
client_app = ClientApp()


# -- the server ------------------------------------------------------------------------------


def _central(path: Path) -> Callable[[np.ndarray], Dict[str, float]]:
    """Scores weights on the server's own validation rows, as the in-process study does."""
    from .metrics import binary_metrics
    from .models import design_matrix, predict, set_flat_weights

    node = load_node(path)
    known = node.data.subset(node.data.weight > 0)
    x = design_matrix(known.X, known.treatment, len(known.arms), node.mean, node.std)
    model = node.model()

    def evaluate(weights: np.ndarray) -> Dict[str, float]:
        set_flat_weights(model, weights)
        return binary_metrics(known.y, predict(model, x), weight=known.weight)

    return evaluate


def _federated(grid: Grid, federation: Federation, public: PublicContext, holder: RemoteKeyHolder, timeout: float,
               study: str) -> Callable[[np.ndarray], Dict[str, float]]:
    """Each hospital scores the weights on its own validation rows and sends its encrypted
    sufficient statistics; the key holder decrypts only their sum."""

    def evaluate(weights: np.ndarray) -> Dict[str, float]:
        body = bytes_record(np.ascontiguousarray(weights, dtype="<f8").tobytes())
        tag = study_record(study, len(federation.nodes))
        messages = [Message(RecordDict({"weights": body, "study": tag}), dst_node_id=node, message_type=EVALUATE)
                    for node in federation.nodes.values()]
        replies, _ = exchange(grid, messages, timeout)
        acc = Accumulator(public, threads=1)
        for reply in replies.values():
            if not reply.has_error():
                acc.add(record_bytes(reply, "statistics"))
        if acc.contributions == 0:
            raise ParameterError("no hospital returned validation statistics")
        total = holder.decrypt_sum(acc.result().to_bytes())
        noise = public.error_bound(acc.contributions)
        m = metrics_from_statistics(total, threshold=0.5, noise=noise)
        return {"loss": m.loss, "auc": m.auc, "accuracy": m.accuracy, "precision": m.precision,
                "recall": m.recall, "f1": m.f1}

    return evaluate


@server_app.main()
def serve(grid: Grid, context: Context) -> None:
    settings = ServerSettings.load(Path(str(context.run_config["fhto-config"])))
    if settings.nodes:
        federation = Federation(settings.nodes, settings.key_holder or settings.hospitals[0])
    else:
        federation = discover(grid, settings.hospitals, settings.connect_timeout, say=settings.log)
    settings.log(f"hospitals: {', '.join(f'{h} = node {n}' for h, n in federation.nodes.items())}; "
                 f"key holder: {federation.key_holder}")
    public = PublicContext.load(settings.public_context)
    holder = RemoteKeyHolder(grid, federation, settings.message_timeout, settings.study)
    if settings.validation == "central":
        evaluate = _central(settings.validation_file)
    else:
        evaluate = _federated(grid, federation, public, holder, settings.message_timeout, settings.study)
    server = Server(
        np.load(settings.initial_weights), FlowerTransport(grid, federation, settings.study), evaluate,
        AdaptiveLR.from_state(settings.scheduler), public_context=public, key_holder=holder,
        local_epochs=settings.local_epochs, batch_size=settings.batch_size, seed=settings.seed,
        min_hospitals=settings.min_hospitals, timeout=settings.round_timeout, checkpoint=settings.checkpoint,
        early_stopping=settings.early_stopping,
    )
    if server.load_checkpoint():
        settings.log(f"resumed from the checkpoint after round {server.round}")
    server.fit(settings.rounds, progress=settings.progress)
    settings.finished()


# -- a hospital --------------------------------------------------------------------------------


@dataclass
class _Node:
    study: str
    hospital: Hospital
    keys: KeySet
    validation: Optional[object]
    key_holder: Optional[KeyHolder]
    node: object


_NODES: Dict[tuple, _Node] = {}


def _node(context: Context, study: str) -> _Node:
    """This SuperNode's hospital for this study (built once per ClientApp process)."""
    config = context.node_config
    try:
        path, keys_path = Path(str(config["hospital-file"])), Path(str(config["keys"]))
        state_dir = Path(str(config["state-dir"]))
    except KeyError as exc:
        raise ParameterError(f"the SuperNode's node config has no {exc.args[0]!r}") from None
    cache_key = (str(path), study)
    if cache_key not in _NODES:
        from .hospital import Hospital  # torch: only where a model is trained or scored

        node = load_node(path)
        keys = KeySet.load(keys_path)
        state = make_folder(state_dir) / f"{study}.json"
        hospital = Hospital(node.name, node.data, node.model, node.mean, node.std, keys,
                            encryption_seed=node.encryption_seed, state_file=state, resume=True)
        holder = None
        if bool(config.get("key-holder", False)):
            holder = KeyHolder(keys, min_contributions=int(config.get("min-contributions", 2)))
        _NODES[cache_key] = _Node(study, hospital, keys, node.validation, holder, node)
    return _NODES[cache_key]


def _study(message: Message) -> str:
    return str(_tag(message)["id"])


def _tag(message: Message):
    try:
        return message.content.config_records["study"]
    except KeyError:
        raise FormatError("the message names no study") from None


@client_app.train()
def train(message: Message, context: Context) -> Message:
    node = _node(context, _study(message))
    plan = RoundPlan.from_wire(record_bytes(message, "plan"))
    update = node.hospital.fit(plan)
    return Message(RecordDict({"update": bytes_record(update.to_wire())}), reply_to=message)


@client_app.query("hello")
def hello(message: Message, context: Context) -> Message:
    config = context.node_config
    node = load_node(Path(str(config["hospital-file"])), header_only=True)
    return Message(hello_record(node.name, bool(config.get("key-holder", False))), reply_to=message)


@client_app.query("decrypt")
def decrypt(message: Message, context: Context) -> Message:
    node = _node(context, _study(message))
    if node.key_holder is None:
        raise ParameterError(f"{node.hospital.name} does not hold the key")
    total = node.key_holder.decrypt_sum(record_bytes(message, "sum"))
    return Message(RecordDict({"plain": bytes_record(np.ascontiguousarray(total, dtype="<f8").tobytes())}),
                   reply_to=message)


@client_app.query("evaluate")
def evaluate(message: Message, context: Context) -> Message:
    node = _node(context, _study(message))
    if node.validation is None:
        raise ParameterError(f"{node.hospital.name} holds no validation rows")
    from .models import design_matrix, predict, set_flat_weights

    weights = np.frombuffer(record_bytes(message, "weights"), dtype="<f8").astype(np.float64)
    known = node.validation.subset(node.validation.weight > 0)
    x = design_matrix(known.X, known.treatment, len(known.arms), node.node.mean, node.node.std)
    model = node.node.model()
    set_flat_weights(model, weights)
    stats = validation_statistics(predict(model, x), known.y, known.weight)
    upload = node.keys.encrypt(stats, parties=int(_tag(message)["parties"]), threads=1)
    return Message(RecordDict({"statistics": bytes_record(upload.to_bytes())}), reply_to=message)
