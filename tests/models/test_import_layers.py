"""``internimage/`` imports only downward: checkpoint <- models <- engine <- apis <- deploy.

``datasets`` and ``analysis`` stand beside the layers and import none of them. Every
import of a package module runs when its file is imported (at the top, or in a module-level
``if``/``try`` such as the package's torch-free branch): no lazy import hides a cycle.
Read from the source with ``ast``; nothing is imported.
"""

import ast
from pathlib import Path
from typing import Iterator, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / 'internimage'
# Layer of each top-level part; a part imports only parts of a lower rank. None: a part
# beside the layers, importing no other part.
RANKS = {
    'checkpoint': 0,
    'models': 1,
    'engine': 2,
    'apis': 3,
    'deploy': 4,
    'datasets': None,
    'analysis': None,
}
MODULES = sorted(
    str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob('*.py') if path.name != '__init__.py'
) + sorted(
    str(path.relative_to(PACKAGE))
    for path in PACKAGE.rglob('__init__.py')
    if path.parent != PACKAGE
)


def _part(relative: str) -> str:
    return Path(relative).parts[0].removesuffix('.py')


def _module_level(statements) -> Iterator[ast.stmt]:
    """The statements that run on import: the module body and, recursively, the bodies of
    its ``if`` / ``try`` statements (not functions or classes)."""
    for node in statements:
        yield node
        if isinstance(node, ast.If):
            yield from _module_level(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            handlers = [s for h in node.handlers for s in h.body]
            yield from _module_level(node.body + handlers + node.orelse + node.finalbody)


def _package_imports(relative: str) -> Iterator[Tuple[str, bool]]:
    """(imported part, at the top of the file) for every import of a package module."""
    path = PACKAGE / relative
    tree = ast.parse(path.read_text())
    top_level = set(map(id, _module_level(tree.body)))
    package = Path(relative).parent.parts  # of this file, inside internimage/
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split('.') if node.module else [])]
                if not target:  # from . import x (package root)
                    target = [alias.name for alias in node.names]
            elif node.module and node.module.split('.')[0] == 'internimage':
                target = node.module.split('.')[1:] or [alias.name for alias in node.names]
            else:
                continue
            yield target[0], id(node) in top_level
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split('.')
                if parts[0] == 'internimage':
                    yield (parts[1] if len(parts) > 1 else '__init__'), id(node) in top_level


def test_every_part_has_a_rank():
    assert {_part(m) for m in MODULES} == set(RANKS)


@pytest.mark.parametrize('relative', MODULES)
def test_imports_run_downward_only(relative):
    own = _part(relative)
    for target, at_top in _package_imports(relative):
        assert at_top, f'{relative}: import of internimage.{target} inside a function'
        if target == own:
            continue
        assert target != '__init__', f'{relative} imports the package root'
        own_rank, target_rank = RANKS[own], RANKS[target]
        assert own_rank is not None and target_rank is not None and target_rank < own_rank, (
            f'{relative} ({own}) imports internimage.{target}: not a lower layer'
        )
