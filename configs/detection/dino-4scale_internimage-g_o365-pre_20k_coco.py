# DINO (4 scales) + InternImage-G, fine-tuned on COCO from Objects365 pre-training: the
# H recipe with the G backbone (layer decay over its 56 layers). The official
# transformer FFNs are EfficientFFN (4 column slices of the same two linears, each
# recomputed in backward), one function with mmcv's FFN: tools/convert_checkpoint.py
# concatenates the slices.
# Target (official): none published for this config in the model zoo.
_base_ = './dino-4scale_internimage-h_o365-pre_20k_coco.py'

model = dict(backbone=dict(arch='g'), neck=dict(in_channels=[1024, 2048, 4096]))
