import pytest
import torch

from asr.network import CTCModel, ModelConfig, reverse_padded


def model(**kwargs) -> CTCModel:
    torch.manual_seed(0)
    return CTCModel(ModelConfig(hidden_size=24, num_layers=2, **kwargs)).eval()


def test_shapes_and_log_probabilities():
    net = model()
    log_probs, lengths, state = net(torch.randn(3, 41, 80), torch.tensor([41, 30, 9]))
    assert log_probs.shape == (3, 10, 29)
    assert lengths.tolist() == [10, 7, 2]
    assert state is None
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 10))


def test_reverse_padded_reverses_within_length():
    x = torch.arange(10.0).reshape(2, 5, 1)
    out = reverse_padded(x, torch.tensor([5, 3]))
    assert out[0, :, 0].tolist() == [4, 3, 2, 1, 0]
    assert out[1, :, 0].tolist() == [7, 6, 5, 8, 9]
    torch.testing.assert_close(reverse_padded(out, torch.tensor([5, 3])), x)


def test_bidirectional_output_does_not_depend_on_padding():
    net = model()
    short = torch.randn(1, 40, 80)
    alone, _, _ = net(short, torch.tensor([40]))
    padded = torch.cat([short, torch.randn(1, 60, 80)], dim=1)
    batch = torch.cat([padded, torch.randn(1, 100, 80)])
    together, lengths, _ = net(batch, torch.tensor([40, 100]))
    torch.testing.assert_close(together[0, : lengths[0]], alone[0], atol=1e-5, rtol=1e-5)


def test_unidirectional_chunks_with_state_equal_whole():
    net = model(bidirectional=False)
    feats = torch.randn(2, 96, 80)
    whole, _, _ = net(feats, torch.tensor([96, 96]))
    state, pieces = None, []
    for start, size in ((0, 8), (8, 4), (12, 36), (48, 48)):
        chunk = feats[:, start : start + size]
        out, _, state = net(chunk, torch.tensor([size, size]), state)
        pieces.append(out)
        assert state[0].shape == (2, 2, 24)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-5, rtol=1e-5)


def test_unidirectional_is_causal():
    net = model(bidirectional=False)
    feats = torch.randn(1, 80, 80)
    changed = feats.clone()
    changed[:, 40:] += 1.0
    a, _, _ = net(feats, torch.tensor([80]))
    b, _, _ = net(changed, torch.tensor([80]))
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_bidirectional_refuses_state():
    net = model()
    with pytest.raises(ValueError, match="carries state"):
        net(torch.randn(1, 8, 80), torch.tensor([8]), (torch.zeros(2, 1, 24), torch.zeros(2, 1, 24)))


def test_wrong_feature_size_is_named():
    with pytest.raises(ValueError, match=r"features must be \(N, T, 80\)"):
        model()(torch.randn(1, 8, 40), torch.tensor([8]))


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.5)


def test_conv_front_end_shapes_and_padding_independence():
    net = model(frontend="conv2d", conv_channels=8)
    short = torch.randn(1, 41, 80)
    alone, alone_lengths, _ = net(short, torch.tensor([41]))
    assert alone.shape == (1, 11, 29) and alone_lengths.tolist() == [11]  # ceil(ceil(41 / 2) / 2)
    batch = torch.cat([torch.cat([short, torch.randn(1, 59, 80)], dim=1), torch.randn(1, 100, 80)])
    together, lengths, _ = net(batch, torch.tensor([41, 100]))
    assert lengths.tolist() == [11, 25]
    torch.testing.assert_close(together[0, :11], alone[0], atol=1e-5, rtol=1e-5)


def test_conv_front_end_refuses_state_and_odd_subsampling():
    net = model(frontend="conv2d", bidirectional=False)
    with pytest.raises(ValueError, match="carries state"):
        net(torch.randn(1, 8, 80), torch.tensor([8]), (torch.zeros(2, 1, 24), torch.zeros(2, 1, 24)))
    with pytest.raises(ValueError, match="subsamples by 2, 4 or 8"):
        ModelConfig(frontend="conv2d", stack_frames=3)
    with pytest.raises(ValueError, match="frontend"):
        ModelConfig(frontend="transformer")


def test_gru_streams_with_its_own_state_and_has_fewer_weights():
    gru = model(bidirectional=False, cell="gru")
    lstm = model(bidirectional=False)
    assert sum(p.numel() for p in gru.parameters()) < 0.8 * sum(p.numel() for p in lstm.parameters())
    feats = torch.randn(2, 64, 80)
    whole, _, _ = gru(feats, torch.tensor([64, 64]))
    first, _, state = gru(feats[:, :24], torch.tensor([24, 24]))
    assert len(state) == 1 and state[0].shape == (2, 2, 24)  # (h,): a GRU has no cell state
    second, _, _ = gru(feats[:, 24:], torch.tensor([40, 40]), state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=1e-5)


def test_bidirectional_gru_does_not_depend_on_padding():
    net = model(cell="gru")
    short = torch.randn(1, 40, 80)
    alone, _, _ = net(short, torch.tensor([40]))
    batch = torch.cat([torch.cat([short, torch.randn(1, 20, 80)], dim=1), torch.randn(1, 60, 80)])
    together, lengths, _ = net(batch, torch.tensor([40, 60]))
    torch.testing.assert_close(together[0, : lengths[0]], alone[0], atol=1e-5, rtol=1e-5)


def test_unknown_cell_is_refused():
    with pytest.raises(ValueError, match="cell"):
        ModelConfig(cell="rnn")
