"""Inputs with more than 2**31 elements: every flat index in the kernels is 64-bit.

A forward call on a bfloat16 input of 2 x 257 x 257 x 16384 elements (4.3 GB) in which only
the last output pixel of the last image samples inside the image (every other offset points
far outside). That pixel's inputs lie past element 2**31, so a 32-bit index anywhere on the
path would read the wrong place or fault. Its result is compared with the naive definition
evaluated on a 4 x 4 crop.

Two sizes of the same check:

- stride 1: the output is as large as the input (past 2**31 too); it needs 12 GiB free on
  the device and is skipped without them.
- stride 128 (CPU): a 3 x 3 output. Only the crop of the input is ever written or read, and
  the rest of its allocation is never touched, so the operating system commits a few pages
  of it: this runs on any machine that lets a process reserve 4.3 GB of address space.
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


def check_last_pixel_past_2_pow_31(device: str, stride: int) -> None:
    """Runs the forward with kernel 3x3, padding 1, one group of all channels and the
    given stride, and checks the last output pixel against the naive op on the crop."""
    dtype = torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    cfg = DCNv3Config(stride=stride, group=1, group_channels=CHANNELS)
    out_size = cfg.output_size(SIZE, SIZE)[0]
    # The last output pixel samples around input pixel (out_size - 1) * stride, the last one.
    assert (out_size - 1) * stride == SIZE - 1
    try:
        x = torch.empty(BATCH, SIZE, SIZE, CHANNELS, dtype=dtype, device=device)
    except (RuntimeError, MemoryError) as error:  # address space refused (strict overcommit)
        pytest.skip(f'cannot reserve the 4.3 GB input on {device}: {error}')
    assert x.numel() > 2**31
    # Only the crop is ever read; the rest of x may hold anything.
    crop_x = torch.randn(1, CROP, CROP, CHANNELS, generator=gen).to(dtype)
    x[-1:, -CROP:, -CROP:] = crop_x.to(device)
    offset = torch.full((BATCH, out_size, out_size, 18), 1e4, dtype=dtype, device=device)
    last_offset = (torch.rand(18, generator=gen) * 2 - 1).to(dtype)  # within 1 pixel
    offset[-1, -1, -1] = last_offset.to(device)
    mask = torch.softmax(torch.rand(BATCH, out_size, out_size, 9, generator=gen), -1).to(dtype)
    mask = mask.to(device)

    out = ops.dcnv3_forward(x, offset, mask, *cfg.schema_args)
    del x
    # The last pixel's samples start at flat element (((1 * 257) + 255) * 257 + 255) * 16384.
    assert ((SIZE + SIZE - 2) * SIZE + SIZE - 2) * CHANNELS > 2**31
    # The naive op on the crop at stride 1: its output pixel (3, 3) is the last pixel.
    crop_offset = torch.full((1, CROP, CROP, 18), 1e4, dtype=torch.float64)
    crop_offset[0, -1, -1] = last_offset.double()
    crop_mask = torch.zeros(1, CROP, CROP, 9, dtype=torch.float64)
    crop_mask[0, -1, -1] = mask[-1, -1, -1].double().cpu()
    expected = naive_dcnv3(crop_x.double(), crop_offset, crop_mask, **DCNv3Config(group=1).kwargs)[
        0, -1, -1
    ]
    got = out[-1, -1, -1].double().cpu()
    scale = expected.abs().max()
    assert scale > 0
    torch.testing.assert_close(got, expected, rtol=3e-2, atol=3e-2 * scale)
    # Pixels whose samples all leave the image are exact zeros, at both ends of the output.
    assert torch.count_nonzero(out[0, :2]) == 0
    assert torch.count_nonzero(out[-1, -2]) == 0 and torch.count_nonzero(out[-1, -1, :-1]) == 0


@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
def test_forward_indexes_past_2_pow_31(device):
    if free_bytes(device) < NEEDED_BYTES:
        pytest.skip(f'needs {NEEDED_BYTES / 2**30:.0f} GiB free on {device}')
    check_last_pixel_past_2_pow_31(device, stride=1)


def test_forward_indexes_past_2_pow_31_with_a_small_output_on_the_cpu():
    check_last_pixel_past_2_pow_31('cpu', stride=128)
