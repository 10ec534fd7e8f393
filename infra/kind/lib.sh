# Shared by the scripts in infra/kind: paths, pins, progress lines and the rebuild-on-change cache.
# Sourced, never run.
KIND_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KIND_HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$KIND_HERE/versions.env"
# shellcheck source=addons.env
source "$KIND_HERE/addons.env"
KIND_STATE="${KIND_STATE:-$REPO_ROOT/.local/kind}"
KIND_BIN="$KIND_STATE/bin"
KIND_STAMPS="$KIND_STATE/stamps"
mkdir -p "$KIND_BIN" "$KIND_STAMPS"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

# progress WHAT...: one line per step, so a long cold build shows where it is (on stderr: the
# scripts' stdout is their result).
progress() { echo "==> kind: $*" >&2; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# inputs_key FILE|DIR...: a hash of the pins and every input file, the cache key of a build.
# Paths are hashed relative to the checkout, so another checkout finds the same images.
inputs_key() {
    { cat "$KIND_HERE/versions.env"; find "$@" -type f -print0 | sort -z | xargs -0 sha256sum \
        | sed -e "s|  $KIND_STATE/|  .local/kind/|" -e "s|  $REPO_ROOT/|  |"; } \
        | sha256sum | cut -c1-16
}

# cached NAME KEY: true when NAME was last built from inputs with this KEY.
cached() { [[ -f "$KIND_STAMPS/$1" && "$(cat "$KIND_STAMPS/$1")" == "$2" ]]; }
mark_built() { echo "$2" >"$KIND_STAMPS/$1"; }

# timed NAME COMMAND...: runs COMMAND and prints how long NAME took.
timed() {
    local name="$1" started=$SECONDS
    shift
    "$@"
    progress "$name done in $((SECONDS - started)) s"
}

# module_dir MODULE@VERSION: the module's source in the Go module cache (downloaded if missing).
module_dir() {
    go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}
