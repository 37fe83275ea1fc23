"""The DecodeTrace contract: packing, slicing, identity and safe atomic storage."""

import numpy as np
import pytest

from ciarsim.errors import TraceFormatError
from ciarsim.trace import (
    OP_CLOUD,
    OP_DEVICE,
    OP_DTYPE,
    SOURCE_CLOUD,
    SOURCE_DEVICE_KEPT,
    ImageTrace,
    TraceSet,
    cloud_op,
    device_op,
)


def _image(i: int, n_device: int) -> ImageTrace:
    ops = np.array(
        [cloud_op(steps=2, new_tokens=1, context=0, tokens_down=2, prompt_up=True),
         device_op(n_device, context=2)],
        dtype=OP_DTYPE,
    )
    source = np.array([SOURCE_CLOUD] * 2 + [SOURCE_DEVICE_KEPT] * 2, dtype=np.uint8)
    return ImageTrace(i, ops, np.arange(4, dtype=np.int32) + i, np.full(4, np.nan, np.float32), source)


def test_pack_and_slice_round_trip():
    ts = TraceSet.from_images([_image(7, 2), _image(9, 2)], meta={"policy": "x"})
    assert len(ts) == 2 and ts.tokens_per_image == 4
    second = ts.image(1)
    assert second.image == 9
    assert list(second.ops["kind"]) == [OP_CLOUD, OP_DEVICE]
    assert second.cloud_calls == 1
    assert second.tokens.tolist() == [9, 10, 11, 12]


def test_set_cloud_passes_match_each_images():
    extra = ImageTrace(3, np.array([cloud_op(steps=5, new_tokens=1, context=0, tokens_down=5),
                                    device_op(1, context=5), cloud_op(steps=1, new_tokens=1, context=6, tokens_down=1)],
                                   dtype=OP_DTYPE),
                       np.zeros(4, np.int32), np.full(4, np.nan, np.float32), np.zeros(4, np.uint8))  # fmt: skip
    ts = TraceSet.from_images([_image(7, 2), extra, _image(9, 0)], meta={})
    assert ts.cloud_passes().tolist() == [ts.image(i).cloud_passes for i in range(3)] == [3, 6, 3]


def test_save_load_is_identical_and_atomic(tmp_path):
    ts = TraceSet.from_images([_image(0, 2)], meta={"policy": "ciar", "tau": 0.3})
    path = tmp_path / "t.npz"
    ts.save(path)
    assert not list(tmp_path.glob("*.tmp"))
    back = TraceSet.load(path)
    assert back.digest() == ts.digest()
    assert back.meta == {"policy": "ciar", "tau": 0.3}


def test_digest_changes_with_content():
    a = TraceSet.from_images([_image(0, 2)], meta={})
    b = TraceSet.from_images([_image(0, 3)], meta={})
    c = TraceSet.from_images([_image(0, 2)], meta={"k": 1})
    assert len({a.digest(), b.digest(), c.digest()}) == 3


def test_garbage_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TraceFormatError, match="not a readable ciarsim trace set"):
        TraceSet.load(bad)


def test_v1_trace_loads_as_a_chain(tmp_path):
    """A format-v1 file (no dep/decided/wasted columns) loads; every op waits for the one before."""
    from ciarsim.trace import DEP_PREV, OP_DTYPE_V1, check_deps

    ts = TraceSet.from_images([_image(0, 2)], meta={"policy": "x"})
    v1_ops = np.zeros(len(ts.ops), OP_DTYPE_V1)
    for name in OP_DTYPE_V1.names:
        v1_ops[name] = ts.ops[name]
    path = tmp_path / "v1.npz"
    np.savez(path, version=np.array(1), images=ts.images, offsets=ts.offsets, ops=v1_ops,
             tokens=ts.tokens, u=ts.u, source=ts.source, meta=np.array('{"policy": "x"}'))
    back = TraceSet.load(path)
    assert back.ops.dtype == OP_DTYPE
    assert (back.ops["dep"] == DEP_PREV).all() and (back.ops["decided"] == -1).all()
    assert (back.ops[["kind", "steps", "tokens_down"]] == ts.ops[["kind", "steps", "tokens_down"]]).all()
    assert check_deps(back.ops) is None


def test_unknown_version_is_a_clear_error(tmp_path):
    ts = TraceSet.from_images([_image(0, 2)], meta={})
    path = tmp_path / "v9.npz"
    np.savez(path, version=np.array(9), images=ts.images, offsets=ts.offsets, ops=ts.ops,
             tokens=ts.tokens, u=ts.u, source=ts.source, meta=np.array("{}"))
    with pytest.raises(TraceFormatError, match="version 9.*delete the trace cache"):
        TraceSet.load(path)


def test_dependencies_must_point_to_earlier_ops():
    from ciarsim.trace import DEP_NONE, check_deps, join_op

    ok = np.array([cloud_op(steps=1, new_tokens=1, context=0, tokens_down=1, dep=DEP_NONE),
                   device_op(3, 0, dep=DEP_NONE), join_op(0)], OP_DTYPE)
    assert check_deps(ok) is None
    bad = ok.copy()
    bad["dep"][1] = 2  # waits for a later op: a cycle in issue order
    assert "op 1 waits for op 2" in check_deps(bad)
