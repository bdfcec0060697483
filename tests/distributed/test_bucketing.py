"""GradientBucketer plans: zero-copy regions, packed buckets, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from distkeras.distributed import GradientBucketer, LocalCommunicator, fused_allreduce


def flat_views(shapes, dtype="float32"):
    sizes = [int(np.prod(s)) for s in shapes]
    flat = np.arange(sum(sizes), dtype=dtype)
    views, off = [], 0
    for s, n in zip(shapes, sizes):
        views.append(flat[off : off + n].reshape(s))
        off += n
    return flat, views


def test_views_of_one_flat_buffer_form_one_zero_copy_bucket():
    flat, views = flat_views([(30, 20), (20,), (20, 10), (10,)])
    (bucket,) = GradientBucketer(bucket_bytes=64, inplace_bytes=0).plan(views)
    assert not bucket.packed and bucket.buffer.size == flat.size
    assert np.shares_memory(bucket.buffer, flat)
    bucket.buffer += 1  # writes go straight into the arrays
    assert (views[3] == np.arange(820, 830) + 1).all() and (flat[:3] == [1, 2, 3]).all()


def test_small_separate_arrays_are_packed_within_bucket_bytes():
    arrays = [np.full(10, i, np.float32) for i in range(10)]  # 40 bytes each
    buckets = GradientBucketer(bucket_bytes=100, inplace_bytes=1 << 20).plan(arrays)
    assert all(b.packed and b.nbytes <= 100 for b in buckets)
    assert [len(b.members) for b in buckets] == [2, 2, 2, 2, 2]
    assert sorted(i for b in buckets for i, _, _ in b.members) == list(range(10))


def test_large_arrays_are_reduced_in_place_and_small_ones_packed():
    big = np.ones(1000, np.float32)
    small = [np.ones(3, np.float32), np.ones(2, np.float32)]
    buckets = GradientBucketer(bucket_bytes=1024, inplace_bytes=400).plan([small[0], big, small[1]])
    layout = sorted((b.packed, [m[0] for m in b.members]) for b in buckets)
    assert layout == [(False, [1]), (True, [0, 2])]
    assert any(np.shares_memory(b.buffer, big) for b in buckets)


def test_dtypes_get_separate_buckets_and_layouts_round_trip():
    rng = np.random.default_rng(0)
    arrays = [
        rng.standard_normal((4, 3)).astype(np.float32),
        rng.standard_normal((3, 4)).T,  # non-contiguous float64
        np.arange(5),
        rng.standard_normal(7).astype(np.float32)[::2],  # strided
    ]
    readonly = np.ones(3, np.float32)
    readonly.flags.writeable = False
    arrays.append(readonly)
    originals = [a.copy() for a in arrays]
    buckets = GradientBucketer(bucket_bytes=4096).plan(arrays)
    assert all(len({arrays[i].dtype for i, _, _ in b.members}) == 1 for b in buckets)
    results = [None] * len(arrays)
    for b in buckets:
        b.pack(arrays)
        b.buffer *= 2
        b.unpack(arrays, results)
    for a, r, o in zip(arrays, results, originals):
        np.testing.assert_array_equal(r, o * 2)
        assert (r is a) == a.flags.writeable
    np.testing.assert_array_equal(readonly, 1)


def test_staging_buffers_are_reused_only_when_asked():
    arrays = [np.ones(3), np.ones(4)]
    bucketer = GradientBucketer(inplace_bytes=1 << 20)
    first = bucketer.plan(arrays)[0].buffer
    assert np.shares_memory(bucketer.plan(arrays)[0].buffer, first)
    assert not np.shares_memory(bucketer.plan(arrays, reuse_staging=False)[0].buffer, first)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_bucket_bytes_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="Received: bucket_bytes="):
        GradientBucketer(bucket_bytes=bad)


def test_fused_allreduce_delegates_to_the_communicator():
    _, views = flat_views([(2, 2), (3,)], "float64")
    out = fused_allreduce(LocalCommunicator(), views, "mean", bucket_bytes=16)
    assert all(o is v for o, v in zip(out, views))


def test_plans_of_flat_views_are_cached_by_identity():
    flat, views = flat_views([(3, 4), (5,)])
    bucketer = GradientBucketer(inplace_bytes=0)
    first = bucketer.plan(views)
    assert bucketer.plan(views) is first
    _, other = flat_views([(3, 4), (5,)])
    (bucket,) = bucketer.plan(other)
    assert np.shares_memory(bucket.buffer, other[0]) and not np.shares_memory(bucket.buffer, flat)
