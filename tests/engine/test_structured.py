"""Structured updates (state_dicts, lists of tensors), dtypes, and pickling."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import fhto_native as fh
from fhto_native.errors import InputTypeError, LengthMismatchError, ShapeError

torch = pytest.importorskip("torch")


def linear_state(dtype_of_bias=torch.bfloat16):
    torch.manual_seed(0)
    model = torch.nn.Linear(7, 3)
    state = model.state_dict()
    state["bias"] = state["bias"].to(dtype_of_bias)
    return state


def test_a_state_dict_round_trips_with_its_names_shapes_and_dtypes(keys):
    state = linear_state()
    upload = keys.encrypt(state)
    assert upload.value_count == 7 * 3 + 3
    back = keys.decrypt(upload, like=state)
    assert list(back) == ["weight", "bias"]
    for name, value in state.items():
        assert back[name].dtype == value.dtype and back[name].shape == value.shape, name
        tolerance = 1e-2 if value.dtype == torch.bfloat16 else 1e-6
        assert torch.allclose(back[name].float(), value.float(), atol=tolerance), name
    # The same through the server: a sum of two, decrypted into the structure.
    total = fh.aggregate([keys.encrypt(state, parties=2), keys.encrypt(state, parties=2)], keys.public_context())
    summed = keys.decrypt(total, like=state)
    assert torch.allclose(summed["weight"], 2 * state["weight"], atol=1e-6)


def test_lists_half_precision_grad_and_non_contiguous_tensors(keys):
    w = torch.randn(4, 5, requires_grad=True)
    parts = [w, torch.randn(6, 4).t(), torch.randn(3, dtype=torch.float16), np.arange(4, dtype=np.float64)]
    back = keys.decrypt(keys.encrypt(parts), like=parts)
    assert isinstance(back, list) and [b.shape for b in back[:3]] == [(4, 5), (4, 6), (3,)]
    assert back[2].dtype == torch.float16 and back[3].dtype == np.float64
    assert torch.allclose(back[0], w.detach(), atol=1e-6) and torch.allclose(back[1], parts[1], atol=1e-6)
    np.testing.assert_allclose(back[3], parts[3], atol=1e-6)


def test_structure_mismatches_and_bad_parts_are_typed_errors(keys):
    state = linear_state(torch.float32)
    upload = keys.encrypt(state)
    with pytest.raises(LengthMismatchError, match="holds 24 values; the structure passed as like= holds 8"):
        keys.decrypt(upload.to_bytes(), like={"w": torch.zeros(8)})
    with pytest.raises(ShapeError, match="other names or shapes"):
        keys.decrypt(upload, like={"weight": torch.zeros(3, 7), "bias2": torch.zeros(3)})
    with pytest.raises(InputTypeError, match="'steps'.*int64 tensor; only floating tensors"):
        keys.encrypt({"w": torch.zeros(3), "steps": torch.tensor(5)})
    with pytest.raises(InputTypeError, match="keys of a structured update must be strings"):
        keys.encrypt({1: torch.zeros(3)})
    with pytest.raises(ShapeError, match="empty"):
        keys.encrypt({})
    with pytest.raises(InputTypeError, match="numpy array or a CPU torch tensor; got str"):
        keys.encrypt({"w": "text"})


def test_the_public_context_pickles_and_a_key_set_only_deliberately(keys, rng):
    pub = pickle.loads(pickle.dumps(keys.public_context()))
    x = rng.uniform(-1, 1, 100)
    assert pub.fingerprint == keys.fingerprint
    np.testing.assert_allclose(keys.decrypt(pickle.loads(pickle.dumps(pub.encrypt(x)))), x, atol=1e-6)
    with pytest.raises(InputTypeError, match="would copy its secret key"):
        pickle.dumps(keys)
    with fh.allow_secret_pickling():
        again = pickle.loads(pickle.dumps(keys))
    assert again.fingerprint == keys.fingerprint
    with pytest.raises(InputTypeError):
        pickle.dumps(keys)  # the permission ends with the block
