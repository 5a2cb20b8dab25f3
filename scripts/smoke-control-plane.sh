#!/usr/bin/env bash
# Smoke test for the binaries built by scripts/build-control-plane.sh:
# starts etcd and kube-apiserver (and kube-controller-manager) on 127.0.0.1
# with throw-away certificates in a temp dir, waits for /readyz, runs
# `kubectl get ns`, `kubectl version`, checks that the controller manager turns
# a Deployment into a ReplicaSet and that helm reaches the cluster, then stops
# everything and deletes the temp dir. Prints "SMOKE OK" on success.
# Rough on purpose: the pytest fixture for e2e tests should follow the same steps.
#
# Needs: the built binaries (runs the build script, a no-op when cached),
# openssl, curl, python3 (to find free ports).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$("$REPO_ROOT/scripts/build-control-plane.sh" | tail -n 1)
for b in etcd kube-apiserver kube-controller-manager kubectl helm; do
    [[ -x $BIN/$b ]] || { echo "smoke: missing $BIN/$b" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rightsizer-smoke.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    # Stop in reverse start order (controller manager, apiserver, etcd): an
    # apiserver whose etcd is gone first is slow to shut down.
    local i t0=$SECONDS
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do
        kill "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    echo "smoke: stopped all processes in $(( SECONDS - t0 ))s" >&2
    if (( rc != 0 )); then
        echo "smoke: FAILED (rc=$rc); last log lines:" >&2
        for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "== $f" >&2; tail -n 20 "$f" >&2; }; done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ETCD_PORT=$(free_port); PEER_PORT=$(free_port); API_PORT=$(free_port)
while [[ $PEER_PORT == "$ETCD_PORT" ]]; do PEER_PORT=$(free_port); done
while [[ $API_PORT == "$ETCD_PORT" || $API_PORT == "$PEER_PORT" ]]; do API_PORT=$(free_port); done

# --- certificates -----------------------------------------------------------
C=$WORK/pki; mkdir -p "$C"
ossl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=rightsizer-smoke-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$C/ca.key" -out "$C/ca.crt"
sign() {  # sign NAME SUBJECT EXTENSIONS
    ossl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$C/$1.key" -out "$C/$1.csr"
    printf '%s\n' "$3" >"$C/$1.ext"
    ossl x509 -req -in "$C/$1.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
        -days 1 -extfile "$C/$1.ext" -out "$C/$1.crt"
}
sign serving "/CN=kube-apiserver" \
    "$(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost')"
sign admin "/O=system:masters/CN=admin" \
    "$(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth')"
ossl genrsa -out "$C/sa.key" 2048
ossl rsa -in "$C/sa.key" -pubout -out "$C/sa.pub"

KUBECONFIG_FILE=$WORK/admin.kubeconfig
kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }
kc config set-cluster smoke --server "https://127.0.0.1:$API_PORT" \
    --certificate-authority "$C/ca.crt" --embed-certs >/dev/null
kc config set-credentials admin --client-certificate "$C/admin.crt" \
    --client-key "$C/admin.key" --embed-certs >/dev/null
kc config set-context smoke --cluster smoke --user admin >/dev/null
kc config use-context smoke >/dev/null

wait_for() {  # wait_for WHAT SECONDS COMMAND...
    local what=$1 deadline=$(( SECONDS + $2 )); shift 2
    until "$@" >/dev/null 2>&1; do
        (( SECONDS < deadline )) || { echo "smoke: timed out waiting for $what" >&2; return 1; }
        sleep 0.5
    done
}

# --- etcd -------------------------------------------------------------------
t0=$SECONDS
"$BIN/etcd" --name smoke --data-dir "$WORK/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "smoke=http://127.0.0.1:$PEER_PORT" \
    --unsafe-no-fsync=true --log-level=warn >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
wait_for "etcd /health" 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
echo "smoke: etcd ready on 127.0.0.1:$ETCD_PORT after $(( SECONDS - t0 ))s"

# --- kube-apiserver -----------------------------------------------------------
cat >"$WORK/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
EOF
t0=$SECONDS
"$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --cert-dir "$WORK/apiserver-certs" \
    --tls-cert-file "$C/serving.crt" --tls-private-key-file "$C/serving.key" \
    --secure-port "$API_PORT" --bind-address 127.0.0.1 \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --authorization-mode RBAC --disable-admission-plugins ServiceAccount \
    --service-account-issuer "https://127.0.0.1:$API_PORT/" \
    --service-account-key-file "$C/sa.pub" --service-account-signing-key-file "$C/sa.key" \
    --client-ca-file "$C/ca.crt" \
    --audit-policy-file "$WORK/audit-policy.yaml" --audit-log-path "$WORK/audit.log" \
    >"$WORK/kube-apiserver.log" 2>&1 &
PIDS+=($!)
wait_for "kube-apiserver /readyz" 90 curl -fsS --cacert "$C/ca.crt" --cert "$C/admin.crt" --key "$C/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz"
echo "smoke: kube-apiserver ready on 127.0.0.1:$API_PORT after $(( SECONDS - t0 ))s"

# --- kube-controller-manager ----------------------------------------------------
"$BIN/kube-controller-manager" --kubeconfig "$KUBECONFIG_FILE" --leader-elect=false --secure-port=0 \
    --service-account-private-key-file "$C/sa.key" --root-ca-file "$C/ca.crt" \
    --controllers '*' >"$WORK/kube-controller-manager.log" 2>&1 &
PIDS+=($!)

echo "+ kubectl get ns"; kc get ns
echo "+ kubectl version"; kc version

kc create deployment smoke --image=registry.invalid/smoke:1 --replicas=1 >/dev/null
wait_for "a ReplicaSet for the Deployment" 60 bash -c \
    "'$BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' get rs -l app=smoke -o name | grep -q ."
wait_for "a Pod from the ReplicaSet" 60 bash -c \
    "'$BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' get pods -l app=smoke -o name | grep -q ."
echo "+ kubectl get deploy,rs,pods"; kc get deploy,rs,pods

echo "+ helm list -A"
HELM_CACHE_HOME=$WORK/helm HELM_CONFIG_HOME=$WORK/helm HELM_DATA_HOME=$WORK/helm \
    "$BIN/helm" --kubeconfig "$KUBECONFIG_FILE" list -A

[[ -s $WORK/audit.log ]] || { echo "smoke: audit log is empty" >&2; exit 1; }
echo "SMOKE OK"
