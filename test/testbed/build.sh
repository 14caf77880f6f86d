#!/usr/bin/env bash
# build.sh builds the real components regcred is tested against, from the Go
# module proxy only, and caches them by version outside the clone:
#
#   etcd, kube-apiserver, kube-controller-manager, registry (distribution), helm
#
# and, only when asked for, kubelet-judge: the kubelet's credential lookup as
# a command (test/kubeletjudge), to check which credential the kubelet tries;
# and ("node") what a real node needs:
#
#   kubelet, kube-scheduler, containerd (with its runc shim and ctr), and the
#   Debian packages runc, containernetworking-plugins, iptables and iproute2
#
# Usage: test/testbed/build.sh [component...]
#   components: etcd kube registry helm kubelet-judge kubelet kube-scheduler
#               containerd node-packages, or node (= kubelet kube-scheduler
#               containerd node-packages); default: etcd kube registry helm
# Prints the directory holding the binaries on its last line.
set -euo pipefail

ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# containerd 2.2 reads config version 3 as is (2.3 and later migrate it).
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.2.9}
NODE_PACKAGES=(runc containernetworking-plugins iptables iproute2)

cache=${REGCRED_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/regcred/testbed}
# Each component is cached by its own version; bin links them together.
bin="$cache/bin-etcd-$ETCD_VERSION-kube-$KUBE_VERSION-registry-$REGISTRY_VERSION-helm-$HELM_VERSION-containerd-$CONTAINERD_VERSION"
mkdir -p "$bin" "$cache/etcd-$ETCD_VERSION" "$cache/kube-$KUBE_VERSION"

# One log per run: builds from several clones may run at once.
buildlog=$(mktemp "$cache/build.XXXXXX.log")
# Kept when a step fails.
trap '[ $? -ne 0 ] || rm -f "$buildlog"' EXIT

log() { printf 'testbed: %s\n' "$*" >&2; }

# retry CMD...: runs a command that downloads (from the Go module proxy, or
# Debian's mirrors) up to 3 times, so that a network hiccup does not fail
# the build.
retry() {
  local n
  for n in 1 2 3; do
    if "$@"; then return 0; fi
    [ "$n" = 3 ] || { log "retrying in $((n * 10))s: $*"; sleep $((n * 10)); }
  done
  return 1
}

# step NAME CMD...: runs one build step, says what it does and how long it took.
step() {
  local name=$1; shift
  local start=$SECONDS
  log "building $name (first time only; cached in $cache)"
  # In a subshell outside any condition: bash ignores set -e in a function
  # called from an if, ||, && or !, and a failed command would go unseen.
  local rc=0
  set +e
  ( set -e; "$@" ) >"$buildlog" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    log "building $name failed (log: $buildlog):"; tail -40 "$buildlog" >&2; exit 1
  fi
  log "built $name in $((SECONDS - start))s"
}

# link DIR NAME...: makes bin/NAME point at DIR/NAME, which a step built.
link() {
  local dir=$1 n; shift
  for n in "$@"; do
    [ -x "$dir/$n" ] || { log "$dir/$n is missing: its build did not make it (see the log above)"; exit 1; }
    ln -sfn "$dir/$n" "$bin/$n"
  done
}

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
  retry go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  retry go mod tidy
  go build -trimpath -o "$cache/etcd-$ETCD_VERSION/etcd" .
  cd - >/dev/null; rm -rf "$work"
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The judge is cached by its source too, so that an edit rebuilds it.
judge_src="$here/../kubeletjudge/main.go"
judge_bin="kubelet-judge-$(sha256sum "$judge_src" | cut -c1-12)"

# kube_main NAME: prints the main package of one k8s.io/kubernetes command.
kube_main() {
  local imports='"os"' run
  case $1 in
    kube-apiserver) run='app.NewAPIServerCommand()' ;;
    kube-controller-manager) run='app.NewControllerManagerCommand()' ;;
    kube-scheduler) run='app.NewSchedulerCommand()' ;;
    kubelet) imports='"context"
	"os"'; run='app.NewKubeletCommand(context.Background())' ;;
  esac
  cat <<GO
package main

import (
	$imports

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/$1/app"
)

func main() { os.Exit(cli.Run($run)) }
GO
}

# build_kube NAME...: builds the named commands of k8s.io/kubernetes.
build_kube() {
  local work; work=$(mktemp -d)
  cd "$work"
  go mod init regcred.test/kube
  local gomod
  gomod=$(retry go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  # Every staging module that k8s.io/kubernetes replaces with ./staging/...
  # is published as v0.<minor>.<patch> of the same module.
  local staging="v0.${KUBE_VERSION#v1.}"
  local mods
  mods=$(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*#\1#p' "$gomod")
  for m in $mods; do go mod edit "-replace=$m=$m@$staging"; done
  local c
  for c in "$@"; do
    mkdir -p "$c"
    if [ "$c" = "$judge_bin" ]; then
      sed '1{/^\/\/go:build ignore$/d}' "$judge_src" > "$c/main.go"
    else
      kube_main "$c" > "$c/main.go"
    fi
  done
  retry go get "k8s.io/kubernetes@$KUBE_VERSION"
  retry go mod tidy
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ld="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  for c in "$@"; do go build -trimpath -ldflags "$ld" -o "$cache/kube-$KUBE_VERSION/$c" "./$c"; done
  cd - >/dev/null; rm -rf "$work"
}

build_registry() { GOBIN="$cache/registry-$REGISTRY_VERSION" retry go install -trimpath "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"; }
build_helm() { GOBIN="$cache/helm-$HELM_VERSION" retry go install -trimpath "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; }

build_containerd() {
  local m=github.com/containerd/containerd/v2
  GOBIN="$cache/containerd-$CONTAINERD_VERSION" retry go install -trimpath \
    -tags "no_btrfs no_devmapper no_zfs no_aufs" \
    -ldflags "-X $m/version.Version=$CONTAINERD_VERSION" \
    "$m/cmd/containerd@$CONTAINERD_VERSION" \
    "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
    "$m/cmd/ctr@$CONTAINERD_VERSION"
}

# missing_packages: prints the node packages that are not installed.
missing_packages() {
  local p
  for p in "${NODE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

install_packages() {
  retry apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

node_packages() {
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    log "node-packages: no dpkg/apt-get here; install ${NODE_PACKAGES[*]} by hand"; exit 1
  fi
  local missing
  mapfile -t missing < <(missing_packages)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      log "node-packages: installing ${missing[*]} needs root"; exit 1
    fi
    local start=$SECONDS
    log "installing node packages ${missing[*]} with apt-get (~15 s, once per machine)"
    if ! install_packages "${missing[@]}" >"$buildlog" 2>&1; then
      log "installing node packages failed:"; tail -40 "$buildlog" >&2; exit 1
    fi
    log "installed node packages in $((SECONDS - start))s"
  fi
  local cni
  for cni in /usr/lib/cni /opt/cni/bin; do
    [ -x "$cni/bridge" ] && break
  done
  [ -x "$cni/bridge" ] || { log "node-packages: no CNI bridge plugin in /usr/lib/cni or /opt/cni/bin"; exit 1; }
  ln -sfn "$cni" "$bin/cni"
  ln -sfn "$(command -v runc || echo /usr/sbin/runc)" "$bin/runc"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(etcd kube registry helm)
expanded=()
for c in "${want[@]}"; do
  case $c in
    node) expanded+=(kubelet kube-scheduler containerd node-packages) ;;
    *) expanded+=("$c") ;;
  esac
done

# The commands of k8s.io/kubernetes share one throwaway module and the build
# cache: build the missing ones in one step.
kube_dir="$cache/kube-$KUBE_VERSION"
kube_wanted=()
kube_missing=()
for c in "${expanded[@]}"; do
  case $c in
    kube) names=(kube-apiserver kube-controller-manager) ;;
    kubelet | kube-scheduler) names=("$c") ;;
    kubelet-judge) names=("$judge_bin") ;;
    *) continue ;;
  esac
  for n in "${names[@]}"; do
    kube_wanted+=("$n")
    [ -x "$kube_dir/$n" ] || kube_missing+=("$n")
  done
done
if [ ${#kube_missing[@]} -gt 0 ]; then
  step "${kube_missing[*]} $KUBE_VERSION (~10-15 min cold, a few with a warm Go build cache)" build_kube "${kube_missing[@]}"
fi
for n in "${kube_wanted[@]}"; do
  if [ "$n" = "$judge_bin" ]; then
    [ -x "$kube_dir/$n" ] || { log "$kube_dir/$n is missing: its build did not make it"; exit 1; }
    ln -sfn "$kube_dir/$n" "$bin/kubelet-judge"
  else
    link "$kube_dir" "$n"
  fi
done

for c in "${expanded[@]}"; do
  case $c in
    etcd)
      d="$cache/etcd-$ETCD_VERSION"
      if [ ! -x "$d/etcd" ]; then step "etcd $ETCD_VERSION (~2 min)" build_etcd; fi
      link "$d" etcd ;;
    kube | kubelet | kube-scheduler | kubelet-judge) ;;
    registry)
      d="$cache/registry-$REGISTRY_VERSION"
      if [ ! -x "$d/registry" ]; then step "registry (distribution) $REGISTRY_VERSION (~2 min)" build_registry; fi
      link "$d" registry ;;
    helm)
      d="$cache/helm-$HELM_VERSION"
      if [ ! -x "$d/helm" ]; then step "helm $HELM_VERSION (~2 min)" build_helm; fi
      link "$d" helm ;;
    containerd)
      d="$cache/containerd-$CONTAINERD_VERSION"
      if ! { [ -x "$d/containerd" ] && [ -x "$d/containerd-shim-runc-v2" ] && [ -x "$d/ctr" ]; }; then
        step "containerd $CONTAINERD_VERSION (~2 min)" build_containerd
      fi
      link "$d" containerd containerd-shim-runc-v2 ctr ;;
    node-packages) node_packages ;;
    *) log "unknown component $c"; exit 2 ;;
  esac
done
echo "$bin"
