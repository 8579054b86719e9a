#!/bin/sh
# As the official image's entrypoint: arguments that start with `-` (e.g. the kind overlay's
# `--save "" --appendonly no`) are options of redis-server. Protected mode is off first, as the
# official image's build does, so that clients on other addresses (pods) are answered.
set -eu
case "${1:-}" in
  -*) set -- redis-server --protected-mode no "$@" ;;
esac
exec "$@"
