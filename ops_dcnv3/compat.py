"""The DCNv3 core with the positional signatures of the official InternImage code.

Code ported from the official repository (``ops_dcnv3/functions/dcnv3_func.py``) calls::

    DCNv3Function.apply(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                        pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                        offset_scale, im2col_step, remove_center)
    dcnv3_core_pytorch(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                       pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                       offset_scale, remove_center)

Importing these two names from ``ops_dcnv3.compat`` instead runs such code unchanged on this
package: ``DCNv3Function.apply`` calls the compiled :func:`ops_dcnv3.dcnv3` and
``dcnv3_core_pytorch`` the pure-PyTorch :func:`ops_dcnv3.dcnv3_reference`, with the per-axis
arguments turned into their keyword form (``kernel_size=(kernel_h, kernel_w)``, ...). Two
arguments only exist for compatibility: ``group_channels`` must equal ``C // group`` (the
keyword API derives it), and ``im2col_step`` must be > 0 (the kernels do not split the batch,
so its value has no other effect). Inputs and results are the same channels-last tensors.
New code should call the keyword API directly; docs/dcnv3.md describes both.
"""

from typing import Any, Callable, Dict

from torch import Tensor

from .functional import dcnv3
from .reference import dcnv3_reference

__all__ = ['DCNv3Function', 'dcnv3_core_pytorch']


def _call_keyword_op(
    op: Callable[..., Tensor],
    tensors: tuple,
    per_axis: tuple,
    group: int,
    group_channels: int,
    offset_scale: float,
    remove_center: bool,
) -> Tensor:
    """Calls ``op(*tensors, ...)`` with the official per-axis arguments in keyword form.

    Args:
        op (callable): :func:`ops_dcnv3.dcnv3` or :func:`ops_dcnv3.dcnv3_reference`.
        tensors (tuple): ``(input, offset, mask)``.
        per_axis (tuple): ``(kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
            dilation_h, dilation_w)``.
        group (int): Number of groups.
        group_channels (int): Channels per group; must equal ``C // group``.
        offset_scale (float): Scale of kernel grid and offsets.
        remove_center (bool): Drop the centre point.
    """
    input = tensors[0]
    # Only where the keyword op's own checks (of input and group) will pass; they report the rest.
    if isinstance(input, Tensor) and input.dim() == 4 and isinstance(group, int) and group > 0:
        expected = input.shape[3] // group
        if isinstance(group_channels, bool) or group_channels != expected:
            raise ValueError(
                f'group_channels must equal input channels / group = {input.shape[3]} / '
                f'{group} = {expected}, got {group_channels!r}'
            )
    names = ('kernel_size', 'stride', 'padding', 'dilation')
    keywords: Dict[str, Any] = {name: per_axis[2 * i : 2 * i + 2] for i, name in enumerate(names)}
    return op(
        *tensors, **keywords, group=group, offset_scale=offset_scale, remove_center=remove_center
    )


class DCNv3Function:
    """Stand-in for the official ``DCNv3Function`` (an ``autograd.Function``): ``apply`` runs
    the compiled :func:`ops_dcnv3.dcnv3`, which is differentiable through its own autograd
    registration."""

    @staticmethod
    def apply(  # the official signature, grouped as there
        input: Tensor, offset: Tensor, mask: Tensor,
        kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
        dilation_h: int, dilation_w: int, group: int, group_channels: int, offset_scale: float,
        im2col_step: int, remove_center: bool,
    ) -> Tensor:  # fmt: skip
        """The official positional call; arguments as in :func:`ops_dcnv3.dcnv3`.

        Args:
            input (Tensor): (N, H, W, C), channels-last.
            offset (Tensor): (N, H_out, W_out, group * K * 2).
            mask (Tensor): (N, H_out, W_out, group * K), normalised point weights.
            kernel_h (int): Kernel height.
            kernel_w (int): Kernel width.
            stride_h (int): Vertical stride.
            stride_w (int): Horizontal stride.
            pad_h (int): Zero padding at top and bottom.
            pad_w (int): Zero padding at left and right.
            dilation_h (int): Vertical dilation of the kernel grid.
            dilation_w (int): Horizontal dilation of the kernel grid.
            group (int): Number of groups.
            group_channels (int): Channels per group; must equal ``C // group``.
            offset_scale (float): Scale of kernel grid and offsets.
            im2col_step (int): Validated (an int > 0), otherwise unused.
            remove_center (bool): Drop the kernel's centre point.

        Returns:
            Tensor: (N, H_out, W_out, C).
        """
        if isinstance(im2col_step, bool) or not isinstance(im2col_step, int):
            raise TypeError(f'im2col_step must be an int, got {type(im2col_step).__name__}')
        if im2col_step < 1:
            raise ValueError(f'im2col_step must be >= 1, got {im2col_step}')
        per_axis = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)
        return _call_keyword_op(
            dcnv3, (input, offset, mask), per_axis, group, group_channels, offset_scale,
            remove_center,
        )  # fmt: skip


def dcnv3_core_pytorch(  # the official signature, grouped as there
    input: Tensor, offset: Tensor, mask: Tensor,
    kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
    dilation_h: int, dilation_w: int, group: int, group_channels: int, offset_scale: float,
    remove_center: bool,
) -> Tensor:  # fmt: skip
    """The official pure-PyTorch core, mapped to :func:`ops_dcnv3.dcnv3_reference`.

    Args:
        input (Tensor): (N, H, W, C), channels-last.
        offset (Tensor): (N, H_out, W_out, group * K * 2).
        mask (Tensor): (N, H_out, W_out, group * K), normalised point weights.
        kernel_h, kernel_w (int): Kernel size.
        stride_h, stride_w (int): Stride.
        pad_h, pad_w (int): Zero padding on each side.
        dilation_h, dilation_w (int): Dilation of the kernel grid.
        group (int): Number of groups.
        group_channels (int): Channels per group; must equal ``C // group``.
        offset_scale (float): Scale of kernel grid and offsets.
        remove_center (bool): Drop the kernel's centre point.

    Returns:
        Tensor: (N, H_out, W_out, C).
    """
    per_axis = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)
    return _call_keyword_op(
        dcnv3_reference, (input, offset, mask), per_axis, group, group_channels, offset_scale,
        remove_center,
    )  # fmt: skip
