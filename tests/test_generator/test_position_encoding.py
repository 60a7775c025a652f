"""The sin-cos position encoding of the location tokens (``projects/toy_shapes``' U-Net reads it too)."""
import pytest
import torch

from mmdet_detdiffusion.generator.position_encoding import axis_frequencies, grid_centres, sincos_2d, sincos_2d_features


def test_frequencies_run_from_half_a_period_per_image_to_a_period_per_two_cells():
    omega = axis_frequencies(4, 64)
    torch.testing.assert_close(omega[[0, -1]], torch.tensor([torch.pi, torch.pi * 32], dtype=torch.float64))
    assert torch.all(omega[1:] > omega[:-1])
    assert axis_frequencies(1, 8).tolist() == [torch.pi]
    with pytest.raises(ValueError, match='cells >= 2'):
        axis_frequencies(4, 1)


def test_token_rows_encode_their_grid_point_x_first_then_y():
    table = sincos_2d(4, 8)
    assert table.shape == (16, 8)
    x, y = grid_centres(4, 4)
    assert (x[6].item(), y[6].item()) == (2.5 / 4, 1.5 / 4)  # pixel cells, row-major: index 6 is cell (x=2, y=1)
    # location token 6 of a 4x4 grid is the point (2/3, 1/3) (GeoDiffusion's points span [0, 1])
    torch.testing.assert_close(table[6], sincos_2d_features(torch.tensor([2 / 3]), torch.tensor([1 / 3]), 8, 4)[0])
    lowest = torch.pi * torch.tensor([2 / 3, 2 / 3, 1 / 3, 1 / 3])  # x sin, x cos, y sin, y cos at pi
    torch.testing.assert_close(table[6, [0, 2, 4, 6]], torch.stack([lowest[0].sin(), lowest[1].cos(),
                                                                    lowest[2].sin(), lowest[3].cos()]))
    with pytest.raises(ValueError, match='divisible by 4'):
        sincos_2d(4, 6)


def test_a_token_matches_its_own_cell_best():
    """Dot products of a location token's encoding with every cell's peak at its own cell."""
    bins, dim = 16, 32
    table = sincos_2d(bins, dim)
    similarity = table @ table.T  # (tokens, cells)
    assert torch.equal(similarity.argmax(dim=1), torch.arange(bins * bins))
