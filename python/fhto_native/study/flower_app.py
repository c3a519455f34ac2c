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
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from .. import Accumulator, KeySet, PublicContext
from .._files import make_folder
from ..errors import FormatError, ParameterError
from ..fl.flower.messages import bytes_record, exchange, pack_blobs, record_bytes, unpack_blobs
from ..fl.flower.transport import (
    EVALUATE,
    Federation,
    FlowerTransport,
    RemoteKeyHolder,
    RemoteThresholdKeyHolder,
    discover,
    hello_record,
    study_record,
    threshold_key_generation,
)
from ..multiparty import ChannelMessage, Consortium, KeyShare, Party, PublicShare, combine_public_key
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
    try:
        _serve(grid, settings)
    except Exception as exc:  # Flower prints no traceback: the launcher shows this line
        settings.log(f"  the ServerApp failed: {type(exc).__name__}: {exc}")
        raise


def _serve(grid: Grid, settings: ServerSettings) -> None:
    if settings.nodes:
        federation = Federation(settings.nodes, settings.key_holder or settings.hospitals[0])
    else:
        federation = discover(grid, settings.hospitals, settings.connect_timeout, say=settings.log)
    holders = (f"key holders: any of them, {settings.key_model} keys" if settings.key_model == "threshold"
               else f"key holder: {federation.key_holder}")
    settings.log(f"hospitals: {', '.join(f'{h} = node {n}' for h, n in federation.nodes.items())}; {holders}")
    if settings.key_model == "threshold":
        consortium = Consortium.from_bytes(Path(settings.consortium).read_bytes())
        public = threshold_key_generation(grid, federation, consortium, settings.message_timeout, settings.study)
        public.save(settings.public_context)
        settings.log(f"multiparty keys made in round 0: {consortium.describe()}; fingerprint {public.fingerprint}")
        holder = RemoteThresholdKeyHolder(grid, federation, consortium, public, settings.message_timeout,
                                          settings.study, settings.weight_unit)
    else:
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
    keys: object  #: a KeySet (shared key) or the collective PublicContext (multiparty keys)
    validation: Optional[object]
    key_holder: Optional[KeyHolder]
    node: object
    party: Optional[Party] = None


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
        state = make_folder(state_dir) / f"{study}.json"
        party = holder = None
        if "consortium" in config:  # multiparty keys, made in round 0
            share = KeyShare.load(keys_path)
            keys = PublicContext.load(state_dir / "collective.pub")
            party = Party(share, keys, min_contributions=int(config.get("min-contributions", 2)),
                          ledger=state_dir / "ledger.json", seed=_key_seed(config, node.name), threads=1)
            hospital = Hospital(node.name, node.data, node.model, node.mean, node.std, keys,
                                weight_unit=float(config["weight-unit"]),
                                tagger=lambda upload, rnd: share.sign_tag(keys, upload, rnd).to_bytes(),
                                encryption_seed=node.encryption_seed, state_file=state, resume=True)
        else:
            keys = KeySet.load(keys_path)
            hospital = Hospital(node.name, node.data, node.model, node.mean, node.std, keys,
                                encryption_seed=node.encryption_seed, state_file=state, resume=True)
            if bool(config.get("key-holder", False)):
                holder = KeyHolder(keys, min_contributions=int(config.get("min-contributions", 2)))
        _NODES[cache_key] = _Node(study, hospital, keys, node.validation, holder, node, party)
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


# -- multiparty keys: round 0 and decryption shares --------------------------------------------


def _key_seed(config, hospital: Optional[str] = None) -> Optional[int]:
    """A seeded study's seed of this party's key share (the study's own, so the keys equal the
    in-process run's), or with ``hospital`` of its flooding noise (absent: fresh randomness)."""
    if "key-seed" not in config:
        return None
    from .hospital import derived_seed

    seed = int(config["key-seed"])
    return seed if hospital is None else derived_seed("flooding", seed, hospital)


def _share_files(context: Context):
    config = context.node_config
    try:
        consortium = Consortium.from_bytes(Path(str(config["consortium"])).read_bytes())
        return consortium, Path(str(config["keys"])), Path(str(config["state-dir"])), int(config["party"])
    except KeyError as exc:
        raise ParameterError(f"the SuperNode's node config has no {exc.args[0]!r} (multiparty keys)") from None


def _publics(message: Message):
    return [PublicShare.from_bytes(b) for b in unpack_blobs(record_bytes(message, "publics"), "public shares")]


@client_app.query("keygen_share")
def keygen_share(message: Message, context: Context) -> Message:
    """This hospital's key share: made once and kept (0600) in its state folder; its public share back."""
    consortium, path, _, party = _share_files(context)
    if path.exists():
        share = KeyShare.load(path)
        if share.consortium != consortium or share.party != party:
            raise ParameterError(f"{path} holds another consortium's or party's key share")
    else:
        make_folder(path.parent)
        share = KeyShare.generate(consortium, party, seed=_key_seed(context.node_config))
        share.save(path)
    return Message(RecordDict({"public": bytes_record(share.public_share().to_bytes())}), reply_to=message)


@client_app.query("keygen_send")
def keygen_send(message: Message, context: Context) -> Message:
    """Its messages for the other hospitals (the tag key from hospital 1; t-of-n: Shamir pieces)."""
    consortium, path, _, _ = _share_files(context)
    share = KeyShare.load(path)
    publics = _publics(message)
    outgoing = share.tag_key_messages(publics)
    if consortium.threshold < consortium.parties:
        outgoing += share.shamir_messages(publics)
    share.save(path)
    return Message(RecordDict({"messages": bytes_record(pack_blobs(m.to_bytes() for m in outgoing))}), reply_to=message)


@client_app.query("keygen_receive")
def keygen_receive(message: Message, context: Context) -> Message:
    """Take in the messages addressed to it; compute the collective public key itself."""
    consortium, path, state_dir, _ = _share_files(context)
    share = KeyShare.load(path)
    publics = _publics(message)
    share.receive([ChannelMessage.from_bytes(b) for b in unpack_blobs(record_bytes(message, "inbox"), "inbox")], publics)
    share.save(path)
    public = combine_public_key(consortium, publics)
    public.save(make_folder(state_dir) / "collective.pub")
    return Message(RecordDict({"keys": ConfigRecord({"fingerprint": public.fingerprint})}), reply_to=message)


@client_app.query("share")
def decryption_share(message: Message, context: Context) -> Message:
    """Its decryption share of a sum, under its own rules (tags, once per sum, budget)."""
    node = _node(context, _study(message))
    if node.party is None:
        raise ParameterError(f"{node.hospital.name} holds no multiparty key share")
    request = message.content.config_records["request"]
    tags = unpack_blobs(record_bytes(message, "tags"), "tags")
    share = node.party.decryption_share(record_bytes(message, "sum"), [int(p) for p in request["parties"]],
                                        round=int(request["round"]), tags=tags)
    return Message(RecordDict({"share": bytes_record(share.to_bytes())}), reply_to=message)
