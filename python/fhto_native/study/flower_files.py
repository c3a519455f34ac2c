"""The files of a Flower deployment's parties: a hospital's file (its rows and the study's model
settings; also the server's validation rows) and the ServerApp's settings, with the ServerApp's
log back to the launcher. numpy only: a ClientApp that only decrypts never imports torch.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .._files import write_atomic
from ..errors import FormatError
from .data.container import TreatmentData

__all__ = ["NodeFile", "load_node", "write_node", "ServerSettings"]

_ARRAYS = ("X", "treatment", "y", "weight")


@dataclass
class NodeFile:
    """What one party's file holds: a hospital's rows (or the server's validation rows) and the
    study's model settings."""

    name: str
    data: TreatmentData
    mean: np.ndarray
    std: np.ndarray
    hidden: int
    model_seed: int
    encryption_seed: Optional[int] = None
    validation: Optional[TreatmentData] = None

    def model(self):
        """The study's architecture, initialized from the study's model seed."""
        import torch

        from .models import TreatmentResponseModel

        torch.manual_seed(self.model_seed)
        return TreatmentResponseModel(self.mean.size, len(self.data.arms), self.hidden)


def write_node(path: Path, node: NodeFile) -> None:
    """Write a party's file (numpy's npz: arrays and one JSON header)."""
    d = node.data
    header = {"name": node.name, "feature_names": list(d.feature_names), "arms": list(d.arms), "outcome": d.outcome,
              "source": d.source, "hidden": node.hidden, "model_seed": node.model_seed,
              "encryption_seed": node.encryption_seed, "validation": node.validation is not None}
    arrays = {k: getattr(d, k) for k in _ARRAYS}
    if node.validation is not None:
        arrays.update({f"validation_{k}": getattr(node.validation, k) for k in _ARRAYS})
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), mean=node.mean, std=node.std,
             **arrays)
    write_atomic(path, buffer.getvalue())


def load_node(path: Path, header_only: bool = False) -> NodeFile:
    """Read a party's file. Raises FormatError naming the file and what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes())
            if header_only:
                empty = TreatmentData(X=np.zeros((0, len(header["feature_names"]))), treatment=np.zeros(0, np.int64),
                                      y=np.zeros(0), feature_names=tuple(header["feature_names"]),
                                      arms=tuple(header["arms"]), outcome=header["outcome"], source=header["source"])
                return NodeFile(header["name"], empty, z["mean"], z["std"], header["hidden"], header["model_seed"])

            def rows(prefix: str, source: str) -> TreatmentData:
                return TreatmentData(
                    X=z[prefix + "X"], treatment=z[prefix + "treatment"].astype(np.int64), y=z[prefix + "y"],
                    feature_names=tuple(header["feature_names"]), arms=tuple(header["arms"]),
                    outcome=header["outcome"], source=source, weight=z[prefix + "weight"],
                )

            return NodeFile(
                name=str(header["name"]), data=rows("", str(header["source"])), mean=z["mean"], std=z["std"],
                hidden=int(header["hidden"]), model_seed=int(header["model_seed"]),
                encryption_seed=header["encryption_seed"],
                validation=rows("validation_", f"{header['name']}'s validation rows") if header["validation"] else None,
            )
    except FileNotFoundError:
        raise FormatError(f"hospital file {path} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(f"hospital file {path} is unreadable: {type(exc).__name__}: {exc}") from None


@dataclass
class ServerSettings:
    """The ServerApp's settings file, and its channel back to the launcher (a JSON-lines log)."""

    study: str
    hospitals: List[str]
    public_context: Path
    initial_weights: Path
    scheduler: dict
    rounds: int
    local_epochs: int
    batch_size: int
    seed: int
    min_hospitals: int
    round_timeout: Optional[float]
    early_stopping: Optional[int]
    checkpoint: Path
    validation: str
    validation_file: Optional[Path]
    log_file: Path
    connect_timeout: float = 60.0
    message_timeout: float = 300.0
    #: hospital -> SuperNode id, when the launcher knows it (else the ServerApp asks every node)
    nodes: Optional[Dict[str, int]] = None
    key_holder: Optional[str] = None
    #: "shared" (one key set; the key holder decrypts) or "threshold" (multiparty keys made in round 0)
    key_model: str = "shared"
    #: threshold: the consortium file; FedAvg weights are n_i / weight_unit (the key holder multiplies back)
    consortium: Optional[Path] = None
    weight_unit: float = 1.0

    def save(self, path: Path) -> None:
        values = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
        write_atomic(path, json.dumps(values, indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> "ServerSettings":
        try:
            values = json.loads(Path(path).read_text())
            paths = {"public_context", "initial_weights", "checkpoint", "validation_file", "log_file", "consortium"}
            return cls(**{k: (Path(v) if k in paths and v is not None else v) for k, v in values.items()})
        except (OSError, ValueError, TypeError) as exc:
            raise FormatError(f"server settings {path} are unreadable: {exc}") from None

    def _append(self, entry: dict) -> None:
        with open(self.log_file, "a") as log:
            log.write(json.dumps(entry) + "\n")

    def log(self, text: str) -> None:
        self._append({"say": text})

    def progress(self, record: dict) -> None:
        self._append({"record": record})

    def finished(self) -> None:
        self._append({"finished": True})
