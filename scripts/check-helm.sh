#!/usr/bin/env bash
# Offline check of the Helm chart in helm/callsd: helm lint --strict, client-side render
# with the defaults and every helm/callsd/ci/*.yaml, strict Kubernetes schema validation
# of every rendered object, chart invariants, and bad values that must be rejected.
#
# Usage: bash scripts/check-helm.sh        (from any directory; exits non-zero on failure)
# Needs python3 (3.10+) and, the first time, PyPI to install the two packages below;
# after that it runs without network.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-python3}"

# helm-python-sdk: the Helm v4 Go SDK as a Python wheel (lint, render, schema) - no helm binary.
# kubernetes-validate: the Kubernetes API JSON schemas (strict variants), 1.25 to 1.37.
requirements=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "PyYAML>=6")

missing=()
for req in "${requirements[@]}"; do
  name="${req%%[=<>]*}"
  want="${req#*==}"
  have="$("$py" -c 'import sys
from importlib.metadata import version, PackageNotFoundError
try: print(version(sys.argv[1]))
except PackageNotFoundError: print("")' "$name")"
  if [[ -z "$have" ]] || { [[ "$req" == *"=="* ]] && [[ "$have" != "$want" ]]; }; then
    missing+=("$req")
  fi
done

if ((${#missing[@]})); then
  echo "check-helm: installing ${missing[*]}"
  "$py" -m pip install --quiet --disable-pip-version-check --no-input \
    --root-user-action=ignore "${missing[@]}"
fi

exec "$py" "$here/check_helm.py" "$@"
