#!/usr/bin/env bash
# make demo: a simulated cluster, a local git repository made from examples/, and kudod
# reconciling it — plans complete, then a parameter change runs the update plan.
#
#   hack/demo.sh up     start everything (state in .demo/), show the plans
#   hack/demo.sh down   stop everything
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.demo
kudod=$root/bin/kudod

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

down() {
  if [ -f "$state/kudod.pid" ]; then
    kill "$(cat "$state/kudod.pid")" 2>/dev/null || true
    rm -f "$state/kudod.pid"
  fi
  "$root/hack/local-cluster.sh" down "$state/cluster" >/dev/null 2>&1 || true
}

up() {
  down
  rm -rf "$state"
  mkdir -p "$state"

  say "Starting a simulated cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
  "$root/hack/local-cluster.sh" up "$state/cluster" >/dev/null
  export KUBECONFIG=$state/cluster/kubeconfig

  say "Making a git repository from examples/"
  git init -q -b main "$state/repo"
  cp -r "$root/examples/operators" "$root/examples/instances" "$state/repo/"
  git -C "$state/repo" add -A
  git -C "$state/repo" -c user.name=demo -c user.email=demo@kudod.dev commit -qm "webapp and two instances"
  git -C "$state/repo" log --oneline

  cat > "$state/kudod.yaml" <<YAML
repositories:
  - name: demo
    url: file://$state/repo
    branch: main
    interval: 2s
cluster:
  kubeconfig: $state/cluster/kubeconfig
YAML
  say "Starting kudod (log: .demo/kudod.log)"
  "$kudod" run --config "$state/kudod.yaml" --leader-elect=false --log-format=text \
    --metrics-bind-address=0 --health-probe-bind-address=0 --webhook-bind-address=0 \
    --cache-dir "$state/cache" >"$state/kudod.log" 2>&1 &
  echo $! >"$state/kudod.pid"

  say "Waiting for the deploy plans (kudod status --watch)"
  wait_instances 2
  "$kudod" status -A --watch
  kubectl_get

  say "Changing a parameter in git: web's GREETING and REPLICAS"
  sed -i 's/REPLICAS: 2/REPLICAS: 3/; s/GREETING: Hello from kudod/GREETING: Hello again/' "$state/repo/instances/demo/web.yaml"
  git -C "$state/repo" -c user.name=demo -c user.email=demo@kudod.dev commit -qam "web: three replicas, a new greeting"
  echo "committed $(git -C "$state/repo" rev-parse --short HEAD)"
  sleep 3 # one poll interval: the daemon sees the commit
  "$kudod" status -A --watch
  kubectl_get

  say "Done. Try:"
  cat <<TXT
  export KUBECONFIG=$state/cluster/kubeconfig
  $kudod status -A
  $kudod ui --open     # the web UI on http://127.0.0.1:8090/ (read-only)
  $kudod plan --repo $state/repo --from HEAD~1 --to HEAD
  $kudod trigger web backup -n demo && $kudod status web -n demo --watch
  (edit $state/repo/instances/demo/*.yaml and commit: kudod picks it up within 2s)
  make demo-down    # stop the cluster and kudod
TXT
}

wait_instances() {
  for _ in $(seq 1 120); do
    n=$("$kudod" status -A -o json 2>/dev/null | grep -c '"name": "deploy"' || true)
    [ "$n" -ge "$1" ] && return 0
    sleep 1
  done
  echo "instances did not appear; see $state/kudod.log" >&2
  tail -20 "$state/kudod.log" >&2
  exit 1
}

kubectl_get() {
  local kubectl
  kubectl=$("$root/hack/build-binaries.sh" cluster)/kubectl
  [ -x "$kubectl" ] || return 0
  KUBECACHEDIR=$state/cluster/kubecache "$kubectl" get instances -A
  KUBECACHEDIR=$state/cluster/kubecache "$kubectl" get deployments,configmaps,services -n demo -l heritage=kudo
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
