"""The wire codec's limits: reply blobs are checked before torch.load, and decoding is bounded in size and time."""

from __future__ import annotations

import collections
import io
import struct
import zipfile

import pytest
import torch

from labkit.sandbox import wire


def saved(value: object) -> bytes:
    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getvalue()


def rezipped(blob: bytes, deflate: str = "", extra: list[tuple[str, bytes]] = ()) -> bytes:
    """The records of a torch.save blob written again by zipfile: `deflate` names records to compress."""
    src, out = zipfile.ZipFile(io.BytesIO(blob)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            method = zipfile.ZIP_DEFLATED if deflate and info.filename.endswith(deflate) else zipfile.ZIP_STORED
            dst.writestr(info.filename, src.read(info.filename), compress_type=method)
        for name, data in extra:
            dst.writestr(name, data)
    return out.getvalue()


def inflating(size: int) -> bytes:
    """A list-of-one-tensor blob whose storage record is `size` deflated zeros: a small memory bomb."""
    blob = saved([torch.zeros(2)])
    src, out = zipfile.ZipFile(io.BytesIO(blob)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename.endswith("data/0"):
                dst.writestr(info.filename, bytes(size), compress_type=zipfile.ZIP_DEFLATED)
            else:
                dst.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


@pytest.fixture
def no_torch_load(monkeypatch):
    """Fail the test if anything reaches torch.load: refusals must come from the zip directory alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called on a blob that should have been refused first")

    monkeypatch.setattr(torch, "load", refuse)


def test_round_trip_keeps_values_and_namedtuples():
    Point = collections.namedtuple("Point", ["x", "y"])
    value = {"p": Point(1, torch.arange(3)), "t": (1.5, float("nan"), torch.float64),
             "m": torch.zeros(2, device="meta")}
    back = wire.decode(*wire.encode(value))
    assert back["p"].x == 1 and back["p"]._fields == ("x", "y") and torch.equal(back["p"].y, torch.arange(3))
    assert back["t"][0] == 1.5 and back["t"][2] is torch.float64 and back["m"].shape == (2,)
    again = wire.decode(*wire.encode(Point(3, 4)))
    assert type(again) is type(back["p"])  # one class per (name, fields), made once


def test_a_deflated_record_is_refused_before_torch_load(no_torch_load):
    with pytest.raises(wire.WireError, match="compressed"):
        wire.decode({"__tensor__": 0}, inflating(64 << 20))  # 64 MB of zeros in about 64 KB


def test_blobs_that_do_not_match_what_torch_save_writes_are_refused(no_torch_load):
    good = saved([torch.zeros(2)])
    with pytest.warns(UserWarning):  # zipfile warns about the duplicate it was asked to write
        twice = rezipped(good, extra=[("archive/data/0", b"\0" * 8)])
    with pytest.raises(wire.WireError, match="twice"):
        wire.decode({"__tensor__": 0}, twice)
    with pytest.raises(wire.WireError, match="not a zip"):
        wire.decode({"__tensor__": 0}, b"\x80\x02]q\x00." * 10)
    with pytest.raises(wire.WireError, match="malformed"):
        wire.decode({"__tensor__": 0}, good[:-30] + good[-22:])  # the zip64 locator cut out


def test_overlapping_records_cannot_declare_more_than_the_blob_holds(no_torch_load):
    blob = bytearray(saved([torch.zeros(2)]))
    end = len(blob) - 22
    count, cd_size, cd_offset = struct.unpack_from("<HLL", blob, end + 10)
    entry = blob.index(b"PK\x01\x02", cd_offset)
    size = struct.unpack_from("<L", blob, entry + 24)[0]
    struct.pack_into("<LL", blob, entry + 20, size + 10**6, size + 10**6)  # one record claims a megabyte
    with pytest.raises(wire.WireError, match="declare more than"):
        wire.decode({"__tensor__": 0}, bytes(blob))


def test_the_pickle_and_the_tensor_count_are_capped(monkeypatch, no_torch_load):
    monkeypatch.setattr(wire, "MAX_TENSORS", 3)
    with pytest.raises(wire.WireError, match="records"):
        wire.decode([], saved([torch.zeros(1) for _ in range(30)]))
    monkeypatch.setattr(wire, "MAX_PICKLE", 100)
    with pytest.raises(wire.WireError, match="pickle"):
        wire.decode([], saved([torch.zeros(1)] * 2))
    with pytest.raises(wire.WireError, match="more than 3 tensors"):
        wire.encode([torch.zeros(1) for _ in range(4)])


def test_an_expanded_tensor_is_refused():
    with pytest.raises(wire.WireError, match="more elements than bytes"):
        wire.decode({"__tensor__": 0}, saved([torch.zeros(1).expand(10**12)]))
    with pytest.raises(wire.WireError, match="more elements than bytes"):
        wire.decode([], saved([torch.zeros(1000)[:1].expand(10**6)] * 3))


def test_node_depth_field_and_kind_limits():
    with pytest.raises(wire.WireError, match="values"):
        wire.decode([0] * (wire.MAX_NODES + 1), b"")
    deep: list = []
    for _ in range(wire.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(wire.WireError, match="nested"):
        wire.decode(deep, b"")
    fields = [f"f{i}" for i in range(wire.MAX_FIELDS + 1)]
    with pytest.raises(wire.WireError, match="malformed record"):
        wire.decode({"__namedtuple__": "R", "fields": fields, "values": [0] * len(fields)}, b"")
    with pytest.raises(wire.WireError, match="malformed record"):
        wire.decode({"__namedtuple__": "R", "fields": ["a", "b"], "values": [0]}, b"")
    kinds = [{"__namedtuple__": f"R{i}", "fields": ["a"], "values": [i]} for i in range(wire.MAX_RECORD_TYPES + 1)]
    with pytest.raises(wire.WireError, match="kinds of namedtuple"):
        wire.decode(kinds, b"")


def test_sixty_thousand_records_make_one_class(monkeypatch):
    made = []
    real = collections.namedtuple
    monkeypatch.setattr(collections, "namedtuple", lambda *a, **k: made.append(a) or real(*a, **k))
    wire._record_class.cache_clear()
    tree = [{"__namedtuple__": "R", "fields": ["a"], "values": [i]} for i in range(60_000)]
    back = wire.decode(tree, b"")
    assert len(back) == 60_000 and back[-1].a == 59_999 and len(made) == 1


@pytest.mark.parametrize("tree", [
    {"__tensor__": -1}, {"__tensor__": True}, {"__tensor__": 5}, {"__meta__": [-1], "dtype": "float32"},
    {"__meta__": [2], "dtype": "save"}, {"__meta__": "22", "dtype": "float32"}, {"__dtype__": "nn"},
    {"__tuple__": "abc"}, {"__dict__": "ab"}, {"__namedtuple__": "R", "fields": "a b", "values": [1, 2]},
    {"__namedtuple__": "R", "fields": ["_a"], "values": [1]}, {"__meta__": [2**62, 2**62], "dtype": "float32"},
])
def test_malformed_values_are_wire_errors(tree):
    with pytest.raises(wire.WireError):
        wire.decode(tree, saved([torch.zeros(1)]))


def test_a_deeply_nested_header_is_a_wire_error_not_a_recursion_error():
    head = b"[" * 200_000 + b"]" * 200_000
    buf = bytearray(struct.pack(">I", len(head)) + head + struct.pack(">Q", 0))
    with pytest.raises(wire.WireError):
        wire.parse_frame(buf)
    assert wire.parse_frame(bytearray(wire.frame({"v": [[[1]]]}))) == ({"v": [[[1]]]}, b"")


def test_a_real_answer_with_many_tensors_still_travels():
    value = {f"layer{i}.weight": torch.randn(4, 4) for i in range(300)}
    back = wire.decode(*wire.encode(value))
    assert all(torch.equal(back[k], v) for k, v in value.items())
