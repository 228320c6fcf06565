#!/bin/sh
# Builds dbprobe's container image FROM scratch on this machine, pulling
# nothing: a static binary (CGO_ENABLED=0, -trimpath, version stamped), the
# host's CA bundle (Debian's ca-certificates), the passwd and group entries of
# uid 65532, and an empty journal directory owned by it.
#
# usage: deploy/container/build-scratch.sh IMAGE [VERSION]
# PODMAN overrides the command (e.g. PODMAN="podman --storage-driver vfs").
set -eu
image=${1:?usage: build-scratch.sh IMAGE [VERSION]}
version=${2:-dev}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$ca" ] || { echo "build-scratch.sh: no CA bundle at $ca (apt-get install ca-certificates, or set CA_BUNDLE)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$ctx/dbprobe" ./cmd/dbprobe)
cp "$here/passwd" "$here/group" "$ctx/"
cp "$ca" "$ctx/ca-certificates.crt"
mkdir "$ctx/data"
# --format docker keeps the image's metadata the way Docker and Kubernetes
# read it; the build has no RUN step, so it needs no network and no emulator.
${PODMAN:-podman} build --pull=never --network=none --format docker \
  --label org.opencontainers.image.version="$version" \
  -f "$here/Containerfile.scratch" -t "$image" "$ctx"
