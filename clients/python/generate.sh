#!/usr/bin/env bash
# Python modules for resgraph's contracts, generated from proto/ (never copied): messages with
# protoc's own generator, service stubs with gRPC's plugin. Debian: apt-get install
# protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf.
# Usage: generate.sh [OUT]   (default: gen/ beside this script)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/gen}
protos=$here/../../proto/src/main/proto

command -v protoc >/dev/null || { echo "generate.sh: protoc is missing (Debian: apt-get install protobuf-compiler)" >&2; exit 1; }
plugin=$(command -v grpc_python_plugin) \
  || { echo "generate.sh: grpc_python_plugin is missing (Debian: apt-get install protobuf-compiler-grpc)" >&2; exit 1; }
mkdir -p "$out"
protoc -I "$protos" --python_out="$out" --grpc_python_out="$out" --plugin=protoc-gen-grpc_python="$plugin" \
  "$protos"/resgraph/v1/*.proto
