"""dcnv3_reference against hand computations and the naive definition of
tests/kernels/dcnv3_naive.py.

Everything here runs without the compiled extension.
"""

import pytest
import torch
import torch.nn.functional as F

from ops_dcnv3 import dcnv3_reference, sampling_points
from ops_dcnv3.testing import DCNv3Config, make_inputs
from tests.kernels.dcnv3_naive import naive_dcnv3


def one_hot_mask(config, batch, out_h, out_w, point, dtype=torch.float64):
    mask = torch.zeros(batch, out_h, out_w, config.group, config.num_points, dtype=dtype)
    mask[..., point] = 1
    return mask.flatten(3)


def constant_offset(config, batch, out_h, out_w, dx, dy, dtype=torch.float64):
    offset = torch.zeros(batch, out_h, out_w, config.group, config.num_points, 2, dtype=dtype)
    offset[..., 0], offset[..., 1] = dx, dy
    return offset.flatten(3)


def shifted(image, shift_y, shift_x):
    """out[:, y, x] = image[:, y + shift_y, x + shift_x], zero where that is outside."""
    n, h, w, c = image.shape
    out = torch.zeros_like(image)
    for y in range(h):
        for x in range(w):
            sy, sx = y + shift_y, x + shift_x
            if 0 <= sy < h and 0 <= sx < w:
                out[:, y, x] = image[:, sy, sx]
    return out


def test_sampling_points_order_x_slowest():
    points = sampling_points(3, 5, 1, 2, remove_center=False)  # kernel_h=3, kernel_w=5, dil_w=2
    expected = [[x, y] for x in (-4, -2, 0, 2, 4) for y in (-1, 0, 1)]
    assert points.tolist() == expected
    centre_dropped = sampling_points(3, 3, 1, 1, remove_center=True).tolist()
    assert centre_dropped == [[x, y] for x in (-1, 0, 1) for y in (-1, 0, 1) if (x, y) != (0, 0)]


@pytest.mark.parametrize('remove_center', [False, True])
def test_zero_offset_one_hot_mask_is_shifted_copy(remove_center):
    cfg = DCNv3Config(group=1, group_channels=3, remove_center=remove_center)
    image = torch.randn(2, 5, 6, 3, dtype=torch.float64)
    points = sampling_points(3, 3, 1, 1, remove_center).long().tolist()
    for k, (dx, dy) in enumerate(points):
        out = dcnv3_reference(
            image, constant_offset(cfg, 2, 5, 6, 0, 0), one_hot_mask(cfg, 2, 5, 6, k), **cfg.kwargs
        )
        torch.testing.assert_close(out, shifted(image, dy, dx), atol=1e-12, rtol=0)


def test_integer_offset_moves_sample_exactly():
    cfg = DCNv3Config(group=1, group_channels=2)
    image = torch.randn(1, 6, 7, 2, dtype=torch.float64)
    centre = 4  # point (i_x=1, i_y=1) of a 3x3 kernel
    out = dcnv3_reference(
        image,
        constant_offset(cfg, 1, 6, 7, 2, -1),
        one_hot_mask(cfg, 1, 6, 7, centre),
        **cfg.kwargs,
    )
    torch.testing.assert_close(out, shifted(image, -1, 2), atol=1e-12, rtol=0)


def test_half_pixel_offset_averages_neighbours():
    cfg = DCNv3Config(group=1, group_channels=2)
    image = torch.randn(1, 4, 5, 2, dtype=torch.float64)
    out = dcnv3_reference(
        image, constant_offset(cfg, 1, 4, 5, 0.5, 0), one_hot_mask(cfg, 1, 4, 5, 4), **cfg.kwargs
    )
    expected = 0.5 * (image + shifted(image, 0, 1))  # beyond the last column reads zero
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    out = dcnv3_reference(
        image, constant_offset(cfg, 1, 4, 5, 0.25, 0.5), one_hot_mask(cfg, 1, 4, 5, 4), **cfg.kwargs
    )
    expected = 0.5 * (0.75 * image + 0.25 * shifted(image, 0, 1)) + 0.5 * (
        0.75 * shifted(image, 1, 0) + 0.25 * shifted(image, 1, 1)
    )
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize('far', [1e3, -1e3, 1e7])
def test_far_away_locations_read_zero(far):
    cfg = DCNv3Config(group=2, group_channels=2)
    image = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    mask = torch.full((1, 4, 4, 2 * 9), 1 / 9, dtype=torch.float64)
    out = dcnv3_reference(image, constant_offset(cfg, 1, 4, 4, far, 0.3), mask, **cfg.kwargs)
    assert torch.count_nonzero(out) == 0


def test_offset_scale_scales_grid_and_offset():
    cfg = DCNv3Config(group=1, group_channels=2, padding=2, offset_scale=2.0)
    image = torch.randn(1, 6, 6, 2, dtype=torch.float64)
    # point (i_x=2, i_y=1): grid (1, 0) -> 2 pixels right; offset dy=0.5 -> 1 pixel down.
    out = dcnv3_reference(
        image,
        constant_offset(cfg, 1, 8, 8, 0, 0.5),
        one_hot_mask(cfg, 1, 8, 8, 2 * 3 + 1),
        **cfg.kwargs,
    )
    padded = F.pad(image, (0, 0, 2, 2, 2, 2))
    # base(p) = 1 + p in padded pixels; the sample is at base + (2, 1)
    torch.testing.assert_close(out, shifted(padded, 2, 3)[:, :8, :8], atol=1e-12, rtol=0)


def test_groups_are_independent_and_mask_weights_points():
    cfg = DCNv3Config(group=2, group_channels=1)
    image = torch.randn(1, 5, 5, 2, dtype=torch.float64)
    mask = torch.zeros(1, 5, 5, 2, 9, dtype=torch.float64)
    mask[..., 0, 4] = 1  # group 0: centre
    mask[..., 1, 0], mask[..., 1, 8] = 0.25, 0.75  # group 1: top-left and bottom-right
    out = dcnv3_reference(image, constant_offset(cfg, 1, 5, 5, 0, 0), mask.flatten(3), **cfg.kwargs)
    torch.testing.assert_close(out[..., 0], image[..., 0], atol=1e-12, rtol=0)
    expected = 0.25 * shifted(image, -1, -1) + 0.75 * shifted(image, 1, 1)
    torch.testing.assert_close(out[..., 1], expected[..., 1], atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    'cfg, size',
    [
        (DCNv3Config(group=2, group_channels=3), (4, 5)),
        (
            DCNv3Config(
                kernel_size=(3, 5),
                stride=(2, 1),
                padding=(0, 2),
                dilation=(2, 1),
                group=1,
                group_channels=2,
                offset_scale=2.0,
            ),
            (7, 6),
        ),
        (DCNv3Config(stride=2, group=3, group_channels=2, remove_center=True), (5, 5)),
    ],
)
def test_matches_naive_definition(cfg, size):
    input, offset, mask = make_inputs(cfg, 2, *size, dtype=torch.float64, offset_range=3.0)
    torch.testing.assert_close(
        dcnv3_reference(input, offset, mask, **cfg.kwargs),
        naive_dcnv3(input, offset, mask, **cfg.kwargs),
        atol=1e-12,
        rtol=0,
    )


@pytest.mark.parametrize('kernel_size', [3, (3, 5)])
def test_int_and_pair_arguments_agree(kernel_size):
    """An int means the same (h, w) pair; the pairs are (h, w), not (w, h)."""
    kernel_h, kernel_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    given = DCNv3Config(kernel_size=kernel_size, stride=2, padding=(1, 2), group=2)
    as_pairs = DCNv3Config(kernel_size=(kernel_h, kernel_w), stride=(2, 2), padding=(1, 2), group=2)
    input, offset, mask = make_inputs(given, 1, 7, 8, dtype=torch.float64)
    out = dcnv3_reference(input, offset, mask, **given.kwargs)
    assert out.shape == (1, *given.output_size(7, 8), given.channels)
    torch.testing.assert_close(out, dcnv3_reference(input, offset, mask, **as_pairs.kwargs))
    # Output size per axis: H_out from (kernel_h, stride_h, pad_h), W_out from the w values.
    assert out.shape[1:3] == ((7 + 2 - kernel_h) // 2 + 1, (8 + 4 - kernel_w) // 2 + 1)


def test_empty_batch_and_low_precision():
    cfg = DCNv3Config(group=2, group_channels=4)
    input, offset, mask = make_inputs(cfg, 2, 4, 4, dtype=torch.float64)
    assert dcnv3_reference(input[:0], offset[:0], mask[:0], **cfg.kwargs).shape == (0, 4, 4, 8)
    expected = dcnv3_reference(input, offset, mask, **cfg.kwargs)
    for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 4e-3), (torch.bfloat16, 3e-2)):
        out = dcnv3_reference(*(t.to(dtype) for t in (input, offset, mask)), **cfg.kwargs)
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), expected, atol=tol, rtol=tol)
