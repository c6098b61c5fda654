# Quick start with FlashInternImage: the UperNet job of upernet_internimage-tiny_quickstart.py
# with the DCNv4 token mixer (same tiny arch, data, schedule and evaluation).
# Run: make quickstart TASK=... BACKBONE=FlashInternImage
_base_ = './upernet_internimage-tiny_quickstart.py'

model = dict(backbone=dict(type='FlashInternImage'))
