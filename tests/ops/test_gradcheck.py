"""Finite-difference gradient checks (float64) of the compiled op for input, offset and mask."""

import pytest
import torch

from ops_dcnv3 import dcnv3
from ops_dcnv3.testing import DCNv3Config, make_inputs

pytestmark = pytest.mark.needs_extension

CONFIGS = {
    'base': DCNv3Config(group=2, group_channels=3),
    'k3x5_s2_d2_p0_rc_scale2': DCNv3Config(
        kernel_size=(3, 5),
        stride=(2, 1),
        padding=(0, 2),
        dilation=(2, 1),
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
        lambda i, o, m: dcnv3(i, o, m, **cfg.kwargs), inputs, eps=1e-6, atol=1e-7, rtol=1e-5
    )
