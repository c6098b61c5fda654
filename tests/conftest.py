"""Shared markers and fixtures of the test suite.

Markers (``pytest -m cuda`` selects the GPU subset, ``-m "not slow"`` a quick run):

- ``cuda``: needs a CUDA device; skipped without one.
- ``needs_extension``: needs the compiled ``ops_dcnv3._C``; skipped when it is not built.
- ``slow``: takes more than a few seconds (training runs, large tensors, subprocesses).

Hypothesis profiles: ``ci`` (default: few examples, derandomised, so runs repeat) and
``slow`` (many examples, new ones each run): ``HYPOTHESIS_PROFILE=slow pytest ...`` or
``pytest --hypothesis-profile=slow ...``.

A test that needs a GPU or the extension only for some parameters marks those parameters:
``pytest.param('cuda', marks=pytest.mark.cuda)``.
"""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line('markers', 'cuda: needs a CUDA device (skipped without one)')
    config.addinivalue_line(
        'markers', 'needs_extension: needs the compiled ops_dcnv3._C (skipped without)'
    )
    config.addinivalue_line('markers', 'slow: takes more than a few seconds')


def _extension_available() -> bool:
    from ops_dcnv3 import extension_available

    return extension_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    skip_cuda = (
        None if torch.cuda.is_available() else pytest.mark.skip(reason='needs a CUDA device')
    )
    skip_extension = (
        None
        if _extension_available()
        else pytest.mark.skip(
            reason='ops_dcnv3._C is not built (pip install --no-build-isolation -e .)'
        )
    )
    for item in items:
        if skip_cuda is not None and item.get_closest_marker('cuda') is not None:
            item.add_marker(skip_cuda)
        if skip_extension is not None and item.get_closest_marker('needs_extension') is not None:
            item.add_marker(skip_extension)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The repository root (configs/, tools/ and data paths are relative to it)."""
    return REPO_ROOT


# Property-based tests (hypothesis): a few examples per test in CI, many for a local run
# with HYPOTHESIS_PROFILE=slow (or pytest --hypothesis-profile=slow).
settings.register_profile('ci', max_examples=15, deadline=None, derandomize=True, print_blob=True)
settings.register_profile('slow', max_examples=400, deadline=None, print_blob=True)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))
