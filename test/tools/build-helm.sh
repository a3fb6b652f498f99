#!/usr/bin/env bash
# Builds Helm for medic's chart tests and `make manifests`, from the Go module
# proxy only: nothing is installed by hand and nothing outside the tools dir is
# touched (besides the Go module and build caches).
#
#   test/tools/build-helm.sh        # prints the directory holding helm
#
# Result: <tools>/helm-<version>/helm, where <tools> is $MEDIC_TOOLS_DIR when
# set, else the per-user tools cache (lib.sh) (whatever the caller's cwd).
# Idempotent: when the binary exists it only prints the directory; concurrent
# callers serialise on a lock file and the binary appears by an atomic rename.
# Progress goes to stderr; stdout carries only the directory.
#
# How: helm.sh/helm/v3 has no replace directives, so `go install
# helm.sh/helm/v3/cmd/helm@<version>` builds it outside any module, with the
# version stamping of upstream's Makefile (so `helm version` and the default
# Capabilities.KubeVersion match a release build). Cold build: about 1-2
# minutes on 2 cores.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Upstream derives these from its k8s.io/client-go (v0.37 → Kubernetes 1.37).
HELM_K8S_MAJOR="${HELM_K8S_MAJOR:-1}"
HELM_K8S_MINOR="${HELM_K8S_MINOR:-37}"
MODULE="helm.sh/helm/v3"

log() { printf 'build-helm: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=lib.sh
source "${script_dir}/lib.sh"
tool_begin helm "${HELM_VERSION}" helm
v="helm.sh/helm/v3/internal/version"
ldflags="-s -w -X ${v}.version=${HELM_VERSION} -X ${v}.metadata= -X ${v}.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
	ldflags+=" -X ${p}.k8sVersionMajor=${HELM_K8S_MAJOR} -X ${p}.k8sVersionMinor=${HELM_K8S_MINOR}"
done
GO_INSTALL_LDFLAGS="${ldflags}" go_install_tool "${MODULE}/cmd/helm@${HELM_VERSION}" helm "1-2 minutes"
