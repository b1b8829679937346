"""Unique keys are awa's bytes: pinned golden vectors, the serde_json layout of
args, and every validation text of unique_opts (no database)."""

from __future__ import annotations

import struct

import blake3
import pytest

from awa.errors import AwaError, UniqueConflict, ValidationError
from awa.storage.unique import (
    DEFAULT_STATES,
    UniqueOpts,
    canonical_json,
    compute_unique_key,
    key_for,
    parse_unique_opts,
    split_unique,
)

# (kind, queue, args, period_bucket) -> the bytes awa's compute_unique_key hashes, and the key.
GOLDEN = [
    (("send_email", None, None, None), b"send_email", "bee8bfbcd9d48e51f79059a523039018"),
    (("process_payment", None, None, None), b"process_payment", "5a9dca9a728fb45cffb18b74f5252691"),
    (("send_email", "default", None, None), b"send_email\x00default", "5f8918febb66adef42a3b4da3a9465c8"),
    (("send_email", "priority", None, None), b"send_email\x00priority", "ddf34c270618911c972251051e1e48c3"),
    (("send_email", None, {"to": "a@b.com"}, None), b'send_email\x00{"to":"a@b.com"}', "ef8febabb370bd83c515cf9f8e9c3600"),
    (("send_email", None, {"to": "c@d.com"}, None), b'send_email\x00{"to":"c@d.com"}', "37eb8614023d63788dd625cfc3b8c6aa"),
    (("send_email", None, None, 1000), b"send_email\x00" + struct.pack("<q", 1000), "d3676a6ea8e39ca25f82b37fc977060d"),
    (("send_email", None, None, 1001), b"send_email\x00\xe9\x03\x00\x00\x00\x00\x00\x00", "e8c137124b1184bef7d16f8a6afd4b16"),
    (
        ("send_email", "email", {"to": "bob@example.com", "subject": "Hi"}, 493_000),
        b'send_email\x00email\x00{"subject":"Hi","to":"bob@example.com"}\x00' + struct.pack("<q", 493_000),
        "f7f8b9ca28f441f8f44cf148b6286917",
    ),
    (
        ("send_email", None, {"c": {"z": "日本", "y": -1}, "b": 1, "a": [1, 2.5, None, True]}, None),
        'send_email\x00{"a":[1,2.5,null,true],"b":1,"c":{"y":-1,"z":"日本"}}'.encode(),
        "ee11b736d216857a1612c19e5f188b0d",
    ),
    (("simple_job", None, {}, -1), b"simple_job\x00{}\x00" + b"\xff" * 8, "9969268aae2ba7b58ba9981b12679a52"),
]


@pytest.mark.parametrize("parts, hashed, hex_key", GOLDEN)
def test_golden_vectors(parts, hashed, hex_key):
    assert blake3.blake3(hashed).digest()[:16].hex() == hex_key  # the algorithm, spelled out
    assert compute_unique_key(*parts).hex() == hex_key
    assert len(compute_unique_key(*parts)) == 16


def test_awa_unit_test_properties_hold():
    # awa-model/src/unique.rs's own tests: deterministic, and each part matters.
    assert compute_unique_key("send_email") == compute_unique_key("send_email")
    assert compute_unique_key("send_email", "default") != compute_unique_key("send_email")
    assert compute_unique_key("send_email", None, {"to": "a"}) != compute_unique_key("send_email", None, {"to": "b"})
    assert compute_unique_key("send_email", None, None, 1000) != compute_unique_key("send_email", None, None, 1001)
    # the separator keeps "ab"+"cd" apart from "abc"+"d"
    assert compute_unique_key("ab", "cd") != compute_unique_key("abc", "d")


@pytest.mark.parametrize(
    "value, text",
    [
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
        ([1.0, 0.1, 1e20, 1.5e-7, 1.234e-5, 1e16, -0.0, 100.0], "[1.0,0.1,1e20,1.5e-7,0.00001234,1e16,-0.0,100.0]"),
        ({"s": 'q"\\\n\t\x01é/'}, '{"s":"q\\"\\\\\\n\\t\\u0001é/"}'),
        ({"big": 2**64 - 1, "neg": -(2**63)}, '{"big":18446744073709551615,"neg":-9223372036854775808}'),
        ({"huge": 2**64}, '{"huge":1.8446744073709552e19}'),
        ([None, True, False, {}], "[null,true,false,{}]"),
    ],
)
def test_canonical_json_is_serde_json_layout(value, text):
    assert canonical_json(value) == text


def test_key_for_uses_the_chosen_parts():
    opts = UniqueOpts(by_queue=True, by_args=False, by_period=7)
    assert key_for(opts, "k", "q", {"a": 1}) == compute_unique_key("k", "q", None, 7)
    assert key_for(UniqueOpts(), "k", "q", {}) == compute_unique_key("k", None, {}, None)
    assert UniqueOpts().states == DEFAULT_STATES == 0b11111
    assert UniqueOpts().states_bits == "11111000"
    assert UniqueOpts(states=0b1111111).state_names()[-1] == "cancelled"


@pytest.mark.parametrize(
    "value, message",
    [
        ([1], "unique_opts must be a dict"),
        ({"by_kind": True}, "unsupported unique_opts key 'by_kind'; expected 'by_queue', 'by_args', 'by_period' or 'states'"),
        ({"by_queue": 1}, "unique_opts by_queue must be a bool, got 1"),
        ({"by_args": "yes"}, "unique_opts by_args must be a bool, got 'yes'"),
        ({"by_period": 1.5}, "unique_opts by_period must be a 64-bit integer period bucket, got 1.5"),
        ({"by_period": 2**63}, "unique_opts by_period must be a 64-bit integer period bucket, got 9223372036854775808"),
        ({"states": 256}, "unique_opts states must be an 8-bit state mask (0..255), got 256"),
        ({"states": True}, "unique_opts states must be an 8-bit state mask (0..255), got True"),
        (
            {"states": 0b00011011},
            "unique_opts states must include scheduled, available, running and retryable (mask 0b10111); got 0b00011011",
        ),
    ],
)
def test_unique_opts_errors(value, message):
    with pytest.raises(ValidationError) as info:
        parse_unique_opts(value)
    assert str(info.value) == message


def test_per_job_unique_opts_are_split_off():
    opts, rows = split_unique(None, [{"queue": "a", "unique_opts": {}}, None], 2)
    assert opts == [{"queue": "a"}, None]
    assert rows == [UniqueOpts(), None]
    opts, rows = split_unique({"by_queue": True}, [{"unique_opts": None}, {"queue": "b"}], 2)
    assert opts == [None, {"queue": "b"}] and rows == [None, UniqueOpts(by_queue=True)]
    with pytest.raises(ValidationError, match=r"^opts\[1\] unique_opts must be a dict$"):
        split_unique(None, [None, {"unique_opts": 3}], 2)
    assert split_unique(None, None, 3) == (None, None)


def test_unique_conflict_text_and_attributes():
    err = UniqueConflict()
    assert isinstance(err, AwaError) and not isinstance(err, ValueError)
    assert str(err) == "unique conflict (idx_awa_jobs_unique)" and err.constraint == "idx_awa_jobs_unique"
    assert str(UniqueConflict(None)) == "unique conflict"
