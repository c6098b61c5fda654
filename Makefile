# Two commands do everything on a fresh machine (see README.md):
#   make quickstart   set up, then train + evaluate Mask R-CNN on the embedded data
#                     (BACKBONE=FlashInternImage: the same jobs with the DCNv4 backbone)
#   make test         set up, then run the test suite
# Both are idempotent: a second run reuses the venv, the cached mmcv wheel and
# the built operator.
VENV    ?= .venv
PYTHON  := $(VENV)/bin/python
TASK    ?= det
BACKBONE ?= InternImage
WORK    ?= work_dirs/quickstart
DATA    ?= data/quickstart

QS_CONFIG_det := configs/quickstart/mask-rcnn_internimage-tiny_quickstart.py
QS_CONFIG_seg := configs/quickstart/upernet_internimage-tiny_quickstart.py
QS_CONFIG_cls := configs/quickstart/internimage-tiny_quickstart_cls.py
ifeq ($(BACKBONE),FlashInternImage)
QS_CONFIG_det := configs/quickstart/mask-rcnn_flash-internimage-tiny_quickstart.py
QS_CONFIG_seg := configs/quickstart/upernet_flash-internimage-tiny_quickstart.py
QS_CONFIG_cls := configs/quickstart/flash-internimage-tiny_quickstart_cls.py
QS_WORK       := $(WORK)/flash-$(TASK)
else ifeq ($(BACKBONE),InternImage)
QS_WORK       := $(WORK)/$(TASK)
else
$(error BACKBONE must be InternImage or FlashInternImage, got $(BACKBONE))
endif
QS_CONFIG     := $(QS_CONFIG_$(TASK))

.PHONY: setup quickstart quickstart-all lint test benchmark benchmark-model gpu-check

setup:
	VENV=$(VENV) bash scripts/bootstrap.sh

quickstart: setup
	$(PYTHON) tools/make_quickstart_data.py --out $(DATA)
	$(PYTHON) tools/train.py $(QS_CONFIG) --work-dir $(QS_WORK)
	$(PYTHON) tools/test.py $(QS_CONFIG) "$$(cat $(QS_WORK)/last_checkpoint)" --work-dir $(QS_WORK)/test

quickstart-all:
	$(MAKE) quickstart TASK=det
	$(MAKE) quickstart TASK=seg
	$(MAKE) quickstart TASK=cls

# One ruff config (pyproject.toml) for the whole tree: lint and formatting are part of the tests.
lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test: lint
	$(PYTHON) -m pytest tests

benchmark: setup
	$(PYTHON) tools/benchmark_dcnv3.py

# InternImage-T (eager, compiled) vs ConvNeXt-T on the CPU: latency, training step, profile.
benchmark-model: setup
	$(PYTHON) tools/benchmark_model.py --cpu-report

# On a machine with a GPU: build the CUDA kernels, run the GPU tests and the GPU benchmarks.
gpu-check: setup
	PYTHON=$(PYTHON) bash scripts/gpu_check.sh
