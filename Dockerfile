# dbprobe's container image for users with a registry: Go builds a static
# binary, distroless/static (CA certificates, tzdata, uid 65532) runs it.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t dbprobe .
# Without a registry, `make image-scratch` builds the same final image
# FROM scratch (deploy/container/Containerfile.scratch; a test keeps the two
# final stages identical). docs/deploy.md shows how to run it.
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/dbprobe ./cmd/dbprobe \
 && mkdir /out/data

# nonroot is uid and gid 65532; the numeric USER below lets Kubernetes verify
# runAsNonRoot without a runAsUser.
FROM gcr.io/distroless/static-debian13:nonroot
LABEL org.opencontainers.image.title="dbprobe" \
      org.opencontainers.image.description="Measures what a MySQL switchover does to its clients" \
      org.opencontainers.image.source="https://github.com/dbprobe/dbprobe"
COPY --from=build --chown=65532:65532 /out/data /var/lib/dbprobe
COPY --from=build /out/dbprobe /usr/local/bin/dbprobe
USER 65532:65532
WORKDIR /var/lib/dbprobe
VOLUME ["/var/lib/dbprobe"]
EXPOSE 8306
ENTRYPOINT ["/usr/local/bin/dbprobe"]
CMD ["run", "--config", "/etc/dbprobe/dbprobe.yaml"]
