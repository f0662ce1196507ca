#!/usr/bin/env bash
# The main job: set up (scripts/setup.sh), then run `sixpn demo`. Arguments go to `sixpn demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec bin/sixpn demo "$@"
