"""Fixtures of the kernel tests: the devices to run the compiled kernels on."""

import pytest


@pytest.fixture(params=['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
def device(request) -> str:
    """Each device the compiled kernels run on (CUDA skipped without a GPU)."""
    return request.param
