#!/usr/bin/env bash
# Print the path of a helm v3 binary, building the pinned one on first use.
#
# Looks, in order, for:
#   1. $RIGHTSIZER_HELM, if set (must run);
#   2. the helm that scripts/build-control-plane.sh installs (its --print-dir folder);
#   3. this script's own cache: ${RIGHTSIZER_CACHE:-$HOME/.cache/rightsizer}/bin/helm-<v>/helm;
#   4. a helm v3 on PATH;
# and otherwise builds helm <v> from the Go module proxy into (3) with
# `go install helm.sh/helm/v3/cmd/helm@<v>` (under nice, one package at a time: the
# machine is small and shared). The first build takes one to a few minutes; later runs
# are instant. Progress goes to stderr; the binary's path is the only line on stdout.
#
# Needs: bash, coreutils; Go only when a build is needed.
# Environment: RIGHTSIZER_HELM, RIGHTSIZER_CACHE, RIGHTSIZER_BUILD_JOBS (default 1),
# RIGHTSIZER_BUILD_NICE (default 19).
set -euo pipefail

HELM_VERSION=v3.21.4

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE_ROOT=${RIGHTSIZER_CACHE:-$HOME/.cache/rightsizer}
OWN_DIR=$CACHE_ROOT/bin/helm-$HELM_VERSION

log() { printf 'ensure-helm: %s\n' "$*" >&2; }
die() { printf 'ensure-helm: error: %s\n' "$*" >&2; exit 1; }

# helm_version BIN: its short version (e.g. v3.21.4+g...), without touching ~/.config.
helm_version() {
    [[ -x $1 ]] || return 1
    local tmp rc=0
    tmp=$(mktemp -d)
    HELM_CACHE_HOME=$tmp HELM_CONFIG_HOME=$tmp HELM_DATA_HOME=$tmp \
        timeout 30 "$1" version --short 2>/dev/null || rc=1
    rm -rf "$tmp"
    return $rc
}
is_pinned() { [[ $(helm_version "$1" || true) == "$HELM_VERSION"* ]]; }
is_v3() { [[ $(helm_version "$1" || true) == v3.* ]]; }

if [[ -n ${RIGHTSIZER_HELM:-} ]]; then
    is_v3 "$RIGHTSIZER_HELM" || die "RIGHTSIZER_HELM=$RIGHTSIZER_HELM is not a working helm v3"
    echo "$RIGHTSIZER_HELM"; exit 0
fi

candidates=()
if [[ -x $REPO_ROOT/scripts/build-control-plane.sh ]]; then
    cp_dir=$("$REPO_ROOT/scripts/build-control-plane.sh" --print-dir 2>/dev/null | tail -n 1) || cp_dir=""
    [[ -n $cp_dir ]] && candidates+=("$cp_dir/helm")
fi
candidates+=("$OWN_DIR/helm")
for candidate in "${candidates[@]}"; do
    if is_pinned "$candidate"; then echo "$candidate"; exit 0; fi
done
if on_path=$(command -v helm 2>/dev/null) && is_v3 "$on_path"; then
    echo "$on_path"; exit 0
fi

command -v go >/dev/null 2>&1 || die "no helm v3 found and no Go toolchain ('go') to build helm $HELM_VERSION; install Go or set RIGHTSIZER_HELM"
mkdir -p "$OWN_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OWN_DIR/.lock"
    flock 9
    if is_pinned "$OWN_DIR/helm"; then echo "$OWN_DIR/helm"; exit 0; fi  # built meanwhile
fi

JOBS=${RIGHTSIZER_BUILD_JOBS:-1}
NICE=${RIGHTSIZER_BUILD_NICE:-19}
export CGO_ENABLED=0 GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=$JOBS -trimpath"

# As helm's release build: stamp the version, and the default .Capabilities.KubeVersion
# from the client-go helm is built with (without it `helm template` assumes v1.20).
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
gomod=$(cd "$OWN_DIR" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" 2>/dev/null \
    | awk -F'"' '$2 == "GoMod" { print $4 }') || gomod=""
if [[ -n $gomod && -f $gomod ]]; then
    minor=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$gomod")
    if [[ -n $minor ]]; then
        for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
            ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
        done
    fi
fi

gobin=$OWN_DIR/.gobin.$$
rm -rf "$gobin"; mkdir -p "$gobin"
trap 'rm -rf "$gobin"' EXIT
log "building helm $HELM_VERSION into $OWN_DIR ($(go version); go build -p $JOBS, nice $NICE) ..."
start=$SECONDS
(cd "$OWN_DIR" && GOBIN=$gobin nice -n "$NICE" go install -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION") >&2 \
    || die "building helm $HELM_VERSION failed (see the go output above)"
mv -f "$gobin/helm" "$OWN_DIR/helm"
is_pinned "$OWN_DIR/helm" || die "built $OWN_DIR/helm but it does not report $HELM_VERSION"
log "built helm $HELM_VERSION in $(( SECONDS - start ))s"
echo "$OWN_DIR/helm"
