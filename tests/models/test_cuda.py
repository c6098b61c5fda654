"""InternImage-T and the DCNv3 module on the GPU against the same weights on the CPU.

Both devices run the compiled op (the CPU kernel is checked against the naive definition in
tests/kernels). float32 with TF32 off, so only summation order differs; half
precision runs under autocast and is bounded relative to the float32 CPU result.
Skipped without a GPU or without the compiled extension (markers ``cuda``, ``needs_extension``).
"""

import copy

import pytest
import torch

from internimage import InternImage
from internimage.deploy.runtime import max_relative_error
from ops_dcnv3 import DCNv3

pytestmark = [pytest.mark.cuda, pytest.mark.needs_extension]


@pytest.fixture(autouse=True)
def exact_float32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def forward_backward(model, x, loss_weights, device, autocast_dtype=None):
    """Outputs, input gradient and parameter gradients of sum_i <output_i, weight_i>."""
    model = copy.deepcopy(model).to(device)
    x = x.to(device).requires_grad_()
    with torch.autocast('cuda', dtype=autocast_dtype, enabled=autocast_dtype is not None):
        outputs = model(x)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    loss = sum((out.float() * w.to(device)).sum() for out, w in zip(outputs, loss_weights))
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    return [out.float() for out in outputs], x.grad, grads


def loss_weights_for(model, x):
    with torch.no_grad():
        outputs = model(x)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(out.shape, generator=gen) for out in outputs]


def test_dcnv3_module_cuda_matches_cpu():
    torch.manual_seed(0)
    module = DCNv3(channels=64, group=4)
    x = torch.randn(2, 14, 13, 64)
    weights = loss_weights_for(module, x)
    cpu = forward_backward(module, x, weights, 'cpu')
    cuda = forward_backward(module, x, weights, 'cuda')
    assert max_relative_error(cuda[0][0], cpu[0][0]) < 1e-5
    assert max_relative_error(cuda[1], cpu[1]) < 1e-5
    assert cuda[2].keys() == cpu[2].keys()
    for name in cpu[2]:
        assert max_relative_error(cuda[2][name], cpu[2][name]) < 1e-4, name


@pytest.fixture(scope='module')
def internimage_t():
    torch.manual_seed(0)
    model = InternImage(arch='t', out_indices=(0, 1, 2, 3))
    model.init_weights()
    return model.eval()  # layer norms only; eval just pins drop-path off


def test_internimage_t_cuda_matches_cpu_float32(internimage_t):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    weights = loss_weights_for(internimage_t, x)
    cpu_out, cpu_grad_x, cpu_grads = forward_backward(internimage_t, x, weights, 'cpu')
    out, grad_x, grads = forward_backward(internimage_t, x, weights, 'cuda')
    for stage, (got, want) in enumerate(zip(out, cpu_out)):
        assert max_relative_error(got, want) < 1e-4, f'stage {stage}'
    assert max_relative_error(grad_x, cpu_grad_x) < 1e-3
    assert grads.keys() == cpu_grads.keys()
    for name in cpu_grads:
        assert max_relative_error(grads[name], cpu_grads[name]) < 1e-3, name


@pytest.mark.parametrize(
    'dtype, bound', [(torch.float16, 5e-2), (torch.bfloat16, 1e-1)], ids=['float16', 'bfloat16']
)
def test_internimage_t_autocast_close_to_float32(internimage_t, dtype, bound):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    weights = loss_weights_for(internimage_t, x)
    cpu_out, cpu_grad_x, _ = forward_backward(internimage_t, x, weights, 'cpu')
    out, grad_x, grads = forward_backward(internimage_t, x, weights, 'cuda', autocast_dtype=dtype)
    for stage, (got, want) in enumerate(zip(out, cpu_out)):
        assert torch.isfinite(got).all(), f'stage {stage}'
        assert max_relative_error(got, want) < bound, f'stage {stage}'
    assert torch.isfinite(grad_x).all() and all(torch.isfinite(g).all() for g in grads.values())
    assert max_relative_error(grad_x, cpu_grad_x) < 2 * bound
