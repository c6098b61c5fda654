"""The DCNv4 op (CPU kernels): against dcnv4_reference, the official math, gradcheck, compile.

Tolerances: float64 1e-10 (absolute and relative), float32 1e-5, bfloat16 / float16 as
bounds on max |error| / max |reference| against float64 (1e-2 and 2e-3).
"""

import functools

import pytest
import torch

from ops_dcnv3 import (
    dcnv3,
    dcnv4,
    dcnv4_offset_mask_channels,
    dcnv4_reference,
    unpack_offset_mask,
)
from ops_dcnv3.testing import DCNv3Config
from tests.kernels.dcnv4_naive import naive_dcnv4_with_grads
from tests.ops.cases import CASES
from tests.ops.op_runs import make_dcnv4_inputs, run_with_grads

pytestmark = pytest.mark.needs_extension

TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-10}


def assert_all_close(actual, expected, tol, names=('output', 'grad_input', 'grad_offset_mask')):
    for name, got, want in zip(names, actual, expected):
        torch.testing.assert_close(
            got, want, atol=tol, rtol=tol, msg=lambda m, name=name: f'{name}: {m}'
        )


def op_and_reference(cfg, input, offset_mask, grad_output=None):
    out, grads, grad_output = run_with_grads(dcnv4, (input, offset_mask), cfg, grad_output)
    ref, ref_grads, _ = run_with_grads(dcnv4_reference, (input, offset_mask), cfg, grad_output)
    return (out, *grads), (ref, *ref_grads)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize('name', list(CASES))
def test_matches_reference(name, dtype):
    cfg = CASES[name]
    input, offset_mask = make_dcnv4_inputs(cfg, 2, 12, 11, dtype=dtype)
    out, grads, grad_output = run_with_grads(dcnv4, (input, offset_mask), cfg)
    # The reference runs in float64 on the same values: in float32 its own rounding error is
    # as large as the tolerance.
    ref, ref_grads, _ = run_with_grads(
        dcnv4_reference,
        (input.double(), offset_mask.double()),
        cfg,
        grad_output.double(),
    )
    actual = [t.double() for t in (out, *grads)]
    assert_all_close(actual, (ref, *ref_grads), TOLERANCES[dtype])


@pytest.mark.parametrize('batch', [1, 3, 5])
def test_any_batch_size(batch):
    """No batch / im2col_step constraint."""
    cfg = DCNv3Config(group=2, group_channels=5)
    input, offset_mask = make_dcnv4_inputs(cfg, batch, 5, 6, dtype=torch.float64)
    assert_all_close(*op_and_reference(cfg, input, offset_mask), 1e-10)


@pytest.mark.parametrize('packed', ['exact', 'official', 'wider'])
def test_padding_of_offset_mask_is_ignored(packed):
    """Any last dimension >= G*K*3; NaN padding leaves the result alone, its gradient is 0."""
    cfg = DCNv3Config(group=3, group_channels=4)  # G*K*3 = 81, the module pads it to 88
    needed = cfg.group * cfg.num_points * 3
    channels = {'exact': needed, 'official': 88, 'wider': 100}[packed]
    assert dcnv4_offset_mask_channels(cfg.group, cfg.num_points) == 88
    input, offset_mask = make_dcnv4_inputs(
        cfg, 2, 5, 6, dtype=torch.float64, packed_channels=channels, padding_value=float('nan')
    )
    out, (grad_input, grad_offset_mask), grad_output = run_with_grads(
        dcnv4, (input, offset_mask), cfg
    )
    assert offset_mask.shape[-1] == channels and grad_offset_mask.shape == offset_mask.shape
    assert torch.count_nonzero(grad_offset_mask[..., needed:]) == 0
    ref, ref_grads, _ = run_with_grads(
        dcnv4_reference, (input, offset_mask[..., :needed]), cfg, grad_output
    )
    assert_all_close((out, grad_input, grad_offset_mask[..., :needed]), (ref, *ref_grads), 1e-10)


@pytest.mark.parametrize(
    'name', ['base', 'stride2', 'remove_center', 'cg7', 'k3x5_s1x2_p1x0_d2x1_rc', 'kernel5']
)
def test_matches_the_official_math(name):
    """Against tests/kernels/dcnv4_naive.py, the official kernel's loops transcribed
    independently (unpadded coordinates, its own unpacking and boundary test): float64."""
    cfg = CASES[name]
    input, offset_mask = make_dcnv4_inputs(
        cfg, 1, 5, 6, dtype=torch.float64, offset_range=3.0, padding_value=float('nan')
    )
    out, grads, grad_output = run_with_grads(dcnv4, (input, offset_mask), cfg)
    naive_out, naive_grads = naive_dcnv4_with_grads(input, offset_mask, cfg, grad_output)
    naive_grads[1] = torch.nan_to_num(naive_grads[1], nan=0.0)  # padding: never read
    assert_all_close((out, *grads), (naive_out, *naive_grads), 1e-10)


def test_is_dcnv3_without_softmax_on_the_unpacked_tensors():
    cfg = CASES['k3x5_s1x2_p1x0_d2x1_rc']
    input, offset_mask = make_dcnv4_inputs(cfg, 2, 7, 8, dtype=torch.float64)
    offset, mask = unpack_offset_mask(offset_mask, cfg.group, cfg.num_points)
    assert torch.equal(
        dcnv4(input, offset_mask, **cfg.kwargs), dcnv3(input, offset, mask, **cfg.kwargs)
    )


def test_empty_batch_gives_empty_output_and_gradients():
    cfg = DCNv3Config()
    input, offset_mask = make_dcnv4_inputs(cfg, 0, 5, 6)
    out, grads, _ = run_with_grads(dcnv4, (input, offset_mask), cfg)
    assert out.shape == (0, 5, 6, cfg.channels)
    assert [g.shape for g in grads] == [input.shape, offset_mask.shape]


def test_non_contiguous_inputs():
    cfg = DCNv3Config(stride=2)
    input, offset_mask = make_dcnv4_inputs(cfg, 2, 9, 9, dtype=torch.float64)
    input_nc = input.transpose(1, 2).contiguous().transpose(1, 2)
    offset_mask_nc = torch.stack([offset_mask, torch.zeros_like(offset_mask)], dim=-1)[..., 0]
    assert not input_nc.is_contiguous() and not offset_mask_nc.is_contiguous()
    out, grads, grad_output = run_with_grads(dcnv4, (input_nc, offset_mask_nc), cfg)
    ref, ref_grads, _ = run_with_grads(dcnv4_reference, (input, offset_mask), cfg, grad_output)
    assert_all_close((out, *grads), (ref, *ref_grads), 1e-10)


@pytest.mark.parametrize('dtype, bound', [(torch.bfloat16, 1e-2), (torch.float16, 2e-3)], ids=str)
def test_reduced_precision_within_bound(dtype, bound):
    """Half-precision kernels (forward and backward) vs the float64 reference."""
    cfg = DCNv3Config(group=2, group_channels=16)
    input, offset_mask = make_dcnv4_inputs(cfg, 2, 8, 8, dtype=dtype, fractional_offsets=0.3)
    out, grads, grad_output = run_with_grads(dcnv4, (input, offset_mask), cfg)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    exact = (input.double(), offset_mask.double())
    ref, ref_grads, _ = run_with_grads(dcnv4_reference, exact, cfg, grad_output.double())
    for name, value, want in zip(
        ('output', 'grad_input', 'grad_offset_mask'), (out, *grads), (ref, *ref_grads)
    ):
        error = (value.double() - want).abs().max().item()
        assert error <= bound * want.abs().max().item(), f'{name}: max error {error}'


@pytest.mark.parametrize('name', ['cg7', 'k3x5_s1x2_p1x0_d2x1_rc'])
def test_gradcheck(name):
    cfg = CASES[name]
    # Offsets clear of the integer grid lines (offset_scale 1 or 0.5 keeps them clear).
    input, offset_mask = make_dcnv4_inputs(
        cfg, 2, 5, 5, dtype=torch.float64, fractional_offsets=0.25, packed_channels=None
    )
    leaves = [t.requires_grad_() for t in (input, offset_mask)]
    assert torch.autograd.gradcheck(
        lambda i, om: dcnv4(i, om, **cfg.kwargs), leaves, eps=1e-6, atol=1e-7, rtol=1e-5
    )


def test_opcheck():
    """Schema, fake kernels and autograd registration agree with the real kernels."""
    cfg = CASES['k3x5_s1x2_p1x0_d2x1_rc']
    input, offset_mask = make_dcnv4_inputs(cfg, 2, 7, 6, dtype=torch.float64)
    args = (input.requires_grad_(), offset_mask.requires_grad_(), *cfg.schema_args)
    torch.library.opcheck(torch.ops.ops_dcnv3.dcnv4_forward.default, args)
    grad_output = torch.randn(2, *cfg.output_size(7, 6), cfg.channels, dtype=torch.float64)
    torch.library.opcheck(
        torch.ops.ops_dcnv3.dcnv4_backward.default,
        (input.detach(), offset_mask.detach(), grad_output, *cfg.schema_args),
    )


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compiles_fullgraph_with_dynamic_shapes(fresh_dynamo):
    cfg = DCNv3Config(stride=2, group_channels=6)
    op = functools.partial(dcnv4, **cfg.kwargs)
    compiled = torch.compile(op, fullgraph=True, dynamic=True, backend='aot_eager')
    for size in ((6, 7), (9, 5)):
        input, offset_mask = make_dcnv4_inputs(cfg, 3, *size, dtype=torch.float64)
        torch.testing.assert_close(
            compiled(input, offset_mask), op(input, offset_mask), atol=0, rtol=0
        )
    assert torch._dynamo.explain(op)(input, offset_mask).graph_break_count == 0


@pytest.mark.slow
def test_compiles_fullgraph_inductor_forward_backward(fresh_dynamo):
    cfg = DCNv3Config(group=2, group_channels=8)
    input, offset_mask = make_dcnv4_inputs(cfg, 2, 6, 5)

    def step(x, om):
        return dcnv4(torch.tanh(x), om * 0.5, **cfg.kwargs).square().sum()

    eager = run_with_grads(lambda x, om, **_: step(x, om), (input, offset_mask), cfg)
    compiled_step = torch.compile(step, fullgraph=True)
    compiled = run_with_grads(lambda x, om, **_: compiled_step(x, om), (input, offset_mask), cfg)
    torch.testing.assert_close(compiled[0], eager[0], atol=1e-5, rtol=1e-5)
    for grad, want in zip(compiled[1], eager[1]):
        torch.testing.assert_close(grad, want, atol=1e-4, rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.parametrize(
    'dtype, tol',
    [(torch.float64, 1e-10), (torch.float32, 1e-5), (torch.bfloat16, 2e-2), (torch.float16, 4e-3)],
    ids=str,
)
@pytest.mark.parametrize('name', ['base', 'cg7', 'k3x5_s1x2_p1x0_d2x1_rc'])
def test_cuda_matches_cpu_kernels(name, dtype, tol):
    """The CUDA kernels against the CPU kernels (float64) on the same rounded inputs."""
    cfg = CASES[name]
    input, offset_mask = make_dcnv4_inputs(
        cfg, 3, 9, 8, dtype=dtype, fractional_offsets=0.3, padding_value=float('nan')
    )
    gpu = run_with_grads(dcnv4, (input.cuda(), offset_mask.cuda()), cfg)
    exact = (input.double(), offset_mask.double())
    cpu = run_with_grads(dcnv4, exact, cfg, gpu[2].double().cpu())
    for value, want in zip((gpu[0], *gpu[1]), (cpu[0], *cpu[1])):
        assert value.dtype == dtype and value.is_cuda
        error = (value.double().cpu() - want).abs().max().item()
        assert error <= tol * want.abs().max().item()
