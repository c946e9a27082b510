#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, then the end-to-end tests that drive Volt
# with the official Electric client from npm. Installs what a fresh Debian-like machine lacks
# (PostgreSQL server binaries, Node.js, nginx for the CDN test, the npm packages pinned by
# e2e/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Install the server only when none is present: a blanket install would upgrade the one the
# machine already has.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL server binaries"
  apt_install postgresql
fi
# The CDN test runs its own nginx from /usr/sbin with a configuration of its own; the
# package's default site is not used.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx"
  apt_install nginx
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Node.js"
  apt_install nodejs npm
fi

cargo build --workspace --locked
cargo test --workspace --locked

(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
VOLT_BIN="$PWD/target/debug/volt" npm --prefix e2e test
