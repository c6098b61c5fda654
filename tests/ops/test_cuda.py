"""The CUDA kernels against dcnv3_reference (skipped without a GPU).

float32 (float64) must match the reference on the GPU to atol 1e-5 (1e-10). float16 and bfloat16 are
compared with the float64 reference evaluated on the same (rounded) inputs; the bound is on
the largest absolute error relative to the largest reference magnitude:
float16 output 2e-3 and gradients 1e-2; bfloat16 output 1e-2 and gradients 3e-2
(float16 keeps 11 significant bits, bfloat16 8; gradients add accumulation error).
"""

import functools

import pytest
import torch

from internimage.deploy.runtime import max_relative_error
from ops_dcnv3 import DCNv3, dcnv3, dcnv3_reference
from ops_dcnv3.testing import DCNv3Config, make_inputs, randomise_parameters
from tests.ops.cases import CASES
from tests.ops.op_runs import forward_backward

pytestmark = [pytest.mark.cuda, pytest.mark.needs_extension]

BOUNDS = {torch.float16: (2e-3, 1e-2), torch.bfloat16: (1e-2, 3e-2)}


@pytest.mark.parametrize('dtype, tol', [(torch.float32, 1e-5), (torch.float64, 1e-10)], ids=str)
@pytest.mark.parametrize('name', list(CASES))
def test_matches_reference(name, dtype, tol):
    cfg = CASES[name]
    input, offset, mask = make_inputs(cfg, 3, 12, 11, dtype=dtype, device='cuda')
    out, grads, grad_output = forward_backward(dcnv3, input, offset, mask, cfg)
    ref_out, ref_grads, _ = forward_backward(dcnv3_reference, input, offset, mask, cfg, grad_output)
    torch.testing.assert_close(out, ref_out, atol=tol, rtol=tol)
    for grad_name, grad, ref_grad in zip(('input', 'offset', 'mask'), grads, ref_grads):
        torch.testing.assert_close(
            grad, ref_grad, atol=tol, rtol=tol, msg=lambda m, n=grad_name: f'grad of {n}: {m}'
        )


@pytest.mark.parametrize('dtype', list(BOUNDS), ids=str)
@pytest.mark.parametrize('name', ['base', 'k5_s2_d2_p0_rc_scale2_cg12', 'many_groups'])
def test_reduced_precision_within_bound(name, dtype):
    cfg = CASES[name]
    output_bound, grad_bound = BOUNDS[dtype]
    # Rounded to half precision, random offsets often become integers, and a location on the
    # integer grid sits on a kink of bilinear interpolation where the reference (through
    # grid_sample's normalised coordinates) may take the other one-sided derivative.
    input, offset, mask = make_inputs(
        cfg, 2, 12, 11, dtype=dtype, device='cuda', fractional_offsets=0.3
    )
    out, grads, grad_output = forward_backward(dcnv3, input, offset, mask, cfg)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    ref_out, ref_grads, _ = forward_backward(
        dcnv3_reference, input.double(), offset.double(), mask.double(), cfg, grad_output.double()
    )
    assert max_relative_error(out, ref_out) <= output_bound
    for grad_name, grad, ref_grad in zip(('input', 'offset', 'mask'), grads, ref_grads):
        assert max_relative_error(grad, ref_grad) <= grad_bound, grad_name


@pytest.mark.parametrize('dtype, tol', [(torch.float32, 1e-5), (torch.float64, 1e-10)], ids=str)
@pytest.mark.parametrize('name', ['base', 'k5_s2_d2_p0_rc_scale2_cg12', 'cg7', 'many_groups'])
def test_fused_softmax_matches_reference(name, dtype, tol):
    cfg = CASES[name]
    input, offset, mask = make_inputs(cfg, 3, 12, 11, dtype=dtype, device='cuda')
    logits = 2 * torch.log(mask)
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
    torch.testing.assert_close(out, ref_out, atol=tol, rtol=tol)
    for grad_name, grad, ref_grad in zip(('input', 'offset', 'mask logits'), grads, ref_grads):
        torch.testing.assert_close(
            grad, ref_grad, atol=tol, rtol=tol, msg=lambda m, n=grad_name: f'grad of {n}: {m}'
        )


@pytest.mark.parametrize('batch', [0, 1, 5])
def test_batch_sizes_and_non_contiguous(batch):
    cfg = DCNv3Config()
    input, offset, mask = make_inputs(cfg, batch, 9, 8, device='cuda')
    input_nc = input.transpose(1, 2).contiguous().transpose(1, 2)
    out, grads, grad_output = forward_backward(dcnv3, input_nc, offset, mask, cfg)
    ref_out, ref_grads, _ = forward_backward(dcnv3_reference, input, offset, mask, cfg, grad_output)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5)


def test_device_mismatch_is_an_error():
    cfg = DCNv3Config()
    input, offset, mask = make_inputs(cfg, 1, 5, 5, device='cuda')
    with pytest.raises(ValueError, match='offset must be on the device of input'):
        dcnv3(input, offset.cpu(), mask, **cfg.kwargs)
    with pytest.raises(TypeError, match='mask must have the dtype of input'):
        dcnv3(input, offset, mask.double(), **cfg.kwargs)


def test_module_float16_autocast_matches_reference_path():
    # Live offsets and point weights: a fresh module samples whole pixels with equal weights.
    module = randomise_parameters(DCNv3(channels=64, group=4)).cuda()
    reference = DCNv3(channels=64, group=4, use_reference=True).cuda()
    reference.load_state_dict(module.state_dict())
    x = torch.randn(2, 14, 14, 64, device='cuda')
    with torch.autocast('cuda', dtype=torch.float16):
        out = module(x)
    assert torch.isfinite(out).all()
    assert max_relative_error(out, reference(x).double()) <= 2e-2


def test_backward_alerts_deterministic_mode():
    """grad_input is summed with atomics on the GPU, so deterministic mode must refuse it."""
    cfg = CASES['base']
    input, offset, mask = make_inputs(cfg, 1, 6, 6, device='cuda')
    input.requires_grad_()
    out = dcnv3(input, offset, mask, **cfg.kwargs)
    torch.use_deterministic_algorithms(True)
    try:
        with pytest.raises(RuntimeError, match='dcnv3_backward'):
            out.sum().backward()
    finally:
        torch.use_deterministic_algorithms(False)
