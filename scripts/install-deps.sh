#!/usr/bin/env bash
# Installs what building, the lab and the test suite need on Debian/Ubuntu:
# MariaDB (the tests and the lab start their own mariadbd in temp dirs; the
# packaged service is not used), Prometheus and promtool (rule tests and the
# end-to-end scrape test), and staticcheck. With --test (make test, CI) also
# what only the test suite needs: podman and runc (the container image test),
# the CA bundle the image carries, and systemd-analyze (the unit's check).
# Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ "${1:-}" = "--test" ]; then
  command -v podman >/dev/null 2>&1 || need+=(podman)
  command -v runc >/dev/null 2>&1 || need+=(runc)
  [ -r /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
fi
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/staticcheck" ]; then
  echo "installing: staticcheck"
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
