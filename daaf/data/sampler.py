"""Identity-balanced P x K batches (P identities, K images each), deterministic and DDP-aware.

The batch order of an epoch is a pure function of (seed, epoch), so every process of a
distributed run computes the same global order and takes batches ``rank::world_size`` of it,
and a resumed run replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from daaf.errors import DaafError


class PKBatchSampler(Sampler[list[int]]):
    """Yields lists of P*K dataset indices; identities with fewer than K images are resampled.

    One pass uses every identity's images once (in chunks of K). With ``batches_per_epoch``
    (TriNet counts iterations, not passes) an epoch is that many batches per rank, drawn from
    as many passes as needed, each pass seeded by (seed, epoch, pass).
    """

    def __init__(
        self,
        pids: Sequence[int],
        num_identities: int,
        num_instances: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        batches_per_epoch: int | None = None,
    ) -> None:
        self.by_pid: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            self.by_pid[int(pid)].append(index)
        if len(self.by_pid) < num_identities:
            raise DaafError(
                f"P x K sampling needs at least P={num_identities} identities, "
                f"the training split has {len(self.by_pid)}: lower data.num_identities"
            )
        self.p, self.k = num_identities, num_instances
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.batches_per_epoch = batches_per_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def one_pass(self, rng: np.random.Generator) -> list[list[int]]:
        """Every identity's images shuffled into chunks of K, P random identities per batch."""
        chunks: dict[int, list[list[int]]] = {}
        for pid in sorted(self.by_pid):
            indices = np.array(self.by_pid[pid])
            if len(indices) < self.k:
                indices = rng.choice(indices, size=self.k, replace=True)
            indices = rng.permutation(indices)
            usable = len(indices) // self.k * self.k
            chunks[pid] = [indices[i : i + self.k].tolist() for i in range(0, usable, self.k)]
        batches = []
        available = [pid for pid in sorted(chunks) if chunks[pid]]
        while len(available) >= self.p:
            chosen = rng.choice(len(available), size=self.p, replace=False)
            batch = []
            for pid in (available[i] for i in sorted(chosen)):
                batch.extend(chunks[pid].pop())
            batches.append(batch)
            available = [pid for pid in available if chunks[pid]]
        return batches

    def global_batches(self) -> list[list[int]]:
        """All batches of the current epoch, for every rank, in order."""
        if self.batches_per_epoch is None:
            return self.one_pass(np.random.default_rng([self.seed, self.epoch]))
        wanted = self.batches_per_epoch * self.world_size
        batches: list[list[int]] = []
        while len(batches) < wanted:
            rng = np.random.default_rng([self.seed, self.epoch, len(batches)])
            batches.extend(self.one_pass(rng))
        return batches[:wanted]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches()
        usable = len(batches) // self.world_size * self.world_size  # every rank steps equally
        yield from batches[self.rank : usable : self.world_size]

    def __len__(self) -> int:
        if self.batches_per_epoch is not None:
            return self.batches_per_epoch
        return len(self.global_batches()) // self.world_size

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.epoch = state["seed"], state["epoch"]
