# syntax=docker/dockerfile:1
# kudod's image: a static binary on distroless/static, running as a non-root user with no
# shell. The binary is built exactly as `make build` builds bin/kudod: CGO_ENABLED=0,
# -trimpath, -ldflags '-s -w -X ...app.version=$(VERSION)' (deploy/dockerfile_test.go checks
# that the two agree).
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t ghcr.io/kudod-dev/kudod:dev .

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X github.com/kudod-dev/kudod/cmd/kudod/app.version=${VERSION}" -o /out/kudod ./cmd/kudod

# CA certificates and /etc/passwd with nonroot (65532); tzdata is also embedded in the binary
# (cmd/kudod imports time/tzdata) for schedules' time zones.
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/kudod /kudod
USER 65532:65532
ENTRYPOINT ["/kudod"]
CMD ["run", "--config", "/etc/kudod/kudod.yaml"]
