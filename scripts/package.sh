#!/bin/sh
# Packs a built tenantgate binary into the release archive the install script and the
# composite action download, with its SHA-256 beside it:
#
#   scripts/package.sh TARGET BINARY OUT_DIR
#   -> OUT_DIR/tenantgate-TARGET.tar.gz and OUT_DIR/tenantgate-TARGET.tar.gz.sha256
#
# The archive holds tenantgate-TARGET/{tenantgate,README.md,docs/,suites/}.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 TARGET BINARY OUT_DIR" >&2; exit 2; }
target=$1
bin=$2
out=$3
root=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$bin" ] || { echo "package.sh: $bin is not an executable" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT INT TERM
dir="$stage/tenantgate-$target"
mkdir -p "$dir/docs" "$out"
cp "$bin" "$dir/tenantgate"
cp "$root/README.md" "$dir/"
cp "$root"/docs/*.md "$dir/docs/"
cp -R "$root/suites" "$dir/suites"
archive="tenantgate-$target.tar.gz"
# Stable order and owner, so the same binary gives the same archive.
(cd "$stage" && tar --sort=name --owner=0 --group=0 --numeric-owner -czf "$archive" "tenantgate-$target" 2>/dev/null \
  || tar -czf "$archive" "tenantgate-$target")
mv "$stage/$archive" "$out/$archive"
if command -v sha256sum >/dev/null 2>&1; then
  (cd "$out" && sha256sum "$archive" > "$archive.sha256")
else
  (cd "$out" && shasum -a 256 "$archive" > "$archive.sha256")
fi
echo "$out/$archive"
