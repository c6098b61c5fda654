"""The compiled op (CPU kernels) against dcnv3_reference: outputs and gradients."""

import functools

import pytest
import torch

from ops_dcnv3 import dcnv3, dcnv3_reference
from ops_dcnv3.testing import DCNv3Config, make_inputs
from tests.ops.cases import CASES
from tests.ops.op_runs import forward_backward

pytestmark = pytest.mark.needs_extension

TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-10}


def assert_matches_reference(cfg, input, offset, mask, atol, rtol):
    out, grads, grad_output = forward_backward(dcnv3, input, offset, mask, cfg)
    ref_out, ref_grads, _ = forward_backward(dcnv3_reference, input, offset, mask, cfg, grad_output)
    torch.testing.assert_close(out, ref_out, atol=atol, rtol=rtol)
    for name, grad, ref_grad in zip(('input', 'offset', 'mask'), grads, ref_grads):
        torch.testing.assert_close(
            grad, ref_grad, atol=atol, rtol=rtol, msg=lambda m, name=name: f'grad of {name}: {m}'
        )


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize('name', list(CASES))
def test_matches_reference(name, dtype):
    cfg = CASES[name]
    input, offset, mask = make_inputs(cfg, 2, 12, 11, dtype=dtype)
    tol = TOLERANCES[dtype]
    assert_matches_reference(cfg, input, offset, mask, atol=tol, rtol=tol)


@pytest.mark.parametrize('batch', [1, 3, 5])
def test_batch_sizes(batch):
    cfg = DCNv3Config()
    input, offset, mask = make_inputs(cfg, batch, 6, 7, dtype=torch.float64)
    assert_matches_reference(cfg, input, offset, mask, atol=1e-10, rtol=1e-10)


def test_empty_batch_gives_empty_output_and_gradients():
    cfg = DCNv3Config()
    input, offset, mask = make_inputs(cfg, 0, 5, 6)
    out, grads, _ = forward_backward(dcnv3, input, offset, mask, cfg)
    assert out.shape == (0, 5, 6, cfg.channels)
    assert [g.shape for g in grads] == [input.shape, offset.shape, mask.shape]


def test_non_contiguous_inputs():
    cfg = DCNv3Config(stride=2)
    input, offset, mask = make_inputs(cfg, 2, 9, 9, dtype=torch.float64)
    # Same values, other memory layouts: transposed storage and a strided view.
    input_nc = input.transpose(1, 2).contiguous().transpose(1, 2)
    offset_nc = torch.stack([offset, torch.zeros_like(offset)], dim=-1)[..., 0]
    mask_nc = mask.permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    out_h, out_w = cfg.output_size(9, 9)
    grad_output = torch.randn(2, out_w, out_h, cfg.channels, dtype=torch.float64).transpose(1, 2)
    assert not any(t.is_contiguous() for t in (input_nc, offset_nc, mask_nc, grad_output))
    out, grads, _ = forward_backward(dcnv3, input_nc, offset_nc, mask_nc, cfg, grad_output)
    ref_out, ref_grads, _ = forward_backward(
        dcnv3_reference, input, offset, mask, cfg, grad_output.contiguous()
    )
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-10)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, atol=1e-10, rtol=1e-10)


def test_far_away_locations_give_zeros():
    cfg = DCNv3Config()
    input, _, mask = make_inputs(cfg, 1, 5, 5)
    offset = torch.full((1, 5, 5, cfg.group * cfg.num_points * 2), 1e6)
    out, grads, _ = forward_backward(dcnv3, input, offset, mask, cfg)
    assert torch.count_nonzero(out) == 0
    assert all(torch.count_nonzero(g) == 0 for g in grads)


@pytest.mark.parametrize('logit', [float('nan'), -200.0, 100.0], ids=['nan', 'low', 'high'])
def test_fused_softmax_extreme_logits(logit):
    """One extreme logit: NaN spoils only its own (pixel, group), as with torch.softmax; the
    kernels' exp handles logits far below / above the others (underflow, dominance)."""
    cfg = DCNv3Config(group=2, group_channels=16)
    input, offset, mask = make_inputs(cfg, 1, 5, 6)
    logits = torch.log(mask)
    logits[0, 2, 3, 4] = logit  # group 0 (K = 9 points per group)
    out = dcnv3(input, offset, logits, **cfg.kwargs, softmax_mask=True)
    ref = dcnv3_reference(input, offset, logits, **cfg.kwargs, softmax_mask=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5, equal_nan=True)
    assert out[0, 2, 3, :16].isnan().all() == (logit != logit)
    assert not out[0, 2, 3, 16:].isnan().any() and not out[0, :2].isnan().any()


@pytest.mark.parametrize('name', ['base', 'remove_center', 'cg7', 'k5_s2_d2_p0_rc_scale2_cg12'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=str)
def test_fused_softmax_matches_reference(name, dtype):
    """softmax_mask=True: the kernels' softmax and its Jacobian against torch.softmax."""
    cfg = CASES[name]
    input, offset, mask = make_inputs(cfg, 2, 12, 11, dtype=dtype)
    logits = 2 * torch.log(mask)  # a softmax far from uniform
    out, grads, grad_output = forward_backward(
        functools.partial(dcnv3, softmax_mask=True), input, offset, logits, cfg
    )
    ref_out, ref_grads, _ = forward_backward(
        functools.partial(dcnv3_reference, softmax_mask=True),
        input,
        offset,
        logits,
        cfg,
        grad_output,
    )
    tol = TOLERANCES[dtype]
    torch.testing.assert_close(out, ref_out, atol=tol, rtol=tol)
    for grad_name, grad, ref_grad in zip(('input', 'offset', 'mask logits'), grads, ref_grads):
        torch.testing.assert_close(
            grad, ref_grad, atol=tol, rtol=tol, msg=lambda m, n=grad_name: f'grad of {n}: {m}'
        )


@pytest.mark.parametrize('dtype, bound', [(torch.bfloat16, 1e-2), (torch.float16, 2e-3)], ids=str)
def test_reduced_precision_within_bound(dtype, bound):
    """Half-precision kernels vs the float64 reference on the same (rounded) inputs.

    Bound on max |error| / max |reference| for the output and each gradient: bf16 1e-2,
    fp16 2e-3 (bf16 keeps 8 significant bits, so one rounding is up to 2**-9 = 0.2%; fp16
    keeps 11, 0.05%; a few roundings add up).
    """
    cfg = DCNv3Config(group=2, group_channels=16)
    # Offsets clear of the integer grid: rounded to half precision, random ones often land on
    # it, where bilinear interpolation has kinks and the reference may take the other side.
    input, offset, mask = make_inputs(cfg, 2, 8, 8, dtype=dtype, fractional_offsets=0.3)
    out, grads, grad_output = forward_backward(dcnv3, input, offset, mask, cfg)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    ref_out, ref_grads, _ = forward_backward(
        dcnv3_reference, input.double(), offset.double(), mask.double(), cfg, grad_output.double()
    )
    for name, value, ref in zip(
        ('output', 'grad_input', 'grad_offset', 'grad_mask'), (out, *grads), (ref_out, *ref_grads)
    ):
        error = (value.double() - ref).abs().max().item()
        assert error <= bound * ref.abs().max().item(), f'{name}: max error {error}'
