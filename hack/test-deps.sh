#!/usr/bin/env bash
# Installs what the tests need besides Go modules and the binaries of build-binaries.sh:
# openssh-server (a real sshd for git over SSH), git's http-backend and Chromium (kudod ui's
# browser tests drive it headless). Debian packages.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
[ -x /usr/lib/git-core/git-http-backend ] || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
# sshd refuses to start without its privilege-separation directory, which Debian leaves to init.
if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd; fi
