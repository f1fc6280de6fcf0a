#!/usr/bin/env bash
# Configures build/debug, the test build (preset debug: clang, ASan +
# UBSan), passing on its arguments to cmake. A build/debug configured with
# another compiler is removed first: CMake would remake its cache but drop
# the preset's settings with it (a build without the sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f build/debug/CMakeCache.txt ] &&
   ! grep -q '^CMAKE_CXX_COMPILER:.*clang++' build/debug/CMakeCache.txt; then
  rm -rf build/debug
fi
cmake --preset debug "$@" >/dev/null
