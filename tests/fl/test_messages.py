"""The wire forms of HospitalUpdate and RoundPlan: a bounded, strictly checked JSON header and a
body (an opaque encrypted payload; the plan's weights)."""
from __future__ import annotations

import json
import math
import struct

import pytest

from fhto_native.errors import FormatError, ParameterError
import numpy as np

from fhto_native.fl.protocol import MAX_HEADER_BYTES, MAX_HOSPITAL_NAME, HospitalUpdate, RoundPlan

PAYLOAD = b"\x00opaque ciphertext bytes\xff"
GOOD = {"hospital": "h0", "round": 3}


def wire(head, payload: bytes = PAYLOAD) -> bytes:
    """A hand-made message: length prefix, header, payload (``head`` a dict or raw bytes)."""
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    return struct.pack("<I", len(raw)) + raw + payload


def test_the_wire_form_round_trips():
    update = HospitalUpdate("h0", 3, payload=PAYLOAD, seconds={"train": 1.5})
    again = HospitalUpdate.from_wire(update.to_wire())
    assert (again.hospital, again.round, again.payload) == ("h0", 3, PAYLOAD)
    assert again.seconds == {}  # a hospital's own timings stay with it
    assert HospitalUpdate.from_wire(wire(GOOD)) == again


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
    ("round", "3", "round must be an integer >= 1"),
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
    (lambda h: h.pop("round"), "missing fields: round"),
    (lambda h: h.update(n=120), "unknown fields: n"),  # a sample count in the clear is refused
    (lambda h: h.update(sigma2=0.1), "unknown fields: sigma2"),
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
        HospitalUpdate("h0", 1).to_wire()


PLAN = RoundPlan(round=2, weights=np.linspace(-1, 1, 7), eta0=0.05, alpha=2000.0, local_epochs=2, batch_size=16,
                 seed=12345, parties=3)


def test_the_plan_round_trips_with_its_weights_exactly():
    again = RoundPlan.from_wire(PLAN.to_wire())
    assert again.header() == PLAN.header()
    np.testing.assert_array_equal(again.weights, PLAN.weights)


@pytest.mark.parametrize("change, message", [
    (lambda d: d[:-3], "weights take"),
    (lambda d: d[:4 + int.from_bytes(d[:4], "little")], "weights take 0 bytes"),
    (lambda d: d[:-8] + struct.pack("<d", float("nan")), "weights must be finite"),
    (lambda d: wire({**json.loads(d[4:4 + int.from_bytes(d[:4], "little")]), "eta0": -1.0}, d[4 + int.from_bytes(d[:4], "little"):]),
     "round plan: eta0 must be a finite number >= 0"),
    (lambda d: wire({**json.loads(d[4:4 + int.from_bytes(d[:4], "little")]), "lr": 0.1}, d[4 + int.from_bytes(d[:4], "little"):]),
     "round plan: unknown fields: lr"),
    (lambda d: wire(b"[" * 60_000), "round plan header is not JSON"),
])
def test_a_malformed_plan_is_refused(change, message):
    with pytest.raises(FormatError, match=message):
        RoundPlan.from_wire(change(PLAN.to_wire()))


def test_a_plan_with_bad_fields_cannot_be_sent():
    with pytest.raises(ParameterError, match="round plan: parties must be an integer >= 1"):
        RoundPlan(**{**PLAN.__dict__, "parties": 0}).to_wire()
    with pytest.raises(ParameterError, match="weights must be finite"):
        RoundPlan(**{**PLAN.__dict__, "weights": np.array([1.0, np.inf])}).to_wire()


def test_a_contribution_tag_travels_in_the_header():
    tagged = HospitalUpdate("hospital 2", 4, payload=b"\x01\x02\x03", tag=b"\xaa" * 140)
    back = HospitalUpdate.from_wire(tagged.to_wire())
    assert back.tag == tagged.tag and bytes(back.payload) == b"\x01\x02\x03" and back.round == 4
    assert HospitalUpdate.from_wire(HospitalUpdate("h", 1, payload=b"x").to_wire()).tag is None
    head = {"hospital": "h", "round": 1, "tag": "not hex"}
    raw = json.dumps(head).encode()
    with pytest.raises(FormatError, match="tag must be hex"):
        HospitalUpdate.from_wire(struct.pack("<I", len(raw)) + raw + b"x")
    with pytest.raises(ParameterError, match="tag must be 1 to 4096 bytes"):
        HospitalUpdate("h", 1, payload=b"x", tag=b"\0" * 5000).to_wire()
