#!/usr/bin/env bash
# Installs what the test suite talks to, when it is missing: Debian's pebble (+ pebble-challtestsrv),
# BIND (named, dig, nsupdate), openssl, OpenSSH, systemd-analyze, kubectl, and the real ACME clients (lego, certbot, caddy) and the browser
# (chromium, for the dashboard) used by end-to-end tests. CERTFLEET_TEST_PACKAGES narrows the extras.
set -euo pipefail

need=()
command -v pebble >/dev/null 2>&1 || need+=(pebble)
command -v named >/dev/null 2>&1 || need+=(bind9)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# OpenSSH: the SSH certificate tests run a real sshd and ssh / ssh-keygen
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
# deployment checks: systemd-analyze verify on the units, kubectl kustomize on the manifests
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
# migration tests run the seed documents' client commands as written (curl … | jq)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
for extra in ${CERTFLEET_TEST_PACKAGES:-lego certbot caddy chromium}; do
  case "$extra" in
    lego|certbot|caddy) command -v "$extra" >/dev/null 2>&1 || need+=("$extra") ;;
    chromium)
      command -v chromium >/dev/null 2>&1 || need+=(chromium)
      # certutil: the dashboard test adds the embedded CA to a throwaway NSS database for Chromium
      command -v certutil >/dev/null 2>&1 || need+=(libnss3-tools)
      ;;
  esac
done

if [ ${#need[@]} -gt 0 ]; then
  echo "installing test dependencies: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
