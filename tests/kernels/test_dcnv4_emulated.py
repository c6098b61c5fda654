"""The CUDA kernels' DCNv4 path on the CPU warp emulator, against the naive official math.

Same kernels as DCNv3 (tests/kernels/test_cuda_emulated.py covers the lane layouts and the
warp reductions); these cases check what DCNv4 adds on the GPU: reading offsets and weights
from the packed ``offset_mask`` at the right place for every group and pixel, writing the
gradient there and leaving the padding untouched. Padding entries are NaN (and the tensors sit
inside NaN guards), so a read of the wrong entry shows up as NaN.
"""

import pytest
import torch

from ops_dcnv3.testing import DCNv3Config
from tests.kernels.dcnv3_naive import CASES, random_like_output
from tests.kernels.dcnv4_naive import naive_dcnv4_with_grads
from tests.kernels.test_cuda_emulated import TOLERANCE, assert_matches, emulated, guarded
from tests.ops.op_runs import make_dcnv4_inputs

pytestmark = [pytest.mark.slow, pytest.mark.needs_extension]
__all__ = ['emulated']  # the fixture, shared with the DCNv3 emulator tests

DCNV4_CASES = {
    **{name: CASES[name] for name in ('k3s1p1', 'stride2-dilation2-remove-center')},
    'rectangular-kernel': CASES['rectangular-kernel'],
    'group-channels-16': CASES['group-channels-16'],
    'group-channels-130': CASES['group-channels-130'],
    'xl-groups-odd-width': (DCNv3Config(group=7, group_channels=12, stride=2), (2, 5, 6)),
}


def run_emulated(emulated, cfg, x, offset_mask, grad_output, misalign=False):
    x, offset_mask, grad_output = (guarded(t, misalign) for t in (x, offset_mask, grad_output))
    out = emulated.dcnv4_forward(x, offset_mask, *cfg.schema_args)
    grads = emulated.dcnv4_backward(x, offset_mask, grad_output, *cfg.schema_args)
    return out, grads


@pytest.mark.parametrize('case', list(DCNV4_CASES))
@pytest.mark.parametrize(
    'dtype', [torch.float64, torch.float32, torch.float16], ids=['float64', 'float32', 'float16']
)
def test_dcnv4_matches_naive_official_math(emulated, case, dtype):
    cfg, size = DCNV4_CASES[case]
    x, offset_mask = make_dcnv4_inputs(
        cfg, *size, dtype=dtype, offset_range=3.0, padding_value=float('nan'), seed=2
    )
    needed = cfg.group * cfg.num_points * 3
    grad_output = random_like_output(x, offset_mask)
    out, (grad_x, grad_offset_mask) = run_emulated(emulated, cfg, x, offset_mask, grad_output)
    assert torch.count_nonzero(grad_offset_mask[..., needed:]) == 0  # padding untouched
    expected_out, (expected_x, expected_om) = naive_dcnv4_with_grads(
        x, offset_mask, cfg, grad_output
    )
    tol = 1e-10 if dtype == torch.float64 else TOLERANCE[dtype]
    assert_matches(
        [out, grad_x, grad_offset_mask[..., :needed]],
        [expected_out, expected_x, expected_om[..., :needed]],
        rtol=tol,
        atol_scale=tol,
    )


def test_dcnv4_unaligned_storage_agrees_with_aligned(emulated):
    cfg, size = DCNV4_CASES['group-channels-16']
    x, offset_mask = make_dcnv4_inputs(cfg, *size, dtype=torch.float32)
    grad_output = random_like_output(x, offset_mask)
    aligned = run_emulated(emulated, cfg, x, offset_mask, grad_output)
    scalar = run_emulated(emulated, cfg, x, offset_mask, grad_output, misalign=True)
    assert torch.equal(aligned[0], scalar[0])
    assert_matches([scalar[0], *scalar[1]], [aligned[0], *aligned[1]], rtol=1e-5, atol_scale=1e-5)
