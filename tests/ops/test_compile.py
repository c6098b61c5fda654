"""torch.compile / torch.library integration of the compiled op (CPU)."""

import copy
import functools

import pytest
import torch

from ops_dcnv3 import DCNv3, dcnv3
from ops_dcnv3.testing import DCNv3Config, make_inputs, randomise_parameters

pytestmark = pytest.mark.needs_extension


def module_forward_backward(module, x):
    x = x.clone().requires_grad_()
    out = module(x)
    out.square().sum().backward()
    return out, x.grad, [p.grad for p in module.parameters()]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize(
    'cfg',
    [
        DCNv3Config(),
        DCNv3Config(
            kernel_size=(3, 5),
            stride=(2, 1),
            padding=(1, 2),
            dilation=(2, 1),
            remove_center=True,
            offset_scale=2.0,
        ),
    ],
    ids=['base', 'asymmetric'],
)
def test_opcheck(cfg):
    """Schema, fake kernel and autograd registration agree with the real kernels."""
    input, offset, mask = make_inputs(cfg, 2, 7, 6, dtype=torch.float64)
    args = (
        input.requires_grad_(),
        offset.requires_grad_(),
        mask.requires_grad_(),
        *cfg.schema_args,
    )
    torch.library.opcheck(torch.ops.ops_dcnv3.dcnv3_forward.default, args)
    grad_output = torch.randn(
        input.shape[0], *cfg.output_size(7, 6), cfg.channels, dtype=torch.float64
    )
    torch.library.opcheck(
        torch.ops.ops_dcnv3.dcnv3_backward.default,
        (input.detach(), offset.detach(), mask.detach(), grad_output, *cfg.schema_args),
    )


def test_module_compiles_fullgraph_inductor():
    eager = randomise_parameters(DCNv3(channels=32, group=2, center_feature_scale=True))
    compiled_module = copy.deepcopy(eager)
    compiled = torch.compile(compiled_module, fullgraph=True)  # a graph break raises
    x = torch.randn(2, 6, 7, 32)
    out, grad_x, grads = module_forward_backward(compiled, x)
    ref_out, ref_grad_x, ref_grads = module_forward_backward(eager, x)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_x, ref_grad_x, atol=1e-4, rtol=1e-4)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, atol=1e-4, rtol=1e-4)


def test_functional_compiles_with_dynamic_shapes():
    cfg = DCNv3Config(stride=2)
    op = functools.partial(dcnv3, **cfg.kwargs)
    compiled = torch.compile(op, fullgraph=True, dynamic=True, backend='aot_eager')
    for size in ((6, 7), (9, 5)):
        input, offset, mask = make_inputs(cfg, 3, *size, dtype=torch.float64)
        torch.testing.assert_close(
            compiled(input, offset, mask), op(input, offset, mask), atol=0, rtol=0
        )
    explanation = torch._dynamo.explain(op)(input, offset, mask)
    assert explanation.graph_break_count == 0
