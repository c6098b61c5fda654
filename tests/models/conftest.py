"""Fixtures of the backbone tests."""

from typing import Callable

import pytest

from internimage import InternImage
from tests.models.official_keys import TINY_ARCH, use_reference_op


@pytest.fixture
def tiny_internimage() -> Callable[..., InternImage]:
    """Builds the tiny test backbone (``TINY_ARCH``) on the DCNv3 op this machine has;
    keyword arguments go to :class:`InternImage`."""

    def build(**kwargs) -> InternImage:
        return InternImage(arch=dict(TINY_ARCH), use_reference=use_reference_op(), **kwargs)

    return build
