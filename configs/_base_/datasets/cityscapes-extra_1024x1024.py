# Cityscapes fine train + coarse train_extra (as ./cityscapes-extra_512x1024.py) with
# 1024x1024 crops (mmseg's cityscapes_1024x1024 pipeline, the official
# cityscapes_extra_1024x1024 base); the official Mask2Former test pipeline's rounding of
# the test size to a multiple of 32 is a no-op for Cityscapes' 2048x1024 images.
_base_ = 'mmseg::_base_/datasets/cityscapes_1024x1024.py'

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
