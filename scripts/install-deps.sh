#!/bin/sh
# Install the Debian 12 packages snisplice needs to build, test and benchmark.
# Idempotent and quick when everything is present; needs root (or sudo) to
# install what is missing. Set SNISPLICE_NO_INSTALL=1 to only report.
set -eu

packages="build-essential pkg-config liburing-dev libinih-dev libcriterion-dev \
openssl curl clang libclang-rt-14-dev libpcre2-dev procps iproute2 logrotate $*"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: missing:$missing"
if [ "${SNISPLICE_NO_INSTALL:-0}" = 1 ]; then exit 1; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
