# syntax=docker/dockerfile:1
# regcred's image, for those who build with Docker: `make docker-image`.
# The reference build is `make image` (Go alone, no base image pulled,
# reproducible: same commit, same digest; see pkg/ociimage). This builds
# the same thing: the same static binary (the Makefile's GOBUILD flags),
# the same CA bundle at /etc/ssl/certs/ca-certificates.crt, nothing else on
# an empty base, run as 65532:65532, with the same labels. The layer's
# bytes, and so the digest, are Docker's own.

# Build: a static binary, no cgo, no paths or VCS data of this machine,
# version stamped; and the CA bundle, from the same Go module (x509roots)
# the binary embeds as its fallback.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY pkg ./pkg
ARG VERSION=dev
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH:-amd64} GOAMD64=v1 GOARM64=v8.0 \
      go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/regcred/regcred/pkg/cli.Version=${VERSION}" \
      -o /out/regcred ./cmd/regcred \
 && go run ./cmd/regcred-image ca-bundle > /out/ca-certificates.crt

# Run: an empty base, the binary and the CA bundle, non-root, no shell.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
# The commit's time: BuildKit also dates the image config with it.
ARG SOURCE_DATE_EPOCH
ARG CREATED=1970-01-01T00:00:00Z
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/regcred /regcred
USER 65532:65532
LABEL org.opencontainers.image.title="regcred" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/regcred/regcred" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
ENTRYPOINT ["/regcred"]
