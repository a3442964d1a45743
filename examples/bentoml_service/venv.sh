#!/bin/sh
# Make (or keep) the example's own virtual environment: venv.sh [DIR] [REQUIREMENTS]
#   default: .venv-bentoml at the repository root, from requirements.txt.
# An environment made from the same requirements (and this script) is reused as it is.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${1:-$root/.venv-bentoml}
requirements=${2:-$here/requirements.txt}
python=${PYTHON:-python3}
stamp="$venv/.requirements.sha256"
want=$(cat "$requirements" "$here/venv.sh" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "making $venv from $(basename "$requirements")"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
# otelml from this checkout: a path entry instead of an install, because otelml's own
# dependencies are the gateway's (protobuf >= 5 would clash with the SDK 1.20 exporters), and a
# model service needs only the SDK and exporters pinned above.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$root" > "$site/otelml-checkout.pth"
"$venv/bin/python" -c 'import bentoml, otelml.instrument.bentoml'
echo "$want" > "$stamp"
