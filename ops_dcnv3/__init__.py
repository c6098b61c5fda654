"""DCNv3, the deformable convolution at the core of InternImage, as a PyTorch custom op.

``dcnv3`` runs the compiled kernels of ``ops_dcnv3._C`` (registered as
``torch.ops.ops_dcnv3.dcnv3_forward/backward`` with fake kernels and autograd, so it works
under ``torch.compile``); ``dcnv3_reference`` is the pure-PyTorch definition; ``DCNv3`` is
the module InternImage blocks use. Both ops take the tensors positionally and the rest by
keyword: ``dcnv3(input, offset, mask, kernel_size=3, stride=1, padding=1, dilation=1,
group=..., offset_scale=1.0, remove_center=False, softmax_mask=False)``; code ported from the
official repository can keep its positional calls through :mod:`ops_dcnv3.compat`. The
package imports without the extension built; only ``dcnv3`` then raises, saying how to build
it (and ``MAX_SOFTMAX_POINTS`` is None). See docs/dcnv3.md.

DCNv4 (FlashInternImage's operator) shares the kernels: ``dcnv4(input, offset_mask, ...)``
takes the official module's packed offset+weight tensor and applies no softmax;
``dcnv4_reference`` is its pure-PyTorch definition. See docs/dcnv4.md.
"""

from . import dcnv4_functional

# Re-exported: __all__ below lists dcnv4_functional's names.
from .dcnv4_functional import (  # noqa: F401
    DCNv4Params,
    check_dcnv4_args,
    dcnv4,
    dcnv4_offset_mask_channels,
    dcnv4_reference,
    pack_offset_mask,
    unpack_offset_mask,
)
from .functional import (
    MAX_SOFTMAX_POINTS,
    DCNv3Params,
    check_dcnv3_args,
    dcnv3,
    dcnv3_output_size,
    extension_available,
)
from .layers import build_act_layer, build_layout_norm, to_channels_first, to_channels_last
from .modules import DCNv3, DCNv4
from .reference import dcnv3_reference, sampling_points

__all__ = [
    'dcnv3',
    'dcnv3_reference',
    'DCNv3',
    'DCNv4',
    'check_dcnv3_args',
    'DCNv3Params',
    'dcnv3_output_size',
    'extension_available',
    'sampling_points',
    'build_act_layer',
    'build_layout_norm',
    'to_channels_first',
    'to_channels_last',
    'MAX_SOFTMAX_POINTS',
    *dcnv4_functional.__all__,
]
