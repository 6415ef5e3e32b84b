#!/usr/bin/env bash
# Cross-compiles keppel for the platforms of .goreleaser.yaml with plain
# go build, into dist/ (one archive per platform and checksums.txt).
#
#   scripts/build-release.sh [VERSION]
#
# VERSION defaults to `git describe --tags --always --dirty`.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
version="${version#v}"
commit="$(git rev-parse HEAD 2>/dev/null || true)"
date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)

rm -rf dist
mkdir -p dist
for platform in "${platforms[@]}"; do
  goos="${platform%/*}"
  goarch="${platform#*/}"
  name="keppel_${version}_${goos}_${goarch}"
  exe=keppel
  [[ "$goos" == windows ]] && exe=keppel.exe
  echo "building $name"
  mkdir -p "dist/$name"
  CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" go build -trimpath \
    -ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.buildDate=$date" \
    -o "dist/$name/$exe" ./cmd/keppel
  cp README.md "dist/$name/"
  mkdir -p "dist/$name/docs" && cp docs/*.md "dist/$name/docs/"
  if [[ "$goos" == windows ]]; then
    (cd dist && zip -qr "$name.zip" "$name")
  else
    tar -C dist -czf "dist/$name.tar.gz" "$name"
  fi
  rm -rf "dist/${name:?}"
done
(cd dist && sha256sum ./*.tar.gz ./*.zip | sed 's| \./| |' > checksums.txt)
echo "done: dist/"
ls -l dist
