#!/bin/sh
# Build a release folder for workers without a checkout: OUT/<version>/ holds the wheel and a
# requirements.txt that pins appzen-etl==<version> and every dependency as uv.lock has them.
# prefect.yaml's release pull step installs it on each worker (pip install -r, a no-op when
# already installed). Usage: scripts/release.sh [OUT]   (default dist/releases)
set -eu
cd "$(dirname "$0")/.."
UV=${UV:-.tools/bin/uv}
OUT=${1:-dist/releases}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
folder="$OUT/$version"
rm -rf "$folder"
mkdir -p "$folder"
"$UV" build --wheel --quiet -o "$folder"
{
    echo "# appzen-etl $version for a worker: pip install -r requirements.txt (from this folder)"
    echo "--find-links ."
    echo "appzen-etl==$version"
    "$UV" export --frozen --no-dev --no-hashes --no-emit-project --no-header --quiet
} > "$folder/requirements.txt"
echo "$folder"
