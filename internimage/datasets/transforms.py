"""Data transforms the official segmentation recipes need and mmseg 1.x lacks.

Import this module (``custom_imports=dict(imports=['internimage.datasets.transforms'])``)
to register them in mmseg's ``TRANSFORMS``.
"""

from typing import Dict, List, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

__all__ = ['MergeSegLabels', 'MAPILLARY_TO_CITYSCAPES', 'LABEL_MERGES']

# Mapillary Vistas v1.2 label ids (66 classes) merged into each of the 19 Cityscapes
# training classes, in Cityscapes order (road, sidewalk, building, ... bicycle): the
# official recipe's ``MapillaryHack`` table (segmentation/mmseg_custom/datasets/pipelines).
MAPILLARY_TO_CITYSCAPES = [
    [13, 24, 41],  # road <- Road, Lane Marking - General, Manhole
    [2, 15],  # sidewalk <- Curb, Sidewalk
    [17],  # building
    [6],  # wall
    [3],  # fence
    [45, 47],  # pole <- Pole, Utility Pole
    [48],  # traffic light
    [50],  # traffic sign <- Traffic Sign (Front)
    [30],  # vegetation
    [29],  # terrain
    [27],  # sky
    [19],  # person
    [20, 21, 22],  # rider <- Bicyclist, Motorcyclist, Other Rider
    [55],  # car
    [61],  # truck
    [54],  # bus
    [58],  # train <- On Rails
    [57],  # motorcycle
    [52],  # bicycle
]
# Tables a config may name instead of writing the groups out.
LABEL_MERGES = {'mapillary_v1_to_cityscapes': MAPILLARY_TO_CITYSCAPES}


@TRANSFORMS.register_module()
class MergeSegLabels(BaseTransform):
    """Relabel ``gt_seg_map``: the source ids in ``groups[i]`` become ``i``; every other id
    becomes ``ignore_index``.

    Used to train on Mapillary Vistas with the 19 Cityscapes classes, as the official
    Mapillary -> Cityscapes recipe does.

    Args:
        groups (Sequence[Sequence[int]] | str): for each target class, the source label
            ids merged into it (an id may appear in one group only), or the name of a table
            of ``LABEL_MERGES`` (``'mapillary_v1_to_cityscapes'``).
        ignore_index (int): the label of every id in no group. Defaults to 255.
    """

    def __init__(
        self, groups: Union[str, Sequence[Sequence[int]]], ignore_index: int = 255
    ) -> None:
        if isinstance(groups, str):
            if groups not in LABEL_MERGES:
                raise ValueError(
                    f'MergeSegLabels: groups={groups!r} names no table; expected one of '
                    f'{sorted(LABEL_MERGES)} or a list of label-id lists'
                )
            groups = LABEL_MERGES[groups]
        seen: Dict[int, int] = {}
        for target, sources in enumerate(groups):
            for source in sources:
                if not isinstance(source, int) or not 0 <= source < 256:
                    raise ValueError(
                        f'MergeSegLabels: groups[{target}] holds {source!r}; expected label '
                        'ids in 0-255'
                    )
                if source in seen:
                    raise ValueError(
                        f'MergeSegLabels: label id {source} is in groups[{seen[source]}] '
                        f'and groups[{target}]; each id may be merged into one class only'
                    )
                seen[source] = target
        self.groups: List[List[int]] = [list(sources) for sources in groups]
        self.ignore_index = ignore_index
        self._lookup = np.full(256, ignore_index, dtype=np.uint8)
        for source, target in seen.items():
            self._lookup[source] = target

    def transform(self, results: dict) -> dict:
        """Relabel ``results['gt_seg_map']`` (uint8 ids).

        Args:
            results (dict): the pipeline's data, with ``gt_seg_map`` from ``LoadAnnotations``.
        """
        if 'gt_seg_map' not in results:
            raise KeyError('MergeSegLabels needs gt_seg_map: put it after LoadAnnotations')
        labels = np.asarray(results['gt_seg_map'])
        if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
            raise ValueError(
                'MergeSegLabels: gt_seg_map holds ids outside 0-255 '
                f'({labels.min()}..{labels.max()}); expected 8-bit label maps'
            )
        results['gt_seg_map'] = self._lookup[labels]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(groups={self.groups}, ignore_index={self.ignore_index})'
