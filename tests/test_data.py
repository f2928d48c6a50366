import pytest
import torch

from tether import rate_encoding


def test_rate_encoding_is_seeded_bernoulli():
    x = torch.tensor([[0.0, 0.25, 1.0]])
    a = rate_encoding(x, 4000, torch.Generator().manual_seed(1))
    b = rate_encoding(x, 4000, torch.Generator().manual_seed(1))
    assert a.shape == (4000, 1, 3) and torch.equal(a, b)
    rates = a.mean(0).flatten()
    assert rates[0] == 0 and rates[2] == 1 and abs(rates[1].item() - 0.25) < 0.03


def test_rate_encoding_rejects_bad_input():
    with pytest.raises(ValueError, match="n_steps"):
        rate_encoding(torch.rand(2), 0)
    with pytest.raises(ValueError, match="probabilities"):
        rate_encoding(torch.tensor([1.5]), 3)
