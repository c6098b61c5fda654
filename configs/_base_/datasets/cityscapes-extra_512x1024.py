# Cityscapes fine train + the coarse train_extra split (official cityscapes_extra base):
# mmseg's Cityscapes pipeline (short side 1024 x 0.5-2.0, 512x1024 crops), validation on
# the fine val split at 2048x1024. The train_extra labels are the refined coarse maps the
# official recipe reads from refinement_final/train_extra, named like the fine ones
# (*_gtFine_labelTrainIds.png).
_base_ = 'mmseg::_base_/datasets/cityscapes.py'

splits = [
    ('leftImg8bit/train', 'gtFine/train'),
    ('leftImg8bit/train_extra', 'refinement_final/train_extra'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type='CityscapesDataset',
                data_root='data/cityscapes/',
                data_prefix=dict(img_path=images, seg_map_path=labels),
                pipeline={{_base_.train_pipeline}},
            )
            for images, labels in splits
        ],
    )
)
