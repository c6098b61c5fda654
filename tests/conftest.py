"""Shared markers and fixtures of the test suite.

Markers (``pytest -m cuda`` selects the GPU subset, ``-m "not slow"`` a quick run):

- ``cuda``: needs a CUDA device; skipped without one.
- ``needs_extension``: needs the compiled ``ops_dcnv3._C``; skipped when it is not built.
- ``slow``: takes more than a few seconds (training runs, large tensors, subprocesses).

A test that needs a GPU or the extension only for some parameters marks those parameters:
``pytest.param('cuda', marks=pytest.mark.cuda)``.
"""

from pathlib import Path

import pytest
import torch

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
