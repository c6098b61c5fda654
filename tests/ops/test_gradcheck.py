"""Finite-difference gradient checks (float64) of the compiled op for input, offset and mask."""

import pytest
import torch

from ops_dcnv3 import dcnv3
from ops_dcnv3.testing import DCNv3Config, make_inputs

CONFIGS = {
    'base': DCNv3Config(group=2, group_channels=3),
    'k3x5_s2_d2_p0_rc_scale2': DCNv3Config(
        kernel_h=3,
        kernel_w=5,
        stride_h=2,
        stride_w=1,
        pad_h=0,
        pad_w=2,
        dilation_h=2,
        dilation_w=1,
        group=2,
        group_channels=2,
        offset_scale=2.0,
        remove_center=True,
    ),
}


@pytest.mark.parametrize('name', list(CONFIGS))
def test_gradcheck(name):
    cfg = CONFIGS[name]
    # Fractional parts near 0.25 (0.5 after offset_scale 2) keep every sample away from the
    # integer grid lines where bilinear interpolation is not differentiable.
    input, offset, mask = make_inputs(cfg, 2, 7, 5, dtype=torch.float64, fractional_offsets=0.25)
    inputs = [t.requires_grad_() for t in (input, offset, mask)]
    assert torch.autograd.gradcheck(
        lambda i, o, m: dcnv3(i, o, m, *cfg.args), inputs, eps=1e-6, atol=1e-7, rtol=1e-5
    )
