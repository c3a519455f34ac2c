"""HospitalUpdate's wire form: a bounded, strictly checked JSON header and an opaque payload."""
from __future__ import annotations

import json
import math
import struct

import pytest

from fhto_native.errors import FormatError, ParameterError
from fhto_native.fl.federation import MAX_HEADER_BYTES, MAX_HOSPITAL_NAME, HospitalUpdate

PAYLOAD = b"\x00opaque ciphertext bytes\xff"
GOOD = {"hospital": "h0", "round": 3, "n": 120, "sigma2": 0.25, "train_loss": 0.5, "seconds": {"train": 1.5}}


def wire(head, payload: bytes = PAYLOAD) -> bytes:
    """A hand-made message: length prefix, header, payload (``head`` a dict or raw bytes)."""
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    return struct.pack("<I", len(raw)) + raw + payload


def test_the_wire_form_round_trips():
    update = HospitalUpdate("h0", 3, 120, 0.25, payload=PAYLOAD, train_loss=0.5, seconds={"train": 1.5})
    again = HospitalUpdate.from_wire(update.to_wire())
    assert again == update
    assert HospitalUpdate.from_wire(wire(GOOD)) == update


def test_a_missing_train_loss_travels_as_null_and_comes_back_nan():
    update = HospitalUpdate("h0", 1, 5, 0.0, payload=b"")
    data = update.to_wire()
    assert b'"train_loss": null' in data and b"NaN" not in data  # strict JSON for any transport
    assert math.isnan(HospitalUpdate.from_wire(data).train_loss)


def test_a_deeply_nested_header_is_refused_not_a_recursion_error():
    with pytest.raises(FormatError, match="hospital update header is not JSON"):
        HospitalUpdate.from_wire(wire(b"[" * 60_000))


def test_an_oversized_header_is_refused_before_parsing():
    too_long = f"header of {MAX_HEADER_BYTES + 1} bytes; at most {MAX_HEADER_BYTES} are allowed"
    with pytest.raises(FormatError, match=too_long):
        HospitalUpdate.from_wire(wire(b" " * (MAX_HEADER_BYTES + 1)))
    with pytest.raises(FormatError, match=f"header of {200_000} bytes"):
        HospitalUpdate.from_wire(wire(b"[" * 200_000))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "truncated"),
        (b"\x05\x00", "truncated"),
        (struct.pack("<I", 50) + b"{}", "header is truncated"),
        (wire(b"\xff\xfe{}"), "not JSON"),
        (wire(b'{"n": NaN}'), "not JSON"),
        (wire(b"[1, 2]"), "hospital update: expected a JSON object; got list"),
        (wire(b'{"hospital": "h0", "hospital": "h1"}'), "repeats the field hospital"),
    ],
)
def test_malformed_headers_are_refused(data, message):
    with pytest.raises(FormatError, match=message):
        HospitalUpdate.from_wire(data)


BAD_FIELDS = [
    ("hospital", "", "hospital must be a non-empty string"),
    ("hospital", 7, "hospital must be a non-empty string"),
    ("hospital", "h" * (MAX_HOSPITAL_NAME + 1),
     f"hospital must be at most {MAX_HOSPITAL_NAME} characters; got {MAX_HOSPITAL_NAME + 1}"),
    ("round", 0, "round must be an integer >= 1"),
    ("round", True, "round must be an integer >= 1"),
    ("round", 2.0, "round must be an integer >= 1"),
    ("n", "ten", "n must be an integer >= 1"),
    ("n", 0, "n must be an integer >= 1"),
    ("n", False, "n must be an integer >= 1"),
    ("sigma2", -0.5, "sigma2 must be a finite number >= 0"),
    ("sigma2", "0.1", "sigma2 must be a finite number >= 0"),
    ("sigma2", 1e400, "sigma2 must be a finite number >= 0"),  # JSON 1e400 parses to inf
    ("sigma2", None, "sigma2 must be a finite number >= 0"),
    ("train_loss", "low", "train_loss must be a finite number"),
    ("train_loss", -1e400, "train_loss must be a finite number"),
    ("train_loss", False, "train_loss must be a finite number"),
    ("seconds", [1.0], "seconds must map names to finite numbers >= 0"),
    ("seconds", {"train": -1.0}, "seconds\\['train'\\] must be a finite number >= 0"),
    ("seconds", {"train": "fast"}, "seconds\\['train'\\] must be a finite number >= 0"),
]


@pytest.mark.parametrize("field, value, message", BAD_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD_FIELDS])
def test_every_field_is_checked_on_receipt(field, value, message):
    head = dict(GOOD, **{field: value})
    raw = json.dumps(head).replace("Infinity", "1e400").encode()  # what a foreign sender could write
    with pytest.raises(FormatError, match=f"hospital update: {message}"):
        HospitalUpdate.from_wire(wire(raw))


@pytest.mark.parametrize("field, value, message", BAD_FIELDS, ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD_FIELDS])
def test_a_bad_update_cannot_be_sent(field, value, message):
    update = HospitalUpdate(**dict(GOOD, **{field: value}), payload=PAYLOAD)
    with pytest.raises(ParameterError, match=f"hospital update: {message}"):
        update.to_wire()


@pytest.mark.parametrize("change, message", [
    (lambda h: h.pop("n"), "missing fields: n"),
    (lambda h: h.update(patient_ids=[1, 2]), "unknown fields: patient_ids"),
])
def test_missing_or_unknown_fields_are_refused(change, message):
    head = dict(GOOD)
    change(head)
    with pytest.raises(FormatError, match=message):
        HospitalUpdate.from_wire(wire(head))


def test_the_payload_stays_opaque_bytes():
    assert HospitalUpdate.from_wire(wire(GOOD, b"")).payload == b""
    assert HospitalUpdate.from_wire(wire(GOOD, b"not a batch")).payload == b"not a batch"


def test_an_unencrypted_update_has_no_wire_form():
    with pytest.raises(ParameterError, match="only encrypted updates"):
        HospitalUpdate("h0", 1, 5, 0.0).to_wire()
