"""Fixtures of the task tests (configs, quick-start data)."""

import copy
import functools
from pathlib import Path
from typing import Callable, Union

import pytest
from mmengine.config import Config

from internimage.datasets import QuickstartSpec, make_quickstart_data


@functools.lru_cache(maxsize=None)
def _parse(path: str) -> Config:
    # Resolving the mmdet::/mmseg::/mmpretrain:: bases takes seconds; parse each file once.
    return Config.fromfile(path)


@pytest.fixture(scope='session')
def read_config(repo_root: Path) -> Callable[[Union[str, Path]], Config]:
    """``Config.fromfile`` of a path relative to the repository, parsed once per session;
    each call returns a fresh copy the test may change."""

    def load(path: Union[str, Path]) -> Config:
        return copy.deepcopy(_parse(str(repo_root / path)))

    return load


@pytest.fixture(scope='session')
def quickstart_data(tmp_path_factory) -> Callable[[QuickstartSpec], Path]:
    """Writes the synthetic quick-start data for a spec (once per spec and session) and
    returns its root."""
    made = {}

    def make(spec: QuickstartSpec) -> Path:
        if spec not in made:
            made[spec] = make_quickstart_data(tmp_path_factory.mktemp('quickstart') / 'data', spec)
        return made[spec]

    return make
