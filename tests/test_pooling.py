import pytest
import torch

from o1_rag.pooling import gather_positions, last_token_pool, marker_positions


def _padded(side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    lengths = [5, 2, 3]
    width = 5
    states = [torch.randn(n, 4) for n in lengths]
    hidden = torch.zeros(3, width, 4)
    mask = torch.zeros(3, width, dtype=torch.long)
    for row, seq in enumerate(states):
        if side == "left":
            hidden[row, width - len(seq) :] = seq
            mask[row, width - len(seq) :] = 1
        else:
            hidden[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
    expected = torch.stack([seq[-1] for seq in states])
    return hidden, mask, expected


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_pool_picks_last_real_token(side: str) -> None:
    hidden, mask, expected = _padded(side)
    assert torch.equal(last_token_pool(hidden, mask), expected)


def test_last_token_pool_same_under_both_paddings() -> None:
    left = last_token_pool(*_padded("left")[:2])
    right = last_token_pool(*_padded("right")[:2])
    assert torch.equal(left, right)


def test_marker_positions_first_and_last_ignore_padding() -> None:
    emb, pad = 9, 9  # padding with the marker id itself must not count
    ids = torch.tensor([[pad, pad, 1, emb, 2, emb], [1, emb, 3, 4, emb, pad]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    assert marker_positions(ids, mask, emb).tolist() == [[3, 5], [1, 4]]


def test_marker_positions_rejects_row_without_marker() -> None:
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="no <emb> marker"):
        marker_positions(ids, torch.ones_like(ids), 7)


def test_gather_positions() -> None:
    hidden = torch.arange(24, dtype=torch.float).view(2, 3, 4)
    out = gather_positions(hidden, torch.tensor([2, 0]))
    assert torch.equal(out, torch.stack([hidden[0, 2], hidden[1, 0]]))
