"""Build-level checks of the extension (DCNv3 and DCNv4 ops): the CUDA source compiles with
nvcc for sm_90 (also on machines without a GPU), and the built library registers the kernels
it should."""

import shutil
import subprocess
import sysconfig

import pytest
import torch

OPS = (
    'ops_dcnv3::dcnv3_forward',
    'ops_dcnv3::dcnv3_backward',
    'ops_dcnv3::dcnv4_forward',
    'ops_dcnv3::dcnv4_backward',
)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc not on PATH')
@pytest.mark.skipif(torch.version.cuda is None, reason='torch built without CUDA headers')
def test_cuda_source_compiles_for_sm90(tmp_path, repo_root):
    from torch.utils.cpp_extension import include_paths

    includes = include_paths() + [sysconfig.get_paths()['include']]
    command = [
        'nvcc',
        '-c',
        str(repo_root / 'ops_dcnv3' / 'csrc' / 'cuda' / 'dcnv3_cuda.cu'),
        '-o',
        str(tmp_path / 'dcnv3_cuda.o'),
        '-std=c++20',
        '-O3',
        '-arch=sm_90',
        '--expt-relaxed-constexpr',
        '-Xcompiler',
        '-fPIC',
        # The flags torch's own extension builds pass to nvcc.
        '-D__CUDA_NO_HALF_OPERATORS__',
        '-D__CUDA_NO_HALF_CONVERSIONS__',
        '-D__CUDA_NO_BFLOAT16_CONVERSIONS__',
        '-D__CUDA_NO_HALF2_OPERATORS__',
    ] + [f'-I{path}' for path in includes]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert (tmp_path / 'dcnv3_cuda.o').stat().st_size > 0
    # "Compiles cleanly": no diagnostics about our own sources.
    own = [line for line in log.splitlines() if 'dcnv3' in line and 'warning' in line.lower()]
    assert not own, '\n'.join(own)


@pytest.mark.needs_extension
def test_built_extension_registers_kernels():
    from ops_dcnv3 import _C, MAX_SOFTMAX_POINTS

    for op in OPS:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, 'CPU'), op
        # CUDA kernels are present exactly when the build compiled them.
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, 'CUDA') == bool(_C.with_cuda)
    schema = str(torch.ops.ops_dcnv3.dcnv3_forward.default._schema)
    assert schema == (
        'ops_dcnv3::dcnv3_forward(Tensor input, Tensor offset, Tensor mask, '
        'int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w, '
        'int dilation_h, int dilation_w, int group, int group_channels, '
        'float offset_scale, bool remove_center, bool softmax_mask=False) -> Tensor'
    )
    schema = str(torch.ops.ops_dcnv3.dcnv4_forward.default._schema)
    assert schema == (
        'ops_dcnv3::dcnv4_forward(Tensor input, Tensor offset_mask, '
        'int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w, '
        'int dilation_h, int dilation_w, int group, int group_channels, '
        'float offset_scale, bool remove_center) -> Tensor'
    )
    # The softmax point limit is the C++ constant, exported by the module.
    assert MAX_SOFTMAX_POINTS == _C.max_softmax_points == 64
