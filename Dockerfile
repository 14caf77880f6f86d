# syntax=docker/dockerfile:1
# Build: a static binary, no cgo, reproducible paths, version stamped.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY pkg ./pkg
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X github.com/regcred/regcred/pkg/cli.Version=${VERSION}" \
      -o /out/regcred ./cmd/regcred

# Run: distroless, non-root, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/regcred /regcred
USER 65532:65532
ENTRYPOINT ["/regcred"]
