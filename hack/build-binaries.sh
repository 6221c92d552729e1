#!/usr/bin/env bash
# Builds the real binaries tests run against, from the Go module proxy, into a cache
# outside the repository keyed by version, and prints the directory holding them.
#
#   hack/build-binaries.sh control-plane   etcd + kube-apiserver (envtest's KUBEBUILDER_ASSETS)
#   hack/build-binaries.sh cluster         + kube-controller-manager, kube-scheduler, kwok, kubectl
#   hack/build-binaries.sh gitea           Gitea (sqlite), with its options/ and templates/
#
# The build flags are fixed on purpose: changing -trimpath or -ldflags invalidates Go's
# build cache for all of Kubernetes (an 8 minute rebuild on 2 cores).
set -euo pipefail

K8S_VERSION=v1.37.2
K8S_STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
GITEA_VERSION=v1.26.0

CACHE=${KUDOD_CACHE:-$HOME/.cache/kudod}
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

log() { echo "build-binaries: $*" >&2; }

# with_lock DIR CMD... serialises builds of one directory across concurrent make/test runs.
with_lock() {
  local dir=$1; shift
  mkdir -p "$dir"
  exec {fd}>"$dir/.lock"
  flock "$fd"
  "$@"
  exec {fd}>&-
}

k8s_wrapper() {
  local w=$CACHE/src/k8sbuild-$K8S_VERSION
  if [ -f "$w/.ready" ]; then echo "$w"; return; fi
  log "preparing wrapper module for k8s.io/kubernetes $K8S_VERSION"
  rm -rf "$w"; mkdir -p "$w"
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "module example.com/k8sbuild"
    echo "go 1.26.0"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\t\1 => \1 '"$K8S_STAGING_VERSION"'#p' "$modfile"
    echo ")"
  } > "$w/go.mod"
  cat > "$w/main.go" <<'GO'
package main

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
	_ "k8s.io/kubectl/pkg/cmd"
)

func main() {}
GO
  (cd "$w" && go mod tidy >&2)
  touch "$w/.ready"
  echo "$w"
}

build_k8s() { # build_k8s BIN NAME...
  local bin=$1; shift
  local w; w=$(k8s_wrapper)
  for name in "$@"; do
    [ -x "$bin/$name" ] && continue
    log "building $name $K8S_VERSION (minutes when cold)"
    local pkg=k8s.io/kubernetes/cmd/$name
    (cd "$w" && go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" \
      -o "$bin/$name.tmp" "$pkg")
    mv "$bin/$name.tmp" "$bin/$name"
  done
}

build_etcd() { # build_etcd BIN
  local bin=$1
  [ -x "$bin/etcd" ] && return
  local w=$CACHE/src/etcdbuild-$ETCD_VERSION
  log "building etcd $ETCD_VERSION"
  rm -rf "$w"; mkdir -p "$w"
  printf 'module example.com/etcdbuild\ngo 1.26.0\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$w/go.mod"
  cat > "$w/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$w" && go mod tidy >&2 && go build -ldflags "-s -w" -o "$bin/etcd.tmp" .)
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_kwok() { # build_kwok BIN
  local bin=$1
  [ -x "$bin/kwok" ] && [ -d "$bin/kwok-stage" ] && return
  log "building kwok $KWOK_VERSION"
  local tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$tmp/kwok" "$bin/kwok"; rmdir "$tmp"
  # kwok's default stages (what kwokctl uses): copy them beside the binary.
  local dir; dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  rm -rf "$bin/kwok-stage"; mkdir -p "$bin/kwok-stage"
  cp -r "$dir/kustomize/stage/." "$bin/kwok-stage/"
  chmod -R u+w "$bin/kwok-stage"
}

control_plane() {
  local bin=$CACHE/k8s-$K8S_VERSION
  build_etcd "$bin"
  build_k8s "$bin" kube-apiserver
  echo "$bin"
}

cluster() {
  local bin=$CACHE/k8s-$K8S_VERSION
  build_etcd "$bin"
  build_k8s "$bin" kube-apiserver kube-controller-manager kube-scheduler kubectl
  build_kwok "$bin"
  echo "$bin"
}

gitea() {
  local bin=$CACHE/gitea-$GITEA_VERSION
  if [ ! -x "$bin/gitea" ]; then
    local w=$CACHE/src/giteabuild-$GITEA_VERSION
    log "building gitea $GITEA_VERSION (about 8 minutes when cold)"
    rm -rf "$w"; mkdir -p "$w"
    cat > "$w/go.mod" <<MOD
module example.com/giteabuild
go 1.26.4
require code.gitea.io/gitea $GITEA_VERSION
replace github.com/jaytaylor/html2text => github.com/Necoro/html2text v0.0.0-20250804200300-7bf1ce1c7347
replace github.com/nektos/act => gitea.com/gitea/act v0.261.10
replace github.com/urfave/cli/v3 => github.com/urfave/cli/v3 v3.4.1
replace go.yaml.in/yaml/v4 => go.yaml.in/yaml/v4 v4.0.0-rc.3
replace github.com/Azure/azure-sdk-for-go/sdk/azcore => github.com/Azure/azure-sdk-for-go/sdk/azcore v1.19.0
replace github.com/Azure/azure-sdk-for-go/sdk/storage/azblob => github.com/Azure/azure-sdk-for-go/sdk/storage/azblob v1.6.2
replace github.com/microsoft/go-mssqldb => github.com/microsoft/go-mssqldb v1.9.7
MOD
    printf 'package main\n\nimport _ "code.gitea.io/gitea"\n\nfunc main() {}\n' > "$w/main.go"
    (cd "$w" && go mod tidy >&2 && CGO_ENABLED=1 go build -tags 'sqlite sqlite_unlock_notify' -ldflags "-s -w" -o "$bin/gitea.tmp" code.gitea.io/gitea)
    local dir; dir=$(cd "$w" && go list -m -f '{{.Dir}}' code.gitea.io/gitea)
    rm -rf "$bin/options" "$bin/templates"
    cp -r "$dir/options" "$dir/templates" "$bin/"
    chmod -R u+w "$bin/options" "$bin/templates"
    mv "$bin/gitea.tmp" "$bin/gitea"
  fi
  echo "$bin"
}

case "${1:-}" in
  control-plane) with_lock "$CACHE/k8s-$K8S_VERSION" control_plane ;;
  cluster) with_lock "$CACHE/k8s-$K8S_VERSION" cluster ;;
  gitea) with_lock "$CACHE/gitea-$GITEA_VERSION" gitea ;;
  *) echo "usage: $0 control-plane|cluster|gitea" >&2; exit 2 ;;
esac
