# Quick start: CB-DINO + a tiny composite CB-InternImage (two H-style branches, the
# official CBNetV2 connections) on the synthetic shapes data; the transformer, data and
# schedule of the single-branch quick-start DINO.
_base_ = './dino_internimage-h-tiny_quickstart.py'

model = dict(
    type='CBDINO',
    backbone=dict(type='CBInternImage', out_indices=[(0, 1, 2, 3), (1, 2, 3)]),
    neck=dict(type='CBChannelMapper'),
    bbox_head=dict(type='CBDINOHead'),
)
