# syntax=docker/dockerfile:1
#
# The pdp image: pdp (the decision point, the entrypoint) and pdpctl (the
# admin command), static binaries on distroless, running as the nonroot user
# (65532). The Helm chart in charts/pdp deploys it. `make image` builds the
# same image without Docker (internal/image/image.sh); a test checks both build the
# binaries alike and lay them out alike (/pdp, /pdpctl).
#
#   docker build -t ghcr.io/metalsoft-io/pdp:$(git describe --tags --always) --build-arg VERSION=$(git describe --tags --always) .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ... --push .
#
# Ports: 8181 decisions (--addr), 9181 health and metrics (--admin-addr).

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change reuses the module layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./cmd/pdp ./cmd/pdpctl

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="pdp" \
      org.opencontainers.image.description="Policy decision point for the MetalSoft / MetalCloud authorization model" \
      org.opencontainers.image.source="https://github.com/metalsoft-io/pdp" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/pdp /out/pdpctl /
COPY examples/metalcloud.yaml /examples/
USER nonroot:nonroot
# pdp listens on loopback by default; in a container, every interface of
# the container's own network namespace.
ENV PDP_ADDR=:8181 PDP_ADMIN_ADDR=:9181
EXPOSE 8181 9181
ENTRYPOINT ["/pdp"]
