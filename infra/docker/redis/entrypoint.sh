#!/bin/sh
# As the upstream image: a command starting with redis-server runs it with protected mode off
# (the container's network is the boundary); anything else runs as given.
set -eu
# Appended, as upstream does: a configuration file must stay redis-server's first argument.
if [ "${1:-}" = redis-server ]; then
    shift
    set -- redis-server "$@" --protected-mode no
fi
exec "$@"
