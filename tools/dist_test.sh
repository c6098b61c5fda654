#!/usr/bin/env bash
# Multi-GPU evaluation on one node:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
exec "$(dirname "$0")/dist_launch.sh" test.py "CONFIG CHECKPOINT GPUS" "$@"
