"""Inputs with more than 2**31 elements: every flat index in the kernels is 64-bit.

A forward call on a bfloat16 input of 2 x 257 x 257 x 16384 elements (4.3 GB, output as
much) in which only the last output pixel of the last image samples inside the image (every
other offset points far outside). That pixel's inputs lie past element 2**31, so a 32-bit
index anywhere on the path would read the wrong place or fault. Its result is compared with
the naive definition evaluated on a 4 x 4 crop. Skipped where the memory is not free.
"""

import pytest
import torch

from ops_dcnv3.testing import DCNv3Config
from tests.kernels.dcnv3_naive import naive_dcnv3

pytestmark = [pytest.mark.needs_extension, pytest.mark.slow]
ops = torch.ops.ops_dcnv3

BATCH, SIZE, CHANNELS = 2, 257, 16384
CROP = 4
NEEDED_BYTES = 12 * 2**30  # input + output in bfloat16, with headroom


def free_bytes(device):
    if device == 'cuda':
        return torch.cuda.mem_get_info()[0]
    with open('/proc/meminfo') as meminfo:
        for line in meminfo:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
def test_forward_indexes_past_2_pow_31(device):
    if free_bytes(device) < NEEDED_BYTES:
        pytest.skip(f'needs {NEEDED_BYTES / 2**30:.0f} GiB free on {device}')
    dtype = torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    # kernel 3x3, stride 1, pad 1, dilation 1, one group of all channels, scale 1
    cfg = DCNv3Config(group=1, group_channels=CHANNELS)
    x = torch.empty(BATCH, SIZE, SIZE, CHANNELS, dtype=dtype, device=device)
    assert x.numel() > 2**31
    # Only the crop is ever read; the rest of x may hold anything.
    crop_x = torch.randn(1, CROP, CROP, CHANNELS, generator=gen).to(dtype)
    x[-1:, -CROP:, -CROP:] = crop_x.to(device)
    offset = torch.full((BATCH, SIZE, SIZE, 18), 1e4, dtype=dtype, device=device)
    last_offset = (torch.rand(18, generator=gen) * 2 - 1).to(dtype)  # within 1 pixel
    offset[-1, -1, -1] = last_offset.to(device)
    mask = torch.softmax(torch.rand(BATCH, SIZE, SIZE, 9, generator=gen), -1).to(dtype)
    mask = mask.to(device)

    out = ops.dcnv3_forward(x, offset, mask, *cfg.schema_args)
    del x
    # The last pixel's samples start at flat element (((1 * 257) + 255) * 257 + 255) * 16384.
    assert ((SIZE + SIZE - 2) * SIZE + SIZE - 2) * CHANNELS > 2**31
    crop_offset = offset[-1:, -CROP:, -CROP:].double().cpu()
    crop_mask = mask[-1:, -CROP:, -CROP:].double().cpu()
    expected = naive_dcnv3(crop_x.double(), crop_offset, crop_mask, **cfg.kwargs)
    got = out[-1:, -CROP:, -CROP:].double().cpu()
    scale = expected.abs().max()
    assert scale > 0
    torch.testing.assert_close(got, expected, rtol=3e-2, atol=3e-2 * scale)
    # Pixels whose samples all leave the image are exact zeros, at both ends of the output.
    assert torch.count_nonzero(out[0, :2]) == 0
    assert torch.count_nonzero(out[-1, -CROP - 2 : -CROP]) == 0
