#!/bin/sh
# As the upstream image: a command starting with redis-server runs it with protected mode off
# (the container's network is the boundary); anything else runs as given.
set -eu
if [ "${1:-}" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
