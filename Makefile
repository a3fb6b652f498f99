# medic — the two commands a newcomer needs:
#   make run    run the service with embedded defaults (in-process NATS, built-in playbooks, stdout + file sinks)
#   make test   run every test; CI (.ci/run) calls exactly this
SHELL := bash
GO    ?= go
# go.mod's toolchain line (go1.26.10, the patched standard library) is used
# even where the installed Go's go.env says GOTOOLCHAIN=local.
export GOTOOLCHAIN ?= auto
PKGS  ?= ./...
FUZZTIME ?= 30s
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/medichq/medic/internal/version.Version=$(VERSION)

include Makefile.tools.mk

.PHONY: run build image print-image test test-short vet fmt-check fuzz bench clean

# Built then run through hack/foreground.sh, so that Ctrl-C reaches medic
# alone (make exits 0 after the graceful shutdown) and SIGTERM to make drains
# medic rather than leaving it running.
run:
	@$(GO) build -o bin/medic ./cmd/medic
	@hack/foreground.sh bin/medic serve

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/medic ./cmd/medic

# The container image, as a tarball any runtime loads (docker/podman load,
# kind load image-archive, k3d image import, ctr images import). Built from
# bin/medic by deploy/image without a Docker engine; its default tag is what
# the Helm chart runs by default (image.repository:appVersion).
IMAGE_REPO ?= medic
IMAGE_TAG  ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' deploy/helm/medic/Chart.yaml)
IMAGE      ?= $(IMAGE_REPO):$(IMAGE_TAG)

image: build
	$(GO) run ./deploy/image/cmd/mkimage -binary bin/medic -version '$(VERSION)' \
		-revision "$$(git rev-parse HEAD 2>/dev/null)" -tag '$(IMAGE)' -o bin/medic-image.tar

print-image:
	@echo '$(IMAGE)'

# Every check and test; hack/test.sh says in what order and why (the real
# servers the tests use are built by test/tools/ into a per-user cache while
# the unit tests run; see Makefile.tools.mk). Progress at least every 30 s.
test:
	@GO='$(GO)' PKGS='$(PKGS)' bash hack/test.sh

# Unit tests only: no real third-party servers.
test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Each fuzz target for $(FUZZTIME).
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./sources/alertmanager
	$(GO) test -run='^$$' -fuzz=FuzzFingerprint -fuzztime=$(FUZZTIME) ./sources/alertmanager
	$(GO) test -run='^$$' -fuzz=FuzzMarshalEvent -fuzztime=$(FUZZTIME) ./event
	$(GO) test -run='^$$' -fuzz=FuzzLoadPlaybooks -fuzztime=$(FUZZTIME) ./playbooks
	$(GO) test -run='^$$' -fuzz=FuzzRenderWithinLimits -fuzztime=$(FUZZTIME) ./sinks/slack

# Throughput, latency and memory figures; see docs/benchmarks.md.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)
	$(GO) run ./test/bench

# Knowledge-base retrieval quality: recall@1, recall@3 and MRR of the right
# runbook for every kube-prometheus alert that has one (lexical, and hybrid
# when ai.embedding_model is configured); see docs/benchmarks.md.
.PHONY: eval-rag
eval-rag:
	$(GO) run ./test/evalrag/cmd/evalrag

# deploy/manifests/medic.yaml is the Helm chart rendered with its defaults,
# for people who do not use Helm; manifests-check (part of make test) renders
# it to a temporary file and fails, with the diff, when it is stale.
.PHONY: manifests manifests-check docs-values vulncheck
manifests: $(HELM)
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' $(GO) run ./test/deploy/rendermanifests

# govulncheck over the whole module against the offline database (part of
# make test): fails when medic calls a vulnerable function that
# test/vulncheck/exceptions.yaml does not accept (with a reason and a review
# date); vulnerabilities in code that is never called are not findings.
vulncheck: $(GOVULNCHECK)
	$(GO) run ./test/vulncheck -govulncheck '$(GOVULNCHECK)' -db 'file://$(abspath $(VULNDB_DIR))/db' ./...

manifests-check: $(HELM)
	MEDIC_TOOLS_DIR='$(TOOLS_DIR_ABS)' $(GO) run ./test/deploy/rendermanifests -check

# README's table of the chart's values, from the comments in values.yaml.
docs-values:
	$(GO) run ./test/deploy/valuesdoc

clean:
	rm -rf bin data
