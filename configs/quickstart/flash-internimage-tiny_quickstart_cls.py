# Quick start with FlashInternImage: the classifier job of internimage-tiny_quickstart_cls.py
# with the DCNv4 token mixer (same tiny arch, data, schedule and evaluation).
# Run: make quickstart TASK=... BACKBONE=FlashInternImage
_base_ = './internimage-tiny_quickstart_cls.py'

model = dict(backbone=dict(type='FlashInternImage'))
