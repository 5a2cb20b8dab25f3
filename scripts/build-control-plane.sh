#!/usr/bin/env bash
# Build a real Kubernetes control plane for end-to-end tests from the Go module
# proxy (no prebuilt binaries are downloaded): kube-apiserver,
# kube-controller-manager, kubectl, etcd, helm and toxiproxy-server.
#
# Installs into ${RIGHTSIZER_CACHE:-$HOME/.cache/rightsizer}/bin/k8s-<v>-etcd-<v>/
# and prints that folder as the last line of stdout (all progress goes to
# stderr), so a Makefile can do
#     CONTROL_PLANE_BIN := $(shell scripts/build-control-plane.sh --print-dir)
# Idempotent: a binary that is already there and reports the expected version
# is not rebuilt. The first build takes a while (see tools/controlplane/README.md).
#
# Versions: k8s and etcd come from tools/controlplane/go.mod and
# tools/controlplane/etcd/go.mod (with their go.sum); helm and toxiproxy are
# pinned below. Needs only the Go toolchain (>= 1.25, for etcd 3.6).
#
# Options:
#   --print-dir   print the install folder and exit (no build, no go needed)
#   --force       rebuild every binary even if it is already there
#   -h, --help    this text
# Environment:
#   RIGHTSIZER_CACHE        cache root (default $HOME/.cache/rightsizer)
#   RIGHTSIZER_BUILD_JOBS   go build -p (default 1: the machine is shared)
#   RIGHTSIZER_BUILD_NICE   nice level for go builds (default 19)
set -euo pipefail

HELM_VERSION=v3.21.4
TOXIPROXY_VERSION=v2.12.0

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=$REPO_ROOT/tools/controlplane
ETCD_TOOLS_DIR=$TOOLS_DIR/etcd

log() { printf 'build-control-plane: %s\n' "$*" >&2; }
die() { printf 'build-control-plane: error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; }

PRINT_DIR=0
FORCE=0
for arg in "$@"; do
    case $arg in
        --print-dir) PRINT_DIR=1 ;;
        --force) FORCE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $arg" ;;
    esac
done

# Version of module $1 as required in go.mod file $2 (single-line or block form).
modver() {
    [[ -f $2 ]] || die "missing $2"
    awk -v m="$1" '
        $1 == "require" && $2 == m && $3 ~ /^v/ { print $3; exit }
        $1 == m && $2 ~ /^v/ { print $2; exit }
    ' "$2"
}

K8S_VERSION=$(modver k8s.io/kubernetes "$TOOLS_DIR/go.mod")
ETCD_VERSION=$(modver go.etcd.io/etcd/server/v3 "$ETCD_TOOLS_DIR/go.mod")
[[ -n $K8S_VERSION ]] || die "k8s.io/kubernetes not required in $TOOLS_DIR/go.mod"
[[ -n $ETCD_VERSION ]] || die "go.etcd.io/etcd/server/v3 not required in $ETCD_TOOLS_DIR/go.mod"

CACHE_ROOT=${RIGHTSIZER_CACHE:-$HOME/.cache/rightsizer}
BIN_DIR=$CACHE_ROOT/bin/k8s-${K8S_VERSION#v}-etcd-${ETCD_VERSION#v}

if (( PRINT_DIR )); then
    echo "$BIN_DIR"
    exit 0
fi

# Expected `--version` output of each binary (a fixed substring).
declare -A EXPECT=(
    [kube-apiserver]="Kubernetes $K8S_VERSION"
    [kube-controller-manager]="Kubernetes $K8S_VERSION"
    [kubectl]="Client Version: $K8S_VERSION"
    [etcd]="etcd Version: ${ETCD_VERSION#v}"
    [helm]="$HELM_VERSION"
    [toxiproxy-server]="version ${TOXIPROXY_VERSION#v}"
)
BINARIES=(kube-apiserver kube-controller-manager kubectl etcd helm toxiproxy-server)

version_output() {
    local bin=$BIN_DIR/$1
    [[ -x $bin ]] || return 1
    case $1 in
        kubectl) timeout 30 "$bin" version --client 2>&1 ;;
        helm) timeout 30 env HELM_CACHE_HOME=/tmp HELM_CONFIG_HOME=/tmp HELM_DATA_HOME=/tmp "$bin" version --short 2>&1 ;;
        *) timeout 30 "$bin" --version 2>&1 ;;
    esac
}

is_ok() {
    local out
    out=$(version_output "$1") || return 1
    [[ $out == *"${EXPECT[$1]}"* ]]
}

todo=()
for b in "${BINARIES[@]}"; do
    if (( FORCE )) || ! is_ok "$b"; then todo+=("$b"); fi
done

if (( ${#todo[@]} == 0 )); then
    log "up to date: $BIN_DIR"
    echo "$BIN_DIR"
    exit 0
fi

command -v go >/dev/null 2>&1 || die "the Go toolchain ('go') is not on PATH; it is needed to build ${todo[*]}"
command -v timeout >/dev/null 2>&1 || die "'timeout' (coreutils) is not on PATH"

mkdir -p "$BIN_DIR"
# Serialise concurrent runs (e.g. parallel make or two test sessions).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_ROOT/bin/.build-control-plane.lock"
    flock 9
    # Someone else may have finished the job while we waited.
    still=()
    for b in "${todo[@]}"; do
        if (( FORCE )) || ! is_ok "$b"; then still+=("$b"); fi
    done
    todo=("${still[@]}")
    if (( ${#todo[@]} == 0 )); then
        log "up to date (built by a concurrent run): $BIN_DIR"
        echo "$BIN_DIR"
        exit 0
    fi
fi

JOBS=${RIGHTSIZER_BUILD_JOBS:-1}
NICE=${RIGHTSIZER_BUILD_NICE:-19}
export CGO_ENABLED=0 GOWORK=off
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=$JOBS -trimpath"

k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
K8S_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

# helm's release Makefile sets the default .Capabilities.KubeVersion from the
# client-go it is built with (v0.X.Y -> 1.X); without it `helm template` says v1.20.
helm_ldflags() {
    local gomod minor=""
    gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | awk -F'"' '$2 == "GoMod" { print $4 }') || true
    if [[ -n $gomod && -f $gomod ]]; then
        minor=$(awk '$1 == "k8s.io/client-go" { split($2, v, "."); print v[2]; exit }' "$gomod")
    fi
    local f="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    if [[ -n $minor ]]; then
        for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
            f+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
        done
    fi
    printf '%s' "$f"
}

# build_one NAME: build into a temp file in BIN_DIR, then rename into place.
build_one() {
    local name=$1 tmp=$BIN_DIR/.$1.tmp.$$
    rm -f "$tmp"
    case $name in
        kube-apiserver|kube-controller-manager|kubectl)
            (cd "$TOOLS_DIR" && nice -n "$NICE" go build -ldflags "$K8S_LDFLAGS" -o "$tmp" "k8s.io/kubernetes/cmd/$name") ;;
        etcd)
            (cd "$ETCD_TOOLS_DIR" && nice -n "$NICE" go build -ldflags "-s -w" -o "$tmp" go.etcd.io/etcd/server/v3) ;;
        helm|toxiproxy-server)
            # `go install pkg@version` ignores the current module; GOBIN gets a
            # fresh folder so the binary name (`server` for toxiproxy) is known.
            local gobin=$BIN_DIR/.gobin.$$ pkg ldflags
            if [[ $name == helm ]]; then
                pkg=helm.sh/helm/v3/cmd/helm@$HELM_VERSION; ldflags=$(helm_ldflags)
            else
                pkg=github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION
                ldflags="-s -w -X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION#v}"
            fi
            rm -rf "$gobin"; mkdir -p "$gobin"
            local rc=0
            (cd "$BIN_DIR" && GOBIN=$gobin nice -n "$NICE" go install -ldflags "$ldflags" "$pkg") \
                && mv "$gobin/$(basename "${pkg%@*}")" "$tmp" || rc=1
            rm -rf "$gobin"
            return $rc ;;
        *) die "unknown binary $name" ;;
    esac
}

log "Go: $(go version)"
log "building into $BIN_DIR: ${todo[*]} (k8s $K8S_VERSION, etcd $ETCD_VERSION, helm $HELM_VERSION, toxiproxy $TOXIPROXY_VERSION; go build -p $JOBS, nice $NICE)"
total_start=$(date +%s)
for b in "${todo[@]}"; do
    start=$(date +%s)
    log "building $b ..."
    if ! build_one "$b"; then
        rm -f "$BIN_DIR/.$b.tmp.$$"
        die "building $b failed (see the go output above)"
    fi
    mv -f "$BIN_DIR/.$b.tmp.$$" "$BIN_DIR/$b"
    secs=$(( $(date +%s) - start ))
    size=$(( $(stat -c %s "$BIN_DIR/$b") / 1048576 ))
    if ! is_ok "$b"; then
        die "$b was built but its version output does not contain '${EXPECT[$b]}': $(version_output "$b" | head -3 | tr '\n' ' ')"
    fi
    log "built $b in ${secs}s (${size} MiB)"
    printf '%s built %s in %ss, %s MiB, %s\n' "$(date -u +%FT%TZ)" "$b" "$secs" "$size" "$(go version)" >>"$BIN_DIR/build.log"
done
log "done in $(( $(date +%s) - total_start ))s: $BIN_DIR"
echo "$BIN_DIR"
