"""Query-gallery distances."""

import torch

from daaf.evaluation.distance import squared_norms


def test_squared_norms_are_the_sum_of_squares_to_the_bit():
    x = torch.randn(2500, 300, generator=torch.Generator().manual_seed(0)) * 30
    assert torch.equal(squared_norms(x), (x * x).sum(dim=1))  # slices of 1,024 rows and a rest
    assert squared_norms(x[:0]).shape == (0,)
