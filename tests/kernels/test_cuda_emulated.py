"""The CUDA kernels' own source, compiled for the CPU and run under a warp emulator.

tests/cuda_emulator compiles ops_dcnv3/csrc/cuda/dcnv3_kernels.cuh (kernels and launch code)
with the host compiler and runs each launch warp by warp, 32 host threads per warp meeting
at every shuffle. That checks, on machines without a GPU, the parts a CPU kernel cannot: the
thread -> (item, lane, channels) mapping, the lane layouts of every group width, vector and
scalar load paths, tail threads of the last block, and the warp-shuffle reductions (the
emulator rejects shuffles after a lane returned and divergent shuffles). It does not model
timing or the hardware's float4 atomics (sm_90 only); tests/ops/test_cuda.py covers those on a GPU.
Inputs sit inside NaN padding, so a read past the end of a tensor shows up as NaN.
"""

import pytest
import torch

from ops_dcnv3.testing import DCNv3Config
from tests.kernels.cuda_emulator import load_emulated_kernels
from tests.kernels.dcnv3_naive import (
    CASES,
    LARGE_KERNEL_CASES,
    case_inputs,
    mask_logits,
    naive_with_grads,
    random_like_output,
)

# Compiling the emulated kernels takes a minute or more on a cold cache; a tree whose extension
# is not built is not expected to build the emulator either.
pytestmark = [pytest.mark.slow, pytest.mark.needs_extension]
ops = torch.ops.ops_dcnv3

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}


@pytest.fixture(scope='module')
def emulated():
    return load_emulated_kernels()


def guarded(tensor, misalign=False, guard=64):
    """A contiguous copy of `tensor` inside NaN padding; `misalign` shifts it by one element
    so that its data is not 16-byte aligned (the kernels then take their scalar path)."""
    shift = int(misalign)
    buffer = torch.full((tensor.numel() + 2 * guard + shift,), float('nan'), dtype=tensor.dtype)
    view = buffer[guard + shift : guard + shift + tensor.numel()].view(tensor.shape)
    view.copy_(tensor)
    return view


def run_emulated(emulated, x, offset, mask, grad_output, cfg, misalign=False, softmax_mask=False):
    x, offset, mask, grad_output = (guarded(t, misalign) for t in (x, offset, mask, grad_output))
    out = emulated.forward(x, offset, mask, *cfg.schema_args, softmax_mask)
    grads = emulated.backward(x, offset, mask, grad_output, *cfg.schema_args, softmax_mask)
    return out, grads


def assert_matches(actual, expected, rtol, atol_scale):
    names = ('output', 'grad_input', 'grad_offset', 'grad_mask')
    for name, got, want in zip(names, actual, expected):
        assert got.shape == want.shape, name
        torch.testing.assert_close(
            got.double(),
            want.double(),
            rtol=rtol,
            atol=atol_scale * want.abs().max().item(),
            msg=lambda m, name=name: f'{name}: {m}',
        )


def test_cases_cover_every_lane_layout(emulated):
    """The cases below reach 1 to 32 threads per item and several channel steps per thread."""
    layouts = {
        emulated.lane_layout(cfg.group_channels, dtype.itemsize)
        for cfg, _ in CASES.values()
        for dtype in (torch.float64, torch.float32, torch.float16)
    }
    assert {lanes for lanes, _ in layouts} == {1, 2, 4, 8, 16, 32}
    assert max(steps for _, steps in layouts) > 1


def test_emulator_rejects_shuffle_after_a_lane_returned(emulated):
    emulated.shuffle_after_partial_return(32)
    with pytest.raises(RuntimeError, match='had already returned'):
        emulated.shuffle_after_partial_return(8)


@pytest.mark.parametrize('case', list(CASES), ids=list(CASES))
def test_matches_naive_float64(emulated, case):
    cfg, (x, offset, mask) = case_inputs(case)
    grad_output = random_like_output(x, offset)
    out, grads = run_emulated(emulated, x, offset, mask, grad_output, cfg)
    expected_out, expected_grads = naive_with_grads(x, offset, mask, cfg, grad_output)
    assert_matches([out, *grads], [expected_out, *expected_grads], rtol=1e-10, atol_scale=1e-10)


@pytest.mark.parametrize('case', list(CASES), ids=list(CASES))
@pytest.mark.parametrize(
    'dtype', [torch.float32, torch.bfloat16, torch.float16], ids=['float32', 'bfloat16', 'float16']
)
def test_reduced_precision_matches_naive(emulated, dtype, case):
    cfg, (x, offset, mask) = case_inputs(case, dtype=dtype)
    grad_output = random_like_output(x, offset)
    out, grads = run_emulated(emulated, x, offset, mask, grad_output, cfg)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    # The naive run sees exactly the rounded inputs, so only the kernel's arithmetic differs.
    expected_out, expected_grads = naive_with_grads(x, offset, mask, cfg, grad_output)
    tol = TOLERANCE[dtype]
    assert_matches([out, *grads], [expected_out, *expected_grads], rtol=tol, atol_scale=tol)


@pytest.mark.parametrize(
    'case',
    [
        'stride2-dilation2-remove-center',
        'group-channels-16',
        'group-channels-130',
        # 49 and 64 points: the backward's per-item array of point-weight gradients filled
        *LARGE_KERNEL_CASES,
    ],
)
@pytest.mark.parametrize(
    'dtype', [torch.float64, torch.float32, torch.bfloat16], ids=['float64', 'float32', 'bfloat16']
)
def test_fused_softmax_matches_naive(emulated, dtype, case):
    """softmax_mask=True (lane 0 applies the softmax Jacobian) against torch.softmax + naive."""
    cfg, (x, offset, mask) = case_inputs(case, dtype=dtype)
    logits = mask_logits(mask)
    grad_output = random_like_output(x, offset)
    out, grads = run_emulated(emulated, x, offset, logits, grad_output, cfg, softmax_mask=True)
    expected_out, expected_grads = naive_with_grads(
        x, offset, logits, cfg, grad_output, softmax_mask=True
    )
    tol = 1e-10 if dtype == torch.float64 else TOLERANCE[dtype]
    assert_matches([out, *grads], [expected_out, *expected_grads], rtol=tol, atol_scale=tol)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16], ids=['float32', 'bfloat16'])
def test_unaligned_storage_agrees_with_aligned(emulated, dtype):
    cfg, (x, offset, mask) = case_inputs('group-channels-16', dtype=dtype)
    grad_output = random_like_output(x, offset)
    aligned = run_emulated(emulated, x, offset, mask, grad_output, cfg)
    scalar = run_emulated(emulated, x, offset, mask, grad_output, cfg, misalign=True)
    # Same arithmetic in the same order, except that atomics sum grad_input in any order.
    assert torch.equal(aligned[0], scalar[0])
    assert_matches([scalar[0], *scalar[1]], [aligned[0], *aligned[1]], rtol=1e-5, atol_scale=1e-5)


# Shapes for the launch geometry rather than the math (the CPU kernel, checked against the
# naive definition in test_naive.py, is the reference): XL's 96 groups of 16 over
# many blocks with a partial last block, one channel per group, and an odd group width.
GEOMETRY_CASES = {
    'xl-stage4-groups': (DCNv3Config(group=96, group_channels=16), (1, 5, 7)),
    'one-channel-groups': (DCNv3Config(group=5, group_channels=1), (2, 6, 5)),
    'odd-width-stride2': (
        DCNv3Config(stride=2, group=3, group_channels=12, offset_scale=0.5, remove_center=True),
        (2, 7, 6),
    ),
}


@pytest.mark.parametrize('case', list(GEOMETRY_CASES), ids=list(GEOMETRY_CASES))
@pytest.mark.parametrize('dtype', [torch.float64, torch.float16], ids=['float64', 'float16'])
def test_launch_geometry_matches_cpu_kernel(emulated, case, dtype):
    cfg, (x, offset, mask) = case_inputs(GEOMETRY_CASES[case], dtype=dtype, seed=4)
    grad_output = random_like_output(x, offset, seed=5)
    out, grads = run_emulated(emulated, x, offset, mask, grad_output, cfg)
    exact = [t.double() for t in (x, offset, mask, grad_output)]
    params = cfg.schema_args
    expected = [ops.dcnv3_forward(*exact[:3], *params), *ops.dcnv3_backward(*exact, *params)]
    tol = 1e-10 if dtype == torch.float64 else TOLERANCE[dtype]
    assert_matches([out, *grads], expected, rtol=tol, atol_scale=tol)


def test_points_outside_the_image_give_exact_zeros_even_for_infinite_masks(emulated):
    cfg, (x, offset, mask) = case_inputs('group-channels-16', dtype=torch.float32)
    offset = torch.full_like(offset, 100.0)
    mask = torch.full_like(mask, float('inf'))
    out, grads = run_emulated(emulated, x, offset, mask, torch.ones_like(x), cfg)
    for tensor in (out, *grads):
        assert torch.count_nonzero(tensor) == 0
