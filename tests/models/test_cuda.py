"""InternImage and the DCNv3 module on the GPU against the same weights on the CPU.

Every model here first gets live DCNv3 sampling (``randomise_parameters``): a fresh
DCNv3 predicts zero offsets and equal point weights, so each layer would be a box filter on
whole pixels and fractional bilinear sampling (and its gradients) would never run.

Both devices run the compiled op (the CPU kernel is checked against the naive definition in
tests/kernels). float64 agrees to summation order in every output, input gradient and
parameter gradient. float32 with TF32 off differs in the last bits of the predicted offsets
as well, and a sampling location within those bits of an integer takes the other pair of
pixels on the other device: the offset gradient at that point jumps (the interpolation is
continuous, its derivative is not), so parameter gradients are bounded more loosely there.
Half precision runs under autocast and is bounded relative to the float32 CPU result.
The GPU tests skip without a GPU (marker ``cuda``); the model-level CPU check of the compiled
op against the reference op with the same live offsets runs everywhere.
"""

import copy

import pytest
import torch

from internimage import InternImage
from internimage.deploy.runtime import max_relative_error
from ops_dcnv3 import DCNv3
from ops_dcnv3.testing import randomise_parameters
from tests.models.official_keys import TINY_ARCH

pytestmark = pytest.mark.needs_extension


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
    loss = sum((out.to(w.dtype) * w.to(device)).sum() for out, w in zip(outputs, loss_weights))
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    return [out.to(x.dtype) for out in outputs], x.grad, grads


def loss_weights_for(model, x):
    with torch.no_grad():
        outputs = model(x)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(out.shape, generator=gen, dtype=x.dtype) for out in outputs]


def assert_runs_agree(got, want, output_bound, input_grad_bound, param_grad_bound):
    """Two :func:`forward_backward` results agree within the bounds (max relative errors);
    every parameter gradient is checked on its own and must be non-zero."""
    (out, grad_x, grads), (want_out, want_grad_x, want_grads) = got, want
    for stage, (value, reference) in enumerate(zip(out, want_out)):
        assert max_relative_error(value, reference) < output_bound, f'stage {stage}'
    assert max_relative_error(grad_x, want_grad_x) < input_grad_bound
    assert grads.keys() == want_grads.keys()
    for name, reference in want_grads.items():
        assert reference.abs().max() > 0, f'{name}: zero gradient'
        assert max_relative_error(grads[name], reference) < param_grad_bound, name


def test_tiny_compiled_op_matches_reference_op_with_live_offsets():
    """The CPU side of the checks below: the compiled op inside a whole model (tiny arch,
    64 px) against the reference op, float64, with the same randomised sampling."""
    torch.manual_seed(0)
    model = InternImage(arch=dict(TINY_ARCH), out_indices=(0, 1, 2, 3)).double().eval()
    randomise_parameters(model, seed=4)
    reference = copy.deepcopy(model)
    for module in reference.modules():
        if isinstance(module, DCNv3):
            module.use_reference = True
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    weights = loss_weights_for(model, x)
    compiled = forward_backward(model, x, weights, 'cpu')
    expected = forward_backward(reference, x, weights, 'cpu')
    assert_runs_agree(compiled, expected, 1e-10, 1e-9, 1e-8)


@pytest.mark.cuda
def test_dcnv3_module_cuda_matches_cpu():
    torch.manual_seed(0)
    module = randomise_parameters(DCNv3(channels=64, group=4))
    x = torch.randn(2, 14, 13, 64)
    weights = loss_weights_for(module, x)
    cpu = forward_backward(module, x, weights, 'cpu')
    cuda = forward_backward(module, x, weights, 'cuda')
    assert_runs_agree(cuda, cpu, 1e-5, 1e-5, 1e-4)


@pytest.fixture(scope='module')
def internimage_t():
    torch.manual_seed(0)
    model = InternImage(arch='t', out_indices=(0, 1, 2, 3))
    model.init_weights()
    randomise_parameters(model, seed=0)
    return model.eval()  # layer norms only; eval just pins drop-path off


@pytest.mark.cuda
def test_internimage_t_cuda_matches_cpu_float64(internimage_t):
    model = copy.deepcopy(internimage_t).double()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2)).double()
    weights = loss_weights_for(model, x)
    cpu = forward_backward(model, x, weights, 'cpu')
    cuda = forward_backward(model, x, weights, 'cuda')
    assert_runs_agree(cuda, cpu, 1e-10, 1e-9, 1e-8)


@pytest.mark.cuda
def test_internimage_t_cuda_matches_cpu_float32(internimage_t):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    weights = loss_weights_for(internimage_t, x)
    cpu = forward_backward(internimage_t, x, weights, 'cpu')
    cuda = forward_backward(internimage_t, x, weights, 'cuda')
    # Parameter gradients: 2e-2 leaves room for the odd location that crosses a pixel
    # boundary between the devices (see the module docstring); float64 above is the tight check.
    assert_runs_agree(cuda, cpu, 1e-4, 1e-3, 2e-2)


@pytest.mark.cuda
@pytest.mark.parametrize(
    'dtype, bound', [(torch.float16, 5e-2), (torch.bfloat16, 1e-1)], ids=['float16', 'bfloat16']
)
def test_internimage_t_autocast_close_to_float32(internimage_t, dtype, bound):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    weights = loss_weights_for(internimage_t, x)
    cpu_out, cpu_grad_x, cpu_grads = forward_backward(internimage_t, x, weights, 'cpu')
    out, grad_x, grads = forward_backward(internimage_t, x, weights, 'cuda', autocast_dtype=dtype)
    for stage, (got, want) in enumerate(zip(out, cpu_out)):
        assert torch.isfinite(got).all(), f'stage {stage}'
        assert max_relative_error(got, want) < bound, f'stage {stage}'
    assert torch.isfinite(grad_x).all() and all(torch.isfinite(g).all() for g in grads.values())
    assert max_relative_error(grad_x, cpu_grad_x) < 2 * bound
    # Rounded offsets cross pixel boundaries far more often than in float32, so the
    # parameter gradients are bounded together (relative to the largest) rather than each.
    assert grads.keys() == cpu_grads.keys()
    flat = torch.cat([grads[name].flatten().float() for name in cpu_grads])
    cpu_flat = torch.cat([g.flatten() for g in cpu_grads.values()])
    assert max_relative_error(flat, cpu_flat) < 2 * bound
