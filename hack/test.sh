#!/usr/bin/env bash
# Every check CI runs: formatting, clippy, then all tests (unit, in-process integration, e2e).
# Privileged tests need root; without it they say they were skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean clone gains nothing from incremental compilation; it only costs disk and link time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

for tool in cargo kubectl curl; do
  command -v "$tool" >/dev/null || { echo "hack/test.sh: $tool is required" >&2; exit 1; }
done

# Building noded links the system's libseccomp (for containers' seccomp filters).
if ! pkg-config --exists libseccomp 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y libseccomp-dev pkg-config
  else
    echo "hack/test.sh: libseccomp-dev (and pkg-config) must be installed to build" >&2
    exit 1
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Container tests (as root) use Debian's busybox-static as their rootfs; the registry
# test pulls from Debian's docker-registry with htpasswd (apache2-utils) auth; netd programs
# nftables through the nft program (nftables) and its tests inspect links with iproute2.
if [ "$(id -u)" = 0 ]; then
  for package in busybox-static docker-registry apache2-utils nftables iproute2; do
    dpkg -s "$package" >/dev/null 2>&1 || apt-get install -y "$package"
  done
fi

cargo test --workspace --locked
