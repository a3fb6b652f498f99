# Real third-party tools for medic's tests, built by the project's own scripts
# (test/tools/) from pinned sources via the Go module proxy, into the ignored
# folder $(TOOLS_DIR). Nothing needs to be installed by hand. Include this
# fragment from the top-level Makefile:
#
#   include Makefile.tools.mk
#
# Targets: tools (build all), tools-clean, test-realam, test-weaviate, test-ollama,
# test-kubeapi, test-deploy.

MEDIC_TOOLS_MK := $(abspath $(lastword $(MAKEFILE_LIST)))
MEDIC_REPO_ROOT := $(patsubst %/,%,$(dir $(MEDIC_TOOLS_MK)))

# $(MEDIC_TOOLS_DIR) from the environment wins, as it does for the scripts and
# for test/toolbin; else the per-user cache (XDG_CACHE_HOME or ~/.cache), so
# every clone on a machine (CI clones anew) reuses the same builds; else .tools
# in the clone. test/tools/tools.sh dir prints the same choice.
TOOLS_DIR ?= $(or $(MEDIC_TOOLS_DIR),$(shell bash '$(MEDIC_REPO_ROOT)/test/tools/tools.sh' dir))
TOOLS_DIR_ABS := $(abspath $(if $(filter /%,$(TOOLS_DIR)),$(TOOLS_DIR),$(MEDIC_REPO_ROOT)/$(TOOLS_DIR)))

ALERTMANAGER_VERSION := v0.34.2
ALERTMANAGER := $(TOOLS_DIR)/alertmanager-$(ALERTMANAGER_VERSION)/alertmanager
AMTOOL := $(TOOLS_DIR)/alertmanager-$(ALERTMANAGER_VERSION)/amtool

.PHONY: tools tools-clean test-realam

# One script run builds both binaries (a grouped target, GNU make >= 4.3); the
# script is idempotent and takes a lock against concurrent builders.
$(ALERTMANAGER) $(AMTOOL) &:
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-alertmanager.sh' >/dev/null

# Weaviate and Ollama for the knowledge-base and AI tests (test/weaviate,
# test/ollama); each script is idempotent and locked like the one above.
WEAVIATE_VERSION := v1.39.3
WEAVIATE := $(TOOLS_DIR)/weaviate-$(WEAVIATE_VERSION)/weaviate-server
OLLAMA_VERSION := v0.17.4
OLLAMA := $(TOOLS_DIR)/ollama-$(OLLAMA_VERSION)/ollama

.PHONY: test-weaviate test-ollama

$(WEAVIATE):
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-weaviate.sh' >/dev/null

$(OLLAMA):
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-ollama.sh' >/dev/null

test-weaviate: $(WEAVIATE)
	cd '$(MEDIC_REPO_ROOT)' && MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' go test -count=1 ./test/weaviate/

test-ollama: $(OLLAMA)
	cd '$(MEDIC_REPO_ROOT)' && MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' go test -count=1 ./test/ollama/

# A real kube-apiserver and etcd for test/kubeapi, built from the wrapper
# module test/tools/kube (about 5 minutes on 2 cores the first time).
KUBE_VERSION := v1.36.3
KUBE_APISERVER := $(TOOLS_DIR)/kube-$(KUBE_VERSION)/kube-apiserver
KUBE_ETCD := $(TOOLS_DIR)/kube-$(KUBE_VERSION)/etcd

.PHONY: test-kubeapi

$(KUBE_APISERVER) $(KUBE_ETCD) &:
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-kube.sh' >/dev/null

test-kubeapi: $(KUBE_APISERVER) $(KUBE_ETCD)
	cd '$(MEDIC_REPO_ROOT)' && MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' go test -count=1 ./test/kubeapi/

# Helm for the chart (deploy/helm/medic): lint, golden files, make manifests.
# Built from its Go module by test/tools/build-helm.sh (about 2 minutes).
HELM_VERSION := v3.22.0
HELM := $(TOOLS_DIR)/helm-$(HELM_VERSION)/helm

.PHONY: test-deploy

$(HELM):
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' HELM_VERSION='$(HELM_VERSION)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-helm.sh' >/dev/null

test-deploy: $(HELM) $(KUBE_APISERVER) $(KUBE_ETCD)
	cd '$(MEDIC_REPO_ROOT)' && MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' go test -count=1 ./test/deploy/

# GoReleaser, for `make release-check` (goreleaser check on .goreleaser.yaml).
GORELEASER_VERSION := v2.17.0
GORELEASER := $(TOOLS_DIR)/goreleaser-$(GORELEASER_VERSION)/goreleaser

.PHONY: release-check

$(GORELEASER):
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' GORELEASER_VERSION='$(GORELEASER_VERSION)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-goreleaser.sh' >/dev/null

release-check: $(GORELEASER)
	cd '$(MEDIC_REPO_ROOT)' && '$(GORELEASER)' check

tools-clean:
	rm -rf '$(TOOLS_DIR_ABS)'

# The Go helper would build Alertmanager itself when missing; depending on
# `tools` just makes the slow step visible.
test-realam: tools
	cd '$(MEDIC_REPO_ROOT)' && MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' go test ./test/realam/

# govulncheck and an offline Go vulnerability database built from the module
# proxy's golang.org/x/vulndb (test/tools/build-vulndb.sh), for `make vulncheck`.
VULN_VERSION := v1.9.0
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_DIR := $(TOOLS_DIR)/vulndb-$(VULN_VERSION)-$(lastword $(subst -, ,$(VULNDB_VERSION)))
GOVULNCHECK := $(VULNDB_DIR)/govulncheck

$(GOVULNCHECK):
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' VULN_VERSION='$(VULN_VERSION)' VULNDB_VERSION='$(VULNDB_VERSION)' \
		bash '$(MEDIC_REPO_ROOT)/test/tools/build-vulndb.sh' >/dev/null

# nats-server processes for the JetStream cluster tests (test/natscluster,
# test/e2e TestClusterKillNodeAndReplica), built inside medic's module from
# the version go.mod pins (test/tools/build-nats.sh refuses another).
NATS_VERSION := v2.15.2
NATS_SERVER := $(TOOLS_DIR)/nats-server-$(NATS_VERSION)/nats-server

$(NATS_SERVER):
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' NATS_VERSION='$(NATS_VERSION)' bash '$(MEDIC_REPO_ROOT)/test/tools/build-nats.sh' >/dev/null

# Every tool. make -j2 starts them in this order, the longest build first
# (Ollama: cgo compiles llama.cpp's C/C++ files one after another, a single
# long chain; then kube-apiserver and Weaviate), so that the last build to
# finish on a cold machine is a short one rather than one that started late.
tools: $(OLLAMA) $(KUBE_APISERVER) $(KUBE_ETCD) $(WEAVIATE) $(GORELEASER) $(HELM) \
	$(ALERTMANAGER) $(AMTOOL) $(GOVULNCHECK) $(NATS_SERVER)
