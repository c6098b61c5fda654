"""The hyper-parameter cases the compiled ops (DCNv3 and DCNv4, CPU and CUDA) are checked on.

One axis of the matrix at a time from a base case, then combinations, including asymmetric
h/w settings that catch swapped axes. Shared by the CPU parity, CUDA and DCNv4 tests so that
every kernel sees the same matrix. (The finite-difference checks in ``test_gradcheck.py``
use their own, much smaller shapes.)
"""

from ops_dcnv3.testing import DCNv3Config

CASES = {
    'base': DCNv3Config(),
    'stride2': DCNv3Config(stride=2),
    'dilation2': DCNv3Config(dilation=2),
    'pad0': DCNv3Config(padding=0),
    'kernel5': DCNv3Config(kernel_size=5, padding=2),
    'remove_center': DCNv3Config(remove_center=True),
    'offset_scale2': DCNv3Config(offset_scale=2.0),
    # Group widths: no hidden limit (the official DCNv4 kernels need a multiple of 16).
    'g1_cg32': DCNv3Config(group=1, group_channels=32),
    'cg32': DCNv3Config(group=3, group_channels=32),
    'cg12': DCNv3Config(group=3, group_channels=12),
    'cg7': DCNv3Config(group=3, group_channels=7),
    'cg1': DCNv3Config(group=5, group_channels=1),
    # InternImage-XL stage 4 has 96 groups: more threads than one block may hold if a
    # kernel maps all groups to one block.
    'many_groups': DCNv3Config(group=96, group_channels=16),
    'k5_s2_d2_p0_rc_scale2_cg12': DCNv3Config(
        kernel_size=5,
        stride=2,
        padding=0,
        dilation=2,
        group=2,
        group_channels=12,
        offset_scale=2.0,
        remove_center=True,
    ),
    'k3x5_s1x2_p1x0_d2x1': DCNv3Config(
        kernel_size=(3, 5), stride=(1, 2), padding=(1, 0), dilation=(2, 1), group=4
    ),
    'k3x5_s1x2_p1x0_d2x1_rc': DCNv3Config(
        kernel_size=(3, 5),
        stride=(1, 2),
        padding=(1, 0),
        dilation=(2, 1),
        group=4,
        group_channels=8,
        remove_center=True,
        offset_scale=0.5,
    ),
    'k5x3_rc_cg32_scale2': DCNv3Config(
        kernel_size=(5, 3),
        padding=(2, 1),
        group=2,
        group_channels=32,
        remove_center=True,
        offset_scale=2.0,
    ),
}
