#!/usr/bin/env bash
# What `make up` and `make test` need from the operating system, installed or named in one line.
#
#   infra/local/prerequisites.sh up     # the platform of `make up`
#   infra/local/prerequisites.sh test   # that, plus what the test suite drives (browser, Docker)
#
# On Debian or Ubuntu as root, missing packages are installed with apt-get (its progress shown).
# Anywhere else (not root, no apt-get) nothing is changed: one line names what is missing and the
# command that installs it, and the exit status is 1. A package no configured source offers
# (after one `apt-get update`) is reported the same way. ADS_EXTRA_PACKAGES adds names to the
# list (the tests use it with a name that does not exist).
set -euo pipefail

purpose=${1:-up}
case "$purpose" in
  up | test) ;;
  *) echo "usage: $0 up|test" >&2 && exit 2 ;;
esac

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# ---- what is not a Debian package: checked, never installed -------------------------------
version_at_least() { # $1 >= $2, both dotted
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}
python_version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
[ -n "$python_version" ] && version_at_least "$python_version" 3.11 ||
  fail "Python 3.11 or later is missing (python3 is ${python_version:-not installed}): install python3 (Debian 12 has 3.11)"
go_version=$(go env GOVERSION 2>/dev/null | sed 's/^go//' || true)
[ -n "$go_version" ] && version_at_least "$go_version" 1.26 ||
  fail "Go 1.26 or later is missing (go is ${go_version:-not installed}): install it from https://go.dev/dl/ and put it on PATH (Debian's golang package is too old)"

# ---- Debian packages -------------------------------------------------------------------------
packages=(
  postgresql-15 redis-server prometheus     # the backing services (Kafka comes from Maven)
  openjdk-17-jre-headless maven             # Kafka's broker and the jars it is fetched as
  iproute2 util-linux iptables              # one network namespace per replica, on a bridge
  python3-venv ca-certificates git          # the virtualenv; module downloads
)
# The console's bundle is built with npm (Node 18 or later): Debian's unless one is installed.
command -v npm >/dev/null || packages+=(nodejs npm)
if [ "$purpose" = test ]; then
  packages+=(
    chromium chromium-driver                # the console's browser test
    wrk                                     # load steps in the scaling tests and benchmarks
    docker.io docker-compose debootstrap    # function images, compose, the Debian base image
  )
fi
read -r -a extra <<<"${ADS_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")

# (Outputs are captured, not piped into `grep -q`: with pipefail an early exit of grep would
# make a found name look absent.)
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  fail "missing packages: ${missing[*]} (this is not a Debian or Ubuntu system: install their equivalents with your package manager)"
fi
if [ "$(id -u)" != 0 ]; then
  fail "missing packages: ${missing[*]}; install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
fi

export DEBIAN_FRONTEND=noninteractive
# Names no configured source offers; apt's lists are refreshed once if any is unknown.
unavailable() {
  local pkg
  for pkg in "${missing[@]}"; do
    [[ $(apt-cache policy "$pkg" 2>/dev/null) =~ Candidate:\ [^\(] ]] || echo "$pkg"
  done
}
mapfile -t unknown < <(unavailable)
if ((${#unknown[@]})); then
  echo "==> prerequisites: refreshing the package lists (apt-get update)"
  refreshed=ok
  apt-get update -q >/dev/null 2>&1 || refreshed=failed
  mapfile -t unknown < <(unavailable)
  if ((${#unknown[@]})); then
    [ "$refreshed" = ok ] ||
      fail "no package source offers ${unknown[*]}, and apt-get update failed: check the network and the sources in /etc/apt"
    fail "no package source offers ${unknown[*]}: this needs Debian 12 (bookworm) or a release that has them"
  fi
fi

echo "==> prerequisites: installing ${#missing[@]} Debian packages: ${missing[*]}"
# The platform starts its own PostgreSQL and Redis: the packages' services must not start (and
# take the ports) during the install, and PostgreSQL must not create a cluster of its own.
added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  added_policy=1
fi
trap 'if ((added_policy)); then rm -f /usr/sbin/policy-rc.d; fi' EXIT
mkdir -p /etc/postgresql-common
grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
  echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
apt-get install -y --no-install-recommends -o Dpkg::Progress-Fancy=0 "${missing[@]}" |
  grep --line-buffered -E '^(Get:|Setting up|Unpacking|E:)' |
  sed -u 's/^/    /' || true
for pkg in "${missing[@]}"; do
  installed "$pkg" || fail "$pkg did not install: run apt-get install -y $pkg to see why"
done
echo "==> prerequisites: installed"
