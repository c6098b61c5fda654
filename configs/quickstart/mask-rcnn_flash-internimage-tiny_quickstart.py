# Quick start with FlashInternImage: the Mask R-CNN job of mask-rcnn_internimage-tiny_quickstart.py
# with the DCNv4 token mixer (same tiny arch, data, schedule and evaluation).
# Run: make quickstart TASK=... BACKBONE=FlashInternImage
_base_ = './mask-rcnn_internimage-tiny_quickstart.py'

model = dict(backbone=dict(type='FlashInternImage'))
