"""Property-based tests: the compiled DCNv3 / DCNv4 ops against the float64 reference over
generated problems (hypothesis; profiles in tests/conftest.py).

Each generated geometry is either valid, and then forward and backward match the
reference, or invalid, and then the op raises the documented error, predicted here from
the output-size formula of docs/dcnv3.md, not from the op's own checks. Non-finite values
follow the rule of docs/dcnv3.md ("Non-finite values").
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ops_dcnv3 import dcnv3, dcnv3_reference, dcnv4, dcnv4_reference
from ops_dcnv3.testing import DCNv3Config, make_inputs
from tests.ops.op_runs import make_dcnv4_inputs, run_with_grads

pytestmark = pytest.mark.needs_extension

DTYPE = torch.float64
TOLERANCE = dict(rtol=1e-9, atol=1e-12)

axis = st.integers
geometries = st.builds(
    DCNv3Config,
    kernel_size=st.tuples(axis(1, 7), axis(1, 7)),
    stride=st.tuples(axis(1, 3), axis(1, 3)),
    padding=st.tuples(axis(0, 3), axis(0, 3)),
    dilation=st.tuples(axis(1, 3), axis(1, 3)),
    group=axis(1, 4),
    group_channels=axis(1, 5),
    offset_scale=st.floats(-2.0, 2.0, allow_nan=False),
    remove_center=st.booleans(),
)
problems = st.fixed_dictionaries(
    dict(
        config=geometries,
        batch=axis(0, 2),
        height=axis(1, 8),
        width=axis(1, 8),
        # Up to 50 px away: far outside every generated image.
        offset_range=st.sampled_from([0.5, 2.0, 50.0]),
        seed=axis(0, 2**16),
    )
)


def _out_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """docs/dcnv3.md: H_out = (H + 2 pad - (dilation (kernel - 1) + 1)) // stride + 1."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def expected_error(problem: dict):
    """(exception type, message fragment) the op must raise, or None if valid."""
    config = problem['config']
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = config.pairs()
    if config.remove_center and (kh % 2 == 0 or kw % 2 == 0):
        return ValueError, 'remove_center requires an odd kernel_size'
    if config.remove_center and kh * kw == 1:
        return ValueError, 'remove_center with kernel_size 1 leaves no sampling point'
    if (
        _out_size(problem['height'], kh, sh, ph, dh) < 1
        or _out_size(problem['width'], kw, sw, pw, dw) < 1
    ):
        return ValueError, 'is too small for kernel_size'
    return None


def _generated(make, problem: dict, **kwargs) -> list:
    """``make`` (make_inputs / make_dcnv4_inputs) for a valid problem, as a list (tests
    poison the tensors in place)."""
    size = (problem['batch'], problem['height'], problem['width'])
    options = dict(offset_range=problem['offset_range'], seed=problem['seed'], **kwargs)
    return list(make(problem['config'], *size, dtype=DTYPE, **options))


def _dcnv3_inputs(problem: dict):
    config = problem['config']
    if expected_error(problem) is None:
        return _generated(make_inputs, problem)
    # An invalid geometry: well-formed tensors of a 1x1 output (the error comes first).
    kernel_h, kernel_w = config.pairs()[0]
    points = max(kernel_h * kernel_w - int(config.remove_center), 1)
    n, h, w = problem['batch'], problem['height'], problem['width']
    return [
        torch.zeros(n, h, w, config.channels, dtype=DTYPE),
        torch.zeros(n, 1, 1, config.group * points * 2, dtype=DTYPE),
        torch.zeros(n, 1, 1, config.group * points, dtype=DTYPE),
    ]


def _assert_raises_documented(op, tensors, config, problem):
    error_type, fragment = expected_error(problem)
    with pytest.raises(error_type, match=fragment):
        op(*tensors, **config.kwargs)


def _assert_matches(op, reference, tensors, config):
    out, grads, grad_out = run_with_grads(op, tensors, config)
    expected, expected_grads, _ = run_with_grads(reference, tensors, config, grad_out)
    torch.testing.assert_close(out, expected, **TOLERANCE)
    for name, grad, want in zip(('input', 'offset', 'mask'), grads, expected_grads):
        torch.testing.assert_close(grad, want, **TOLERANCE, msg=lambda m, n=name: f'{n}: {m}')


@given(problem=problems)
def test_dcnv3_matches_reference_or_raises(problem):
    config = problem['config']
    tensors = _dcnv3_inputs(problem)
    if expected_error(problem) is not None:
        _assert_raises_documented(dcnv3, tensors, config, problem)
        _assert_raises_documented(dcnv3_reference, tensors, config, problem)
        return
    _assert_matches(dcnv3, dcnv3_reference, tensors, config)


@given(problem=problems, padding_value=st.sampled_from([0.0, float('nan')]))
def test_dcnv4_matches_reference_or_raises(problem, padding_value):
    config = problem['config']
    if expected_error(problem) is not None:
        input, offset, mask = _dcnv3_inputs(problem)
        offset_mask = torch.cat([offset, mask], dim=-1)
        _assert_raises_documented(dcnv4, (input, offset_mask), config, problem)
        _assert_raises_documented(dcnv4_reference, (input, offset_mask), config, problem)
        return
    # Padding entries must be ignored, NaN included.
    tensors = _generated(make_dcnv4_inputs, problem, padding_value=padding_value)
    # The reference's gradient of the padding is zero; compare the used entries only.
    out, (grad_input, grad_packed), grad_out = run_with_grads(dcnv4, tensors, config)
    used = config.group * config.num_points * 3
    want, (want_input, want_packed), _ = run_with_grads(dcnv4_reference, tensors, config, grad_out)
    torch.testing.assert_close(out, want, **TOLERANCE)
    torch.testing.assert_close(grad_input, want_input, **TOLERANCE)
    torch.testing.assert_close(grad_packed[..., :used], want_packed[..., :used], **TOLERANCE)


# ------------------------------------------------------------------ non-finite values
non_finite = st.sampled_from([float('nan'), float('inf'), -float('inf')])
valid_problems = problems.filter(lambda p: expected_error(p) is None and p['batch'] > 0)


def _poison(tensor: torch.Tensor, index: int, value: float) -> None:
    flat = tensor.view(-1)
    flat[index % flat.numel()] = value


@given(
    problem=valid_problems,
    which=st.sampled_from(['input', 'mask']),
    value=non_finite,
    index=axis(0, 10**6),
)
def test_dcnv3_non_finite_input_or_mask(problem, which, value, index):
    """A NaN/inf in ``input`` or ``mask``: no error, and wherever both the op and the
    reference are finite they agree. Which outputs turn NaN can differ: a product of the
    value with an exact zero (a point or bilinear corner outside the image, a corner of an
    integer location) is skipped by one implementation and computed (NaN * 0) by the
    other; docs/dcnv3.md, "Non-finite values"."""
    config = problem['config']
    tensors = _dcnv3_inputs(problem)
    _poison(tensors[('input', 'offset', 'mask').index(which)], index, value)
    out = dcnv3(*tensors, **config.kwargs)
    want = dcnv3_reference(*tensors, **config.kwargs)
    both = out.isfinite() & want.isfinite()
    torch.testing.assert_close(out[both], want[both], **TOLERANCE)


@given(problem=valid_problems, value=non_finite, index=axis(0, 10**6))
def test_dcnv3_non_finite_offset_is_a_point_outside_the_image(problem, value, index):
    """A NaN/inf offset has no sampling location: the compiled op counts that point as
    outside the image (it adds zero), which is the reference with that point's mask
    weight set to zero; the output stays finite."""
    config = problem['config']
    input, offset, mask = _dcnv3_inputs(problem)
    _poison(offset, index, value)
    out = dcnv3(input, offset, mask, **config.kwargs)
    assert out.isfinite().all()
    # The reference of the same problem without that point.
    n, y, x, channel = torch.unravel_index(torch.tensor(index % offset.numel()), offset.shape)
    point = channel // 2  # g * K + k
    clean_offset, clean_mask = offset.clone(), mask.clone()
    clean_offset[n, y, x, 2 * point : 2 * point + 2] = 0.0
    clean_mask[n, y, x, point] = 0.0
    want = dcnv3_reference(input, clean_offset, clean_mask, **config.kwargs)
    torch.testing.assert_close(out, want, **TOLERANCE)


@given(problem=valid_problems, which=axis(0, 1), value=non_finite, index=axis(0, 10**6))
def test_dcnv4_non_finite_values(problem, which, value, index):
    """DCNv4, a NaN/inf in ``input`` or anywhere in ``offset_mask``: as for DCNv3, no
    error and agreement wherever both are finite; one in the padding of ``offset_mask``
    changes nothing."""
    config = problem['config']
    tensors = _generated(make_dcnv4_inputs, problem)
    clean = dcnv4_reference(*tensors, **config.kwargs)
    _poison(tensors[which], index, value)
    out = dcnv4(*tensors, **config.kwargs)
    want = dcnv4_reference(*tensors, **config.kwargs)
    used = config.group * config.num_points * 3
    flat = index % tensors[which].numel()
    if which == 1 and flat % tensors[1].shape[-1] >= used:  # a padding entry
        torch.testing.assert_close(out, clean, **TOLERANCE)
    both = out.isfinite() & want.isfinite()
    torch.testing.assert_close(out[both], want[both], **TOLERANCE)
