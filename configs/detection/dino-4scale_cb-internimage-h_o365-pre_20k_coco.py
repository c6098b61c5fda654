# DINO (4 scales) + CB-InternImage-H (CBNetV2 composite of two InternImage-H), fine-tuned on
# COCO from the official Objects365 DINO (80-class head): the H recipe with the composite
# backbone (CBInternImage), the neck shared by both branches (CBChannelMapper) and the
# head's losses on the assisting branch weighted 0.5 (CBDINOHead). The official layer-decay
# rule does not number the composite backbone's names, so the whole backbone trains at the
# full lr (CBInternImage.get_layer_depth keeps this).
# Starting weights: convert the official file once, then train (or pass --cfg-options
# load_from=...):
#   python tools/convert_checkpoint.py \
#     https://huggingface.co/OpenGVLab/InternImage/resolve/main/dino_4scale_cbinternimage_h_objects365_80classes.pth \  # noqa: E501
#     checkpoints/dino_4scale_cbinternimage_h_objects365_80classes_mmdet3.pth
# Target (official): box AP 65.0 (64.5 single-scale), 2.18B parameters.
_base_ = './dino-4scale_internimage-h_o365-pre_20k_coco.py'

load_from = 'checkpoints/dino_4scale_cbinternimage_h_objects365_80classes_mmdet3.pth'
model = dict(
    type='CBDINO',
    backbone=dict(type='CBInternImage', out_indices=[(0, 1, 2, 3), (1, 2, 3)]),
    neck=dict(type='CBChannelMapper'),
    bbox_head=dict(type='CBDINOHead'),
)
