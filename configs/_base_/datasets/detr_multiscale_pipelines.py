# DETR-style multi-scale training, as the official InternImage 3x and DINO configs write it
# (mmdet 2.x AutoAugment with two policies): flip, then either resize the short side to one
# of 480, 512, ..., 800 (long side <= 1333), or resize the short side to 400/500/600, crop
# 384-600 px and resize to 480-800 as before. The official configs differ in three values,
# the arguments of ``_detr_multiscale``; a config picks its pipeline by name:
#   train_dataloader = dict(dataset=dict(pipeline={{_base_.detr_multiscale_instance_pipeline}}))
# (this file has no other keys, so it can sit beside any base in a ``_base_`` list).


def _detr_multiscale(with_mask: bool, crop_branch_long_side: int, allow_negative_crop: bool):
    """with_mask: load instance masks; crop_branch_long_side: long-side bound of the
    400-600 resize before the crop; allow_negative_crop: keep crops without any box."""
    scales = [(1333, short) for short in range(480, 801, 32)]
    crop_branch = [
        dict(
            type='RandomChoiceResize',
            scales=[(crop_branch_long_side, short) for short in (400, 500, 600)],
            keep_ratio=True,
        ),
        dict(
            type='RandomCrop',
            crop_type='absolute_range',
            crop_size=(384, 600),
            allow_negative_crop=allow_negative_crop,
        ),
        dict(type='RandomChoiceResize', scales=scales, keep_ratio=True),
    ]
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=with_mask),
        dict(type='RandomFlip', prob=0.5),
        dict(
            type='RandomChoice',
            transforms=[
                [dict(type='RandomChoiceResize', scales=scales, keep_ratio=True)],
                crop_branch,
            ],
        ),
        dict(type='PackDetInputs'),
    ]


# Mask R-CNN / Cascade Mask R-CNN 3x: boxes and masks; a crop may lose every box.
detr_multiscale_instance_pipeline = _detr_multiscale(True, 1333, True)
# Box-only detectors with the same policy (CrowdHuman Cascade R-CNN).
detr_multiscale_box_pipeline = _detr_multiscale(False, 1333, True)
# DINO: boxes only; the 400-600 resize leaves the long side free (4200) and a crop keeps
# at least one box.
detr_multiscale_dino_pipeline = _detr_multiscale(False, 4200, False)
