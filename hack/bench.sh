#!/usr/bin/env bash
# Runs every benchmark and prints its numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked -p rudder-storage --bench storage
cargo bench --locked -p rudder-apiserver --bench api
cargo bench --locked -p rudder-reconcilers --bench scheduler
cargo bench --locked -p rudder --bench pod_startup
cargo bench --locked -p rudder-netd --bench netd
