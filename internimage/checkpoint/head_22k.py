"""ImageNet-22K -> 1K classifier heads: the official fine-tunes (L/XL/H/G) keep, for each 1K
class, the head row of its 22K class (line ``i`` of the official ``map22kto1k.txt`` is the 22K
index of 1K class ``i``). Used by ``tools/map_head_22k_to_1k.py``."""

from pathlib import Path
from typing import Dict, List, Union

import torch

__all__ = ['NUM_22K_CLASSES', 'read_mapping', 'map_head_22k_to_1k']

NUM_22K_CLASSES = 21841


def read_mapping(path: Union[str, Path]) -> List[int]:
    """The 22K index of each 1K class, one integer per line (blank lines ignored).

    Args:
        path (str | Path): The mapping file.

    Returns:
        list[int]: index ``i`` is the 22K class of 1K class ``i``.
    """
    mapping = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            index = int(line)
        except ValueError:
            raise ValueError(f'{path}:{number}: expected an integer, got {line!r}') from None
        if not 0 <= index < NUM_22K_CLASSES:
            raise ValueError(f'{path}:{number}: 22K index {index} outside 0..{NUM_22K_CLASSES - 1}')
        mapping.append(index)
    if not mapping:
        raise ValueError(f'{path}: the mapping file is empty')
    return mapping


def map_head_22k_to_1k(
    state_dict: Dict[str, torch.Tensor], mapping: List[int]
) -> Dict[str, torch.Tensor]:
    """A copy of ``state_dict`` with every 21,841-row tensor reduced to ``mapping``'s rows.

    Args:
        state_dict (dict[str, Tensor]): The 22K model's weights.
        mapping (list[int]): 22K index of each 1K class (:func:`read_mapping`).

    Returns:
        dict[str, Tensor]: The weights with a ``len(mapping)``-class head.
    """
    index = torch.tensor(mapping, dtype=torch.long)
    mapped = {}
    found = []
    for name, value in state_dict.items():
        if (
            isinstance(value, torch.Tensor)
            and value.ndim >= 1
            and value.shape[0] == NUM_22K_CLASSES
        ):
            mapped[name] = value.index_select(0, index).clone()
            found.append(name)
        else:
            mapped[name] = value
    if not found:
        raise ValueError(
            f'no tensor with {NUM_22K_CLASSES} rows in the checkpoint: it has no 22K head'
        )
    return mapped
