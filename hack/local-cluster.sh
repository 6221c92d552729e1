#!/usr/bin/env bash
# Starts or stops a simulated Kubernetes cluster whose whole state lives in DIR:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (one fake node on which
# pods run, Deployments, StatefulSets with volumes and Jobs become ready, and exec runs commands
# on this host), all on 127.0.0.1 with free ports. Tests start one per package through
# test/testenv (testenv.SimulatedCluster); `make demo` runs one by hand.
#
#   hack/local-cluster.sh up DIR     build missing binaries, start, wait until ready, write
#                                    DIR/kubeconfig and DIR/cluster.env (printed as `export` lines)
#   hack/local-cluster.sh down DIR   stop every process by its PID file (idempotent)
#   hack/local-cluster.sh restart-apiserver DIR
#                                    stop kube-apiserver (TERM) and start it again with the same
#                                    flags and data, then wait until it is ready (failure drills)
#
# DIR holds pki/, etcd/, logs/<component>.log, run/<component>.pid, audit.log (every write
# request, dry-run ones with `dryRun=All` in requestURI) and kube-cache/ (KUBECACHEDIR).
# `up` on a running DIR does nothing; on a half-running or stopped one it starts a fresh cluster.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_NAME=local-cluster
SELF=$HACK/local-cluster.sh
# shellcheck source-path=SCRIPTDIR source=cluster/lib.sh
source "$HACK/cluster/lib.sh"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
NODE=kwok-node-0

usage() { echo "usage: $0 up|down|restart-apiserver DIR" >&2; exit 2; }

# cert NAME CN ORG CA SANS: an ECDSA key and certificate for client and server use, signed by CA.
cert() {
  local name=$1 cn=$2 org=$3 ca=$4 sans=$5
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/$name.key" \
    -subj "/CN=$cn${org:+/O=$org}" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 3650 -out "$PKI/$name.crt" -extfile <(
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=serverAuth,clientAuth"
      [ -z "$sans" ] || echo "subjectAltName=$sans"
    ) 2>/dev/null
  rm "$PKI/$name.csr"
}

# ca NAME CN: a self-signed certificate authority.
ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -keyout "$PKI/$1.key" -out "$PKI/$1.crt" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

certificates() {
  rm -rf "$PKI"; mkdir -p "$PKI"; chmod 700 "$PKI"
  ca ca kudod-local-cluster-ca
  ca front-proxy-ca kudod-local-front-proxy-ca
  local local_sans="IP:127.0.0.1,DNS:localhost"
  cert kube-apiserver kube-apiserver "" ca \
    "$local_sans,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # Every component gets its own name, so the audit log tells them apart; all are cluster admins.
  cert admin kudod-admin system:masters ca ""
  cert kube-apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ca ""
  cert kube-controller-manager system:kube-controller-manager system:masters ca "$local_sans"
  cert kube-scheduler system:kube-scheduler system:masters ca "$local_sans"
  cert kwok kwok system:masters ca "$local_sans"
  cert front-proxy-client front-proxy-client "" front-proxy-ca ""
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
  openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

b64() { base64 -w0 <"$1"; }

# kubeconfig FILE USER: a kubeconfig for the API server that authenticates with pki/USER.{crt,key}.
kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kudod-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$PKI/$2.crt")
    client-key-data: $(b64 "$PKI/$2.key")
contexts:
- name: kudod-local
  context:
    cluster: kudod-local
    user: $2
current-context: kudod-local
EOF
  chmod 600 "$1"
}

# kwok_config: kwok's default stages, as kwokctl uses them, plus the exec rule.
kwok_config() {
  local stage
  for stage in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$BIN/kwok-stage/$stage" ] || { log "missing kwok stage $BIN/kwok-stage/$stage: rebuild kwok"; exit 1; }
    cat "$BIN/kwok-stage/$stage"
    echo "---"
  done
  cat "$HACK/cluster/kwok-exec.yaml"
}

kubectl() { "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" "$@"; }

# node_ready: Ready, and no longer tainted not-ready by the node lifecycle controller (pods
# would not schedule until it removes that taint).
node_ready() {
  [ "$(kubectl get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ] &&
    [ -z "$(kubectl get node "$NODE" -o jsonpath='{.spec.taints}')" ]
}

running() {
  local name
  for name in "${COMPONENTS[@]}"; do ours "$(pid_of "$name")" || return 1; done
  kubectl --request-timeout=2s get --raw /readyz >/dev/null 2>&1
}

print_env() {
  sed 's/^/export /' "$DIR/cluster.env"
  log "cluster in $DIR is up: $(sed -n 's/^KUBE_API_SERVER=//p' "$DIR/cluster.env"), logs in $DIR/logs"
}

up() {
  BIN=$("$HACK/build-binaries.sh" cluster)
  if running; then
    print_env
    return
  fi
  down
  local begin=$SECONDS
  # Components inherit the working directory, and exec'd commands run in it: make it DIR.
  cd "$DIR"
  # Only what this script creates is removed: DIR may hold other things.
  rm -rf "$DIR/etcd" "$DIR/logs" "$DIR/run" "$DIR/kube-cache" "$DIR/audit.log" "$DIR/kubeconfig" "$DIR"/*.kubeconfig "$DIR/cluster.env"
  mkdir -p "$DIR/logs" "$DIR/run" "$DIR/kube-cache"
  export KUBECACHEDIR=$DIR/kube-cache
  read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT <<<"$(free_ports 6)"

  certificates
  kubeconfig "$DIR/kubeconfig" admin
  for user in kube-controller-manager kube-scheduler kwok; do kubeconfig "$DIR/$user.kubeconfig" "$user"; done
  kwok_config >"$DIR/kwok.yaml"
  cat >"$DIR/cluster.env" <<EOF
KUBECONFIG=$DIR/kubeconfig
KUBECACHEDIR=$DIR/kube-cache
KUBECTL=$BIN/kubectl
KUBE_API_SERVER=https://127.0.0.1:$API_PORT
EOF

  start etcd "$BIN/etcd" --name=etcd --data-dir="$DIR/etcd" --log-level=warn --unsafe-no-fsync=true \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="etcd=http://127.0.0.1:$ETCD_PEER_PORT"

  start kube-apiserver "$BIN/kube-apiserver" --bind-address=127.0.0.1 --secure-port="$API_PORT" \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$PKI/kube-apiserver.crt" --tls-private-key-file="$PKI/kube-apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --authorization-mode=Node,RBAC --allow-privileged=true \
    --service-cluster-ip-range=10.96.0.0/16 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --kubelet-client-certificate="$PKI/kube-apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/kube-apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --audit-policy-file="$HACK/cluster/audit-policy.yaml" --audit-log-path="$DIR/audit.log" \
    --audit-log-maxsize=200 --audit-log-maxbackup=1
  await etcd 30 healthy "http://127.0.0.1:$ETCD_PORT/health" -o /dev/null -w ok
  # The others read configuration from the API server when they start.
  await kube-apiserver 60 kubectl --request-timeout=2s get --raw /readyz

  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --tls-cert-file="$PKI/kube-controller-manager.crt" --tls-private-key-file="$PKI/kube-controller-manager.key" \
    --leader-elect=false --use-service-account-credentials=true \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --kube-api-qps=200 --kube-api-burst=400 --enable-hostpath-provisioner=true

  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$DIR/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
    --tls-cert-file="$PKI/kube-scheduler.crt" --tls-private-key-file="$PKI/kube-scheduler.key" \
    --leader-elect=false --kube-api-qps=200 --kube-api-burst=400

  start kwok "$BIN/kwok" --kubeconfig="$DIR/kwok.kubeconfig" --config="$DIR/kwok.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-name="$NODE" --node-port="$KWOK_PORT" --server-address="127.0.0.1:$KWOK_PORT" \
    --tls-cert-file="$PKI/kwok.crt" --tls-private-key-file="$PKI/kwok.key" \
    --node-lease-duration-seconds=40 --cidr=10.244.0.0/16


  await kube-controller-manager 30 healthy "https://127.0.0.1:$KCM_PORT/healthz" --cacert "$PKI/ca.crt"
  await kube-scheduler 30 healthy "https://127.0.0.1:$SCHED_PORT/healthz" --cacert "$PKI/ca.crt"
  await kwok 30 healthy "https://127.0.0.1:$KWOK_PORT/healthz" --cacert "$PKI/ca.crt"
  kubectl apply -f "$HACK/cluster/storageclass.yaml" -f "$HACK/cluster/node.yaml" >"$DIR/logs/setup.log" 2>&1 ||
    fail setup "could not create the StorageClass and the Node"
  await kwok 30 node_ready
  # The ServiceAccount admission plugin rejects pods until the namespace's `default` exists.
  await kube-controller-manager 30 kubectl get serviceaccount default -n default
  log "ready in $((SECONDS - begin))s"
  print_env
}

down() {
  # kube-controller-manager's host-path provisioner makes a folder in /tmp/hostpath_pv per volume.
  if ours "$(pid_of kube-apiserver)"; then
    "$(sed -n 's/^KUBECTL=//p' "$DIR/cluster.env")" --kubeconfig "$DIR/kubeconfig" --request-timeout=5s get pv \
      -o jsonpath='{range .items[*]}{.spec.hostPath.path}{"\n"}{end}' 2>/dev/null |
      while read -r path; do
        case $path in /tmp/hostpath_pv/?*) rm -rf -- "$path" ;; esac
      done || true
  fi
  # etcd last: an API server that loses etcd first takes long to stop.
  stop kwok kube-scheduler kube-controller-manager kube-apiserver
  stop etcd
}

restart_apiserver() {
  BIN=$("$HACK/build-binaries.sh" cluster)
  ours "$(pid_of kube-apiserver)" || { log "no API server runs in $DIR"; exit 1; }
  cd "$DIR"
  local begin=$SECONDS
  restart_component kube-apiserver
  await kube-apiserver 60 kubectl --request-timeout=2s get --raw /readyz
  log "kube-apiserver restarted in $((SECONDS - begin))s"
}

[ $# -eq 2 ] || usage
[ "$1" = down ] && [ ! -d "$2" ] && exit 0
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
PKI=$DIR/pki
case $1 in
  up) up ;;
  down) down ;;
  restart-apiserver) restart_apiserver ;;
  *) usage ;;
esac
