#!/usr/bin/env bash
# Multi-GPU training on one node:  tools/dist_train.sh CONFIG GPUS [train.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
exec "$(dirname "$0")/dist_launch.sh" train.py "CONFIG GPUS" "$@"
