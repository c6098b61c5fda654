"""Builds the DCNv3 CUDA kernels for the CPU warp emulator (see cuda_builtins.h)."""

import glob
import hashlib
import os
from types import ModuleType

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), 'ops_dcnv3', 'csrc')


def load_emulated_kernels() -> ModuleType:
    """Compiles (once per content of the sources) and imports the emulated kernels."""
    from torch.utils.cpp_extension import load

    sources = [os.path.join(HERE, 'dcnv3_emulated.cpp'), os.path.join(CSRC, 'dcnv3_arguments.cpp')]
    # torch rebuilds only when the listed sources change; the kernels live in headers, so
    # the module name carries a hash of everything compiled in.
    inputs = sorted(
        sources
        + glob.glob(os.path.join(HERE, '*.h'))
        + glob.glob(os.path.join(CSRC, '*.h'))
        + glob.glob(os.path.join(CSRC, 'cuda', '*.cuh'))
    )
    digest = hashlib.sha256()
    for path in inputs:
        with open(path, 'rb') as file:
            digest.update(file.read())
    return load(
        name=f'dcnv3_cuda_emulator_{digest.hexdigest()[:16]}',
        sources=sources,
        extra_include_paths=[CSRC, HERE],
        extra_cflags=['-O1', '-std=c++20', '-fno-strict-aliasing'],
    )
