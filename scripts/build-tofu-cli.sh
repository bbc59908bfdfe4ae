#!/usr/bin/env bash
# Builds the OpenTofu CLI (test tooling, never committed) from the Go module proxy,
# once, into a cache outside the repo, and reuses it after that. The wrapper
# module test/e2e/tofu-cli pins the version and repeats the replace of
# hashicorp/hcl/v2 that opentofu's go.mod needs.
# Prints progress on stderr and the binary's path as the last line on stdout.
#   SNAPSYNC_TOFU_CACHE  cache directory (default ~/.cache/snapsync-tofu)
set -euo pipefail
cd "$(dirname "$0")/.."
module_dir=test/e2e/tofu-cli

version=$(awk '$1 == "require" && $2 == "github.com/opentofu/opentofu" { print $3; exit }' "$module_dir/go.mod")
[[ -n $version ]] || { echo "tofu-cli: no opentofu version in $module_dir/go.mod" >&2; exit 1; }
cache=${SNAPSYNC_TOFU_CACHE:-$HOME/.cache/snapsync-tofu}
bin_dir=$cache/$version/bin
binary=$bin_dir/tofu

say() { echo "tofu-cli: $*" >&2; }
# `tofu version` prints warnings about the CLI configuration first: keep its "OpenTofu vX.Y.Z" line.
tofu_version() { "$1" version 2>/dev/null | grep -m1 '^OpenTofu v'; }

if [[ -x $binary ]] && tofu_version "$binary" >/dev/null; then
  say "reusing $binary ($(tofu_version "$binary"))"
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { say "the Go toolchain is needed to build the OpenTofu CLI"; exit 1; }
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gobuild GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$bin_dir"
cd "$module_dir"

package=github.com/opentofu/opentofu/cmd/tofu
# Listing the packages downloads the modules they come from (and only those).
say "downloading the modules tofu $version builds from into $GOMODCACHE"
total=$(go list -deps "$package" | wc -l)
say "compiling $package ($total packages, 5 to 30 minutes on 2 shared cores the first time)"
start=$SECONDS
# `go build -v` names each package as it compiles it: a progress line every 100;
# compiler messages (`# pkg`, `file.go:line:`) and the go command's own go through.
# version.dev=no makes it a release build (no "-dev" suffix), as the release tooling does.
# Built beside the binary under this process's own name: two builds started at once each finish.
if ! go build -v -o "$binary.tmp.$$" \
  -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" "$package" 2>&1 |
  awk -v name=tofu-cli -v total="$total" -f ../../../scripts/go-build-progress.awk; then
  say "go build failed"
  exit 1
fi
mv "$binary.tmp.$$" "$binary"
say "built $binary in $((SECONDS - start)) s ($(tofu_version "$binary"))"
echo "$binary"
