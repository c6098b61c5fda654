"""The compiled DCNv3 kernels (the raw torch.ops) against the naive definition of
dcnv3_naive.py."""

import pytest
import torch

from ops_dcnv3.testing import DCNv3Config, make_inputs
from tests.kernels.dcnv3_naive import (
    CASES,
    LARGE_KERNEL_CASES,
    case_inputs,
    mask_logits,
    naive_with_grads,
    random_like_output,
)

pytestmark = pytest.mark.needs_extension
ops = torch.ops.ops_dcnv3


@pytest.mark.parametrize('case', list(CASES), ids=list(CASES))
def test_forward_backward_match_naive_float64(case, device):
    cfg, (x, offset, mask) = case_inputs(case, device=device)
    params = cfg.schema_args
    out = ops.dcnv3_forward(x, offset, mask, *params)
    grad_output = random_like_output(x, offset)
    grads = ops.dcnv3_backward(x, offset, mask, grad_output, *params)

    expected_out, expected_grads = naive_with_grads(x, offset, mask, cfg, grad_output)
    torch.testing.assert_close(out.cpu(), expected_out, rtol=1e-10, atol=1e-10)
    for name, grad, expected in zip(('input', 'offset', 'mask'), grads, expected_grads):
        assert grad.shape == expected.shape, name
        torch.testing.assert_close(
            grad.cpu(), expected, rtol=1e-9, atol=1e-9, msg=lambda m, name=name: f'grad_{name}: {m}'
        )


def kernel_autograd(params, softmax_mask=False):
    """(x, offset, mask) -> output through the raw forward and backward kernels only (not the
    package's registered autograd formula), for gradcheck."""

    class KernelFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, offset, mask):
            ctx.save_for_backward(x, offset, mask)
            return ops.dcnv3_forward(x, offset, mask, *params, softmax_mask)

        @staticmethod
        def backward(ctx, grad_output):
            return ops.dcnv3_backward(
                *ctx.saved_tensors, grad_output.contiguous(), *params, softmax_mask
            )

    return KernelFunction.apply


SOFTMAX_CASES = [
    'k3s1p1',
    'stride2-dilation2-remove-center',
    'wide-group-k5',
    'group-channels-130',
    *LARGE_KERNEL_CASES,  # 49 and 64 points
]


@pytest.mark.parametrize('case', SOFTMAX_CASES)
def test_fused_softmax_matches_naive_float64(case, device):
    """softmax_mask=True against the naive op fed torch.softmax of the same logits."""
    cfg, (x, offset, mask) = case_inputs(case, device=device)
    params = cfg.schema_args
    logits = mask_logits(mask)
    out = ops.dcnv3_forward(x, offset, logits, *params, True)
    grad_output = random_like_output(x, offset)
    grads = ops.dcnv3_backward(x, offset, logits, grad_output, *params, True)

    expected_out, expected_grads = naive_with_grads(
        x, offset, logits, cfg, grad_output, softmax_mask=True
    )
    torch.testing.assert_close(out.cpu(), expected_out, rtol=1e-10, atol=1e-10)
    for name, grad, expected in zip(('input', 'offset', 'mask logits'), grads, expected_grads):
        torch.testing.assert_close(
            grad.cpu(), expected, rtol=1e-9, atol=1e-9, msg=lambda m, name=name: f'grad_{name}: {m}'
        )


def test_fused_softmax_backward_is_the_derivative_of_forward(device):
    cfg, (x, offset, mask) = case_inputs('stride2-dilation2-remove-center', device=device, seed=4)

    inputs = [t.requires_grad_() for t in (x, offset, mask_logits(mask))]
    assert torch.autograd.gradcheck(
        kernel_autograd(cfg.schema_args, softmax_mask=True), inputs, eps=1e-6, atol=1e-6
    )


def test_fused_softmax_refuses_more_than_64_points():
    """81 points (9x9) is past the limit; 49 and 64 points are checked against the naive
    op above (SOFTMAX_CASES)."""
    x = torch.randn(1, 9, 9, 2, dtype=torch.float64)
    offset = torch.zeros(1, 1, 1, 2 * 81, dtype=torch.float64)
    logits = torch.zeros(1, 1, 1, 81, dtype=torch.float64)
    params = DCNv3Config(kernel_size=9, padding=0, group=1, group_channels=2).schema_args
    with pytest.raises(RuntimeError, match='softmax_mask=True supports at most 64'):
        ops.dcnv3_forward(x, offset, logits, *params, True)


TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}


@pytest.mark.parametrize('case', ['k3s1p1', 'group-channels-16'])
@pytest.mark.parametrize(
    'dtype', [torch.float32, torch.bfloat16, torch.float16], ids=['float32', 'bfloat16', 'float16']
)
def test_reduced_precision_matches_naive(dtype, case, device):
    cfg, (x, offset, mask) = case_inputs(case, dtype=dtype, device=device)
    params = cfg.schema_args
    out = ops.dcnv3_forward(x, offset, mask, *params)
    assert out.dtype == dtype
    grad_output = random_like_output(x, offset)
    grads = ops.dcnv3_backward(x, offset, mask, grad_output, *params)
    # The naive run sees exactly the rounded inputs, so only the kernel's arithmetic differs.
    expected_out, expected_grads = naive_with_grads(x, offset, mask, cfg, grad_output)
    tol = TOLERANCE[dtype]
    scale = expected_out.abs().max()
    torch.testing.assert_close(out.cpu().double(), expected_out, rtol=tol, atol=tol * scale)
    for name, grad, expected in zip(('input', 'offset', 'mask'), grads, expected_grads):
        assert grad.dtype == dtype, name
        torch.testing.assert_close(
            grad.cpu().double(),
            expected,
            rtol=tol,
            atol=tol * expected.abs().max(),
            msg=lambda m, name=name: f'grad_{name}: {m}',
        )


def test_backward_is_the_derivative_of_forward(device):
    """Finite differences of the compiled forward against the compiled backward."""
    cfg, (x, offset, mask) = case_inputs('stride2-dilation2-remove-center', device=device, seed=3)

    inputs = [t.requires_grad_() for t in (x, offset, mask)]
    assert torch.autograd.gradcheck(kernel_autograd(cfg.schema_args), inputs, eps=1e-6, atol=1e-6)


def test_backward_with_more_threads_than_images_and_groups():
    """One image and one group on two threads: grad_input is accumulated in per-chunk copies."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for dtype, tol in ((torch.float64, 1e-9), (torch.bfloat16, 3e-2)):
            cfg, (x, offset, mask) = case_inputs('wide-group-k5', dtype=dtype, seed=5)
            grad_output = random_like_output(x, offset, seed=2)
            grads = ops.dcnv3_backward(x, offset, mask, grad_output, *cfg.schema_args)
            _, expected_grads = naive_with_grads(x, offset, mask, cfg, grad_output)
            for grad, expected in zip(grads, expected_grads):
                torch.testing.assert_close(
                    grad.double(), expected, rtol=tol, atol=tol * expected.abs().max()
                )
    finally:
        torch.set_num_threads(threads)


def test_samples_far_outside_read_zero(device):
    cfg, (x, offset, mask) = case_inputs('k3s1p1', device=device)
    params = cfg.schema_args
    offset = torch.full_like(offset, 100.0)
    out = ops.dcnv3_forward(x, offset, mask, *params)
    grads = ops.dcnv3_backward(x, offset, mask, torch.ones_like(out), *params)
    assert torch.count_nonzero(out) == 0
    assert all(torch.count_nonzero(g) == 0 for g in grads)


def test_empty_and_odd_batches(device):
    cfg, (x, offset, mask) = case_inputs('k3s1p1', device=device)
    params = cfg.schema_args
    empty = [t[:0] for t in (x, offset, mask)]
    out = ops.dcnv3_forward(*empty, *params)
    assert out.shape == (0, 3, 3, 4)
    grads = ops.dcnv3_backward(*empty, out, *params)
    assert [g.shape for g in grads] == [t.shape for t in empty]

    # Batch 3 (more than and not a multiple of the 2 above): every image is computed on its own.
    batch3 = [torch.cat([t, t[:1]]) for t in (x, offset, mask)]
    out3 = ops.dcnv3_forward(*batch3, *params)
    torch.testing.assert_close(out3[2], ops.dcnv3_forward(x, offset, mask, *params)[0])


def test_bad_arguments_raise_clear_errors():
    cfg, (x, offset, mask) = case_inputs('k3s1p1')
    params = cfg.schema_args
    with pytest.raises(RuntimeError, match='`offset` of shape'):
        ops.dcnv3_forward(x, offset[..., :-2].contiguous(), mask, *params)
    with pytest.raises(RuntimeError, match='`mask` to have the dtype'):
        ops.dcnv3_forward(x, offset, mask.float(), *params)
    with pytest.raises(RuntimeError, match='`input` to be contiguous'):
        ops.dcnv3_forward(x.transpose(1, 2), offset, mask, *params)
    with pytest.raises(RuntimeError, match='group \\* group_channels'):
        bad = list(params)
        bad[9] = 3  # group_channels
        ops.dcnv3_forward(x, offset, mask, *bad)
    with pytest.raises(RuntimeError, match='expected stride_h and stride_w > 0'):
        bad = list(params)
        bad[3] = 0  # stride_w
        ops.dcnv3_forward(x, offset, mask, *bad)
    with pytest.raises(RuntimeError, match='remove_center=True needs odd kernel'):
        ops.dcnv3_forward(x, offset, mask, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 1.0, True)
    with pytest.raises(RuntimeError, match='`grad_output` of shape'):
        ops.dcnv3_backward(x, offset, mask, x[:, :2].contiguous(), *params)


@pytest.mark.cuda
@pytest.mark.parametrize(
    'dtype',
    [torch.float64, torch.float32, torch.bfloat16, torch.float16],
    ids=['float64', 'float32', 'bfloat16', 'float16'],
)
def test_cuda_matches_cpu_kernel_on_model_shapes(dtype):
    """Shapes too big for the naive loops (the CPU kernel is checked against them above)."""
    tolerance = {
        torch.float64: 1e-10,
        torch.float32: 1e-4,
        torch.bfloat16: 3e-2,
        torch.float16: 4e-3,
    }[dtype]
    for cfg, size in [
        (DCNv3Config(group=4, group_channels=16), (2, 14, 14)),
        (
            DCNv3Config(
                stride=2, group=10, group_channels=32, offset_scale=2.0, remove_center=True
            ),
            (3, 9, 11),
        ),
        (DCNv3Config(kernel_size=5, padding=2, group=3, group_channels=24), (1, 8, 8)),
    ]:
        params = cfg.schema_args
        x, offset, mask = make_inputs(cfg, *size, dtype=torch.float64, offset_range=3.0, seed=7)
        grad_output = random_like_output(x, offset, seed=8)
        # Both devices see the same rounded values, so only the arithmetic differs.
        rounded = [t.to(dtype) for t in (x, offset, mask, grad_output)]
        exact = [t.double() for t in rounded]
        expected = [ops.dcnv3_forward(*exact[:3], *params), *ops.dcnv3_backward(*exact, *params)]
        cuda = [t.cuda() for t in rounded]
        actual = [ops.dcnv3_forward(*cuda[:3], *params), *ops.dcnv3_backward(*cuda, *params)]
        for name, got, want in zip(('output', 'input', 'offset', 'mask'), actual, expected):
            assert got.dtype == dtype, name
            torch.testing.assert_close(
                got.double().cpu(),
                want,
                rtol=tolerance,
                atol=tolerance * want.abs().max(),
                msg=lambda m, name=name: f'{name} ({cfg}): {m}',
            )
