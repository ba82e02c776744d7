#!/usr/bin/env bash
# Make sure Debian's wrk (HTTP load generator) is installed: the posting benchmark measures the
# sandbox's own ceiling with it. Idempotent and silent when wrk is there; installs it with apt-get
# otherwise (as root).
set -eu
if command -v wrk >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-wrk: wrk is missing; run as root, or: sudo apt-get install wrk" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "ensure-wrk: wrk is missing and apt-get is not available; install wrk" >&2
  exit 1
fi
echo "ensure-wrk: installing wrk (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends wrk >/dev/null
if ! command -v wrk >/dev/null; then
  echo "ensure-wrk: apt-get finished but wrk is still missing" >&2
  exit 1
fi
echo "ensure-wrk: $(wrk --version 2>&1 | head -1) installed" >&2
