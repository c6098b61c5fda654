"""The benchmark's pure-PyTorch formulations (ops_dcnv3.baselines) against dcnv3_reference."""

import pytest
import torch

from ops_dcnv3 import dcnv3_output_size, dcnv3_reference
from ops_dcnv3.baselines import dcnv3_grid_sample_official, dcnv3_pytorch_fast

CASES = [
    dict(kernel_size=3, stride=1, padding=1, dilation=1, group=2),
    dict(kernel_size=(3, 5), stride=2, padding=(1, 2), dilation=1, group=3),
    dict(kernel_size=3, stride=1, padding=2, dilation=2, group=1, offset_scale=2.0),
    dict(kernel_size=3, stride=1, padding=1, dilation=1, group=2, remove_center=True),
    dict(kernel_size=3, stride=1, padding=0, dilation=1, group=2, softmax_mask=True),
]


def points(kwargs) -> int:
    kernel = kwargs['kernel_size']
    kernel_h, kernel_w = (kernel, kernel) if isinstance(kernel, int) else kernel
    return kernel_h * kernel_w - int(kwargs.get('remove_center', False))


@pytest.mark.parametrize('baseline', [dcnv3_grid_sample_official, dcnv3_pytorch_fast])
@pytest.mark.parametrize('kwargs', CASES)
def test_baseline_matches_reference(baseline, kwargs):
    gen = torch.Generator().manual_seed(0)
    group, k = kwargs['group'], points(kwargs)
    x = torch.randn(2, 9, 8, group * 4, dtype=torch.float64, generator=gen)
    out_h, out_w = (
        dcnv3_output_size(size, _pair(kwargs['kernel_size'])[axis], _pair(kwargs['stride'])[axis],
                          _pair(kwargs['padding'])[axis], _pair(kwargs['dilation'])[axis])
        for axis, size in enumerate((9, 8))
    )  # fmt: skip
    offset = 2.5 * torch.randn(2, out_h, out_w, group * k * 2, dtype=torch.float64, generator=gen)
    mask = torch.rand(2, out_h, out_w, group * k, dtype=torch.float64, generator=gen)
    inputs = [t.requires_grad_() for t in (x, offset, mask)]
    got = baseline(*inputs, **kwargs)
    grads = torch.autograd.grad(got.sum(), inputs)
    want = dcnv3_reference(*inputs, **kwargs)
    want_grads = torch.autograd.grad(want.sum(), inputs)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-7, atol=1e-7)


def _pair(value):
    return (value, value) if isinstance(value, int) else value
