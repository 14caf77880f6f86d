#!/usr/bin/env bash
# build.sh builds the real components regcred is tested against, from the Go
# module proxy only, and caches them by version outside the clone:
#
#   etcd, kube-apiserver, kube-controller-manager, registry (distribution), helm
#
# and, only when asked for, kubelet-judge: the kubelet's credential lookup as
# a command (test/kubeletjudge), to check which credential the kubelet tries.
#
# Usage: test/testbed/build.sh [component...]
#   components: etcd kube registry helm (the default), kubelet-judge
# Prints the directory holding the binaries on its last line.
set -euo pipefail

ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
HELM_VERSION=${HELM_VERSION:-v3.22.0}

cache=${REGCRED_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/regcred/testbed}
# Each component is cached by its own version; bin links them together.
bin="$cache/bin-etcd-$ETCD_VERSION-kube-$KUBE_VERSION-registry-$REGISTRY_VERSION-helm-$HELM_VERSION"
mkdir -p "$bin" "$cache/etcd-$ETCD_VERSION" "$cache/kube-$KUBE_VERSION"

log() { printf 'testbed: %s\n' "$*" >&2; }

# step NAME CMD...: runs one build step, says what it does and how long it took.
step() {
  local name=$1; shift
  local start=$SECONDS
  log "building $name (first time only; cached in $cache)"
  if ! "$@" >"$cache/build.log" 2>&1; then
    log "building $name failed:"; tail -40 "$cache/build.log" >&2; exit 1
  fi
  log "built $name in $((SECONDS - start))s"
}

# link DIR NAME...: makes bin/NAME point at DIR/NAME.
link() { local dir=$1; shift; for n in "$@"; do ln -sf "$dir/$n" "$bin/$n"; done; }

build_etcd() {
  local work; work=$(mktemp -d)
  cd "$work"
  go mod init regcred.test/etcd
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy
  go build -trimpath -o "$cache/etcd-$ETCD_VERSION/etcd" .
  cd - >/dev/null; rm -rf "$work"
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The judge is cached by its source too, so that an edit rebuilds it.
judge_src="$here/../kubeletjudge/main.go"
judge_bin="kubelet-judge-$(sha256sum "$judge_src" | cut -c1-12)"

# build_kube BINARY...: builds the named binaries of k8s.io/kubernetes
# (kube-apiserver, kube-controller-manager, kubelet-judge) in one module.
build_kube() {
  local work; work=$(mktemp -d)
  cd "$work"
  go mod init regcred.test/kube
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  # Every staging module that k8s.io/kubernetes replaces with ./staging/...
  # is published as v0.<minor>.<patch> of the same module.
  local staging="v0.${KUBE_VERSION#v1.}"
  local mods
  mods=$(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*#\1#p' "$gomod")
  for m in $mods; do go mod edit "-replace=$m=$m@$staging"; done
  local b
  for b in "$@"; do
    mkdir -p "$b"
    case $b in
      kube-apiserver) kube_main 'k8s.io/kubernetes/cmd/kube-apiserver/app' 'app.NewAPIServerCommand()' > "$b/main.go" ;;
      kube-controller-manager) kube_main 'k8s.io/kubernetes/cmd/kube-controller-manager/app' 'app.NewControllerManagerCommand()' > "$b/main.go" ;;
      "$judge_bin") sed '1{/^\/\/go:build ignore$/d}' "$judge_src" > "$b/main.go" ;;
    esac
  done
  go get "k8s.io/kubernetes@$KUBE_VERSION"
  go mod tidy
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ld="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  for b in "$@"; do
    go build -trimpath -ldflags "$ld" -o "$cache/kube-$KUBE_VERSION/$b" "./$b"
  done
  cd - >/dev/null; rm -rf "$work"
}

# kube_main PACKAGE COMMAND: a main that runs a kube command.
kube_main() {
  cat <<GO
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"$1"
)

func main() { os.Exit(cli.Run($2)) }
GO
}

build_registry() { GOBIN="$cache/registry-$REGISTRY_VERSION" go install -trimpath "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"; }
build_helm() { GOBIN="$cache/helm-$HELM_VERSION" go install -trimpath "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; }

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(etcd kube registry helm)
for c in "${want[@]}"; do
  case $c in
    etcd)
      d="$cache/etcd-$ETCD_VERSION"
      [ -x "$d/etcd" ] || step "etcd $ETCD_VERSION (~2 min)" build_etcd
      link "$d" etcd ;;
    kube)
      d="$cache/kube-$KUBE_VERSION"
      missing=()
      for b in kube-apiserver kube-controller-manager; do [ -x "$d/$b" ] || missing+=("$b"); done
      [ ${#missing[@]} -eq 0 ] || step "${missing[*]} $KUBE_VERSION (~10-15 min)" build_kube "${missing[@]}"
      link "$d" kube-apiserver kube-controller-manager ;;
    kubelet-judge)
      d="$cache/kube-$KUBE_VERSION"
      [ -x "$d/$judge_bin" ] ||
        step "kubelet-judge $KUBE_VERSION (~2 min, more if modules must be downloaded; seconds once kube is built)" build_kube "$judge_bin"
      ln -sf "$d/$judge_bin" "$bin/kubelet-judge" ;;
    registry)
      d="$cache/registry-$REGISTRY_VERSION"
      [ -x "$d/registry" ] || step "registry (distribution) $REGISTRY_VERSION (~2 min)" build_registry
      link "$d" registry ;;
    helm)
      d="$cache/helm-$HELM_VERSION"
      [ -x "$d/helm" ] || step "helm $HELM_VERSION (~2 min)" build_helm
      link "$d" helm ;;
    *) log "unknown component $c"; exit 2 ;;
  esac
done
echo "$bin"
