#!/usr/bin/env bash
# Prometheus and promtool for wedge's metrics tests
# (crates/wedge/tests/metrics_live.rs): Debian's `prometheus` package,
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` under the
# build directory. Nothing is installed on the host: the package's
# maintainer scripts would create a user and start a service.
#
#   target/prometheus/root/usr/bin/{prometheus,promtool}   (+ the .deb)
#
# A second run finds the unpacked tree and fetches nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')}
target=${target:-target}
dir=$target/prometheus
[ -x "$dir/root/usr/bin/prometheus" ] && [ -x "$dir/root/usr/bin/promtool" ] && exit 0
mkdir -p "$dir"
cd "$dir"
if ! ls prometheus_*.deb >/dev/null 2>&1; then
    apt-cache show prometheus >/dev/null 2>&1 || apt-get update -qq
    apt-get download prometheus
fi
rm -rf root
dpkg-deb -x prometheus_*.deb root
test -x root/usr/bin/prometheus && test -x root/usr/bin/promtool
