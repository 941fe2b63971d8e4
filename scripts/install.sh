#!/bin/sh
# Installs a tenantgate release binary without a Rust toolchain: downloads the archive
# for this OS and CPU from the project's GitHub releases, checks its SHA-256 against the
# published checksum, and puts `tenantgate` into BIN_DIR.
#
#   TENANTGATE_REPO=OWNER/tenantgate sh install.sh            # the latest release
#   TENANTGATE_REPO=OWNER/tenantgate TENANTGATE_VERSION=v0.1.0 sh install.sh
#
# Environment:
#   TENANTGATE_REPO      OWNER/NAME of the GitHub repository (required unless BASE_URL)
#   TENANTGATE_VERSION   a release tag such as v0.1.0; default: the latest release
#   TENANTGATE_BASE_URL  where the archives are (overrides REPO/VERSION), e.g. a mirror
#                        or a local directory as file:///path/to/dist
#   BIN_DIR              where to install; default: $HOME/.local/bin
# Exits non-zero, having installed nothing, on any problem (no archive for this
# platform, a checksum that does not match, a failed download).
set -eu

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

os=$(uname -s)
arch=$(uname -m)
case "$os/$arch" in
  Linux/x86_64 | Linux/amd64) target=x86_64-unknown-linux-musl ;;
  Linux/aarch64 | Linux/arm64) target=aarch64-unknown-linux-musl ;;
  Darwin/x86_64) target=x86_64-apple-darwin ;;
  Darwin/arm64 | Darwin/aarch64) target=aarch64-apple-darwin ;;
  *) die "no release archive for $os/$arch; build from source: cargo install --locked --path ." ;;
esac

if [ -n "${TENANTGATE_BASE_URL:-}" ]; then
  base=${TENANTGATE_BASE_URL%/}
else
  [ -n "${TENANTGATE_REPO:-}" ] || die "set TENANTGATE_REPO=OWNER/NAME (or TENANTGATE_BASE_URL)"
  if [ -n "${TENANTGATE_VERSION:-}" ]; then
    base="https://github.com/$TENANTGATE_REPO/releases/download/$TENANTGATE_VERSION"
  else
    base="https://github.com/$TENANTGATE_REPO/releases/latest/download"
  fi
fi
archive="tenantgate-$target.tar.gz"
bin_dir=${BIN_DIR:-$HOME/.local/bin}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fetch() {
  case "$1" in
    file://*) cp "${1#file://}" "$2" ;;
    *) curl --proto '=https' --tlsv1.2 -fsSL "$1" -o "$2" ;;
  esac
}

say "downloading $base/$archive"
fetch "$base/$archive" "$tmp/$archive" || die "cannot download $base/$archive"
fetch "$base/$archive.sha256" "$tmp/$archive.sha256" || die "cannot download the checksum $base/$archive.sha256"

expected=$(cut -d ' ' -f 1 < "$tmp/$archive.sha256")
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum "$tmp/$archive" | cut -d ' ' -f 1)
else
  actual=$(shasum -a 256 "$tmp/$archive" | cut -d ' ' -f 1)
fi
[ -n "$expected" ] && [ "$expected" = "$actual" ] || die "checksum mismatch for $archive: expected $expected, got $actual; nothing installed"

tar -xzf "$tmp/$archive" -C "$tmp"
[ -f "$tmp/tenantgate-$target/tenantgate" ] || die "the archive holds no tenantgate-$target/tenantgate"
mkdir -p "$bin_dir"
cp "$tmp/tenantgate-$target/tenantgate" "$bin_dir/tenantgate.new"
chmod 755 "$bin_dir/tenantgate.new"
mv "$bin_dir/tenantgate.new" "$bin_dir/tenantgate"
say "installed $("$bin_dir/tenantgate" --version) to $bin_dir/tenantgate"
