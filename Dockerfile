# syntax=docker/dockerfile:1
#
# medic's image: one static binary on distroless, running as the nonroot user
# (65532). The built-in playbooks (playbooks/builtin) and the default
# knowledge base (knowledge/runbooks, 108 kube-prometheus runbooks) are
# embedded in the binary with go:embed, so nothing else is copied.
#
#   docker build -t medic:dev --build-arg VERSION=$(git describe --tags --always) .
#
# The build command is `make build`'s: test/deploy runs it outside Docker and
# checks that the binary is static.

ARG GO_IMAGE=golang:1.26.10-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X github.com/medichq/medic/internal/version.Version=${VERSION}" \
      -o /out/medic ./cmd/medic \
 && /out/medic version \
 && mkdir -p /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/medic /medic
# The data directory (JetStream, knowledge base, Git clones, findings files),
# owned by the nonroot user; in Kubernetes a volume is mounted over it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/medic
WORKDIR /var/lib/medic
USER 65532:65532
ENV MEDIC_HTTP_ADDR=:8080 \
    MEDIC_DATA_DIR=/var/lib/medic
EXPOSE 8080
ENTRYPOINT ["/medic", "serve"]
