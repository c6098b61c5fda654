"""Install InternImage for OpenMMLab 2.0 and build the DCNv3 operator ``ops_dcnv3._C``.

The extension always contains the CPU kernels; CUDA kernels are added when torch has CUDA
support and nvcc is found (``CUDA_HOME``), or when ``FORCE_CUDA=1``. ``FORCE_CUDA=0`` builds
CPU only. Install (the build needs the already-installed torch, hence no build isolation)::

    pip install --no-build-isolation -e .            # runtime: train, test, infer
    pip install --no-build-isolation -e .[deploy]    # + ONNX export and CPU runtimes
    pip install --no-build-isolation -e .[tests]     # + pytest, ruff (and deploy)

The dependencies are read from ``requirements-torch.txt`` and ``requirements/*.txt`` (one list
each, also what ``requirements.txt`` installs); mmcv 2.1.0 is not among them because it is
compiled against the installed torch by ``scripts/bootstrap.sh``.

Fast in-place CPU-only build during development::

    MAX_JOBS=1 FORCE_CUDA=0 python setup.py build_ext --inplace
"""

import glob
import os
import shutil
import sys

import torch
from setuptools import find_packages, setup


def _locate_cuda_home() -> str | None:
    """A CUDA toolkit directory that has headers, or None.

    torch guesses CUDA_HOME as the parent of the ``nvcc`` found on PATH, which is wrong when
    that ``nvcc`` is a wrapper script (e.g. /usr/local/bin/nvcc -> toolkit in /usr/local/cuda).
    """
    for var in ('CUDA_HOME', 'CUDA_PATH'):
        if os.environ.get(var):
            return os.environ[var]
    candidates = []
    nvcc = shutil.which('nvcc')
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append('/usr/local/cuda')
    for home in candidates:
        if os.path.isfile(os.path.join(home, 'include', 'cuda_runtime.h')):
            return home
    return None


_cuda_home = _locate_cuda_home()
if _cuda_home is not None:
    # Must be set before torch.utils.cpp_extension reads it at import time.
    os.environ.setdefault('CUDA_HOME', _cuda_home)

from torch.utils.cpp_extension import (  # noqa: E402
    CUDA_HOME,
    BuildExtension,
    CppExtension,
    CUDAExtension,
)

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join('ops_dcnv3', 'csrc')


def _sources(pattern: str) -> list[str]:
    # Relative paths keep the build reproducible from any checkout location.
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, CSRC, pattern)))


def read_requirements(path: str) -> list[str]:
    """The requirement lines of ``path`` (relative to the repository root): comments, blank
    lines and ``-r`` includes left out."""
    with open(os.path.join(ROOT, path), encoding='utf-8') as handle:
        lines = (line.split('#', 1)[0].strip() for line in handle)
        return [line for line in lines if line and not line.startswith('-')]


def _want_cuda() -> bool:
    force = os.environ.get('FORCE_CUDA')
    if force is not None and force not in ('0', '1'):
        raise ValueError(f'FORCE_CUDA must be "0" or "1", got {force!r}')
    if force == '0':
        return False
    if force == '1':
        return True
    return torch.version.cuda is not None and CUDA_HOME is not None


def make_extension():
    # torch >= 2.14 headers require C++20.
    cxx_flags = ['-O3', '-std=c++20']
    link_flags = []
    if sys.platform.startswith('linux'):
        # at::parallel_for is a header template that only runs in parallel when the extension
        # itself is compiled with OpenMP (torch's own libgomp is reused at load time).
        cxx_flags.append('-fopenmp')
        link_flags.append('-fopenmp')
    sources = _sources('*.cpp') + _sources(os.path.join('cpu', '*.cpp'))
    if not _want_cuda():
        return CppExtension(
            'ops_dcnv3._C',
            sources,
            extra_compile_args={'cxx': cxx_flags},
            extra_link_args=link_flags,
        )

    if not os.environ.get('TORCH_CUDA_ARCH_LIST') and not torch.cuda.is_available():
        # With no GPU to detect, torch would compile for every architecture it knows (slow,
        # large). Default to Hopper (H100), the deployment target; set TORCH_CUDA_ARCH_LIST
        # (e.g. "8.0;9.0") to build for other GPUs.
        os.environ['TORCH_CUDA_ARCH_LIST'] = '9.0'
    nvcc_flags = [
        '-O3',
        '-std=c++20',
        '--expt-relaxed-constexpr',
    ]
    return CUDAExtension(
        'ops_dcnv3._C',
        sources + _sources(os.path.join('cuda', '*.cu')),
        define_macros=[('WITH_CUDA', None)],
        extra_compile_args={'cxx': cxx_flags, 'nvcc': nvcc_flags},
        extra_link_args=link_flags,
    )


setup(
    name='internimage-mmlab2',
    version='0.1.0',
    description='InternImage backbones and the DCNv3 operator for the OpenMMLab 2.0 stack',
    python_requires='>=3.10',
    packages=find_packages(include=['internimage*', 'ops_dcnv3*']),
    install_requires=read_requirements('requirements-torch.txt')
    + read_requirements('requirements/runtime.txt'),
    extras_require={
        'deploy': read_requirements('requirements/deploy.txt'),
        'tests': read_requirements('requirements/tests.txt')
        + read_requirements('requirements/deploy.txt'),
    },
    ext_modules=[make_extension()],
    cmdclass={'build_ext': BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
