"""P x K sampler: batch structure, determinism from (seed, epoch), disjoint DDP slices, resume."""

import numpy as np
import pytest

from daaf.data.sampler import PKBatchSampler
from daaf.errors import DaafError

PIDS = np.repeat(np.arange(10), [6, 5, 4, 3, 2, 6, 5, 4, 3, 8])


def assert_pk(batches, p, k):
    assert batches
    for batch in batches:
        ids = PIDS[batch]
        assert len(batch) == p * k and len(set(ids)) == p
        assert all((ids == i).sum() == k for i in set(ids))


def test_structure_and_determinism():
    sampler = PKBatchSampler(PIDS, num_identities=4, num_instances=2, seed=3)
    batches = list(sampler)
    assert_pk(batches, 4, 2)
    assert len(batches) == len(sampler)
    assert batches == list(PKBatchSampler(PIDS, 4, 2, seed=3))
    assert batches != list(PKBatchSampler(PIDS, 4, 2, seed=4))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    # an identity with fewer than K images is resampled with replacement
    assert_pk(list(PKBatchSampler(PIDS, 4, 3, seed=0)), 4, 3)


def test_ranks_take_disjoint_slices_of_the_same_global_order():
    full = PKBatchSampler(PIDS, 4, 2, seed=3).global_batches()
    ranks = [list(PKBatchSampler(PIDS, 4, 2, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(full) // 2
    assert ranks[0] == full[0 : 2 * len(ranks[0]) : 2]
    assert ranks[1] == full[1 : 2 * len(ranks[1]) : 2]
    assert not {tuple(b) for b in ranks[0]} & {tuple(b) for b in ranks[1]}


def test_fixed_batches_per_epoch_spans_passes():
    sampler = PKBatchSampler(PIDS, 4, 2, seed=1, batches_per_epoch=20)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 20
    assert_pk(batches, 4, 2)
    ranks = [list(PKBatchSampler(PIDS, 4, 2, 1, r, 2, batches_per_epoch=20)) for r in (0, 1)]
    full = PKBatchSampler(PIDS, 4, 2, 1, 0, 2, batches_per_epoch=20).global_batches()
    assert len(full) == 40 and full[:20] != full[20:]
    assert ranks[0] == full[0::2] and ranks[1] == full[1::2]


def test_state_dict_resumes_the_epoch_order():
    sampler = PKBatchSampler(PIDS, 4, 2, seed=5)
    sampler.set_epoch(3)
    fresh = PKBatchSampler(PIDS, 4, 2, seed=0)
    fresh.load_state_dict(sampler.state_dict())
    assert list(fresh) == list(sampler)


def test_needs_p_identities():
    with pytest.raises(DaafError, match="at least P=4 identities"):
        PKBatchSampler([0, 0, 1, 1], num_identities=4, num_instances=2)
