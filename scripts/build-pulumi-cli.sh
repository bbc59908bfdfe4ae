#!/usr/bin/env bash
# Builds the Pulumi CLI (test tooling, never committed) from the Go module proxy,
# once, into a cache outside the repo, and reuses it after that. The wrapper
# module test/e2e/pulumi-cli pins the version and the replace pkg/go.mod needs.
# Prints progress on stderr and the binary's path as the last line on stdout.
#   SNAPSYNC_PULUMI_CACHE  cache directory (default ~/.cache/snapsync-pulumi)
set -euo pipefail
cd "$(dirname "$0")/.."
module_dir=test/e2e/pulumi-cli

version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/pulumi/pulumi/pkg/v3") { print $(i + 1); exit } }' "$module_dir/go.mod")
[[ -n $version ]] || { echo "pulumi-cli: no pkg/v3 version in $module_dir/go.mod" >&2; exit 1; }
cache=${SNAPSYNC_PULUMI_CACHE:-$HOME/.cache/snapsync-pulumi}
bin_dir=$cache/$version/bin  # the layout PulumiCommand.get({ root }) expects
binary=$bin_dir/pulumi

say() { echo "pulumi-cli: $*" >&2; }

if [[ -x $binary ]] && "$binary" version >/dev/null 2>&1; then
  say "reusing $binary ($("$binary" version))"
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { say "the Go toolchain is needed to build the Pulumi CLI"; exit 1; }
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gobuild GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$bin_dir"
cd "$module_dir"

package=github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
# Listing the packages downloads the modules they come from (and only those:
# the full module graph names versions the proxy does not serve).
say "downloading the modules pulumi $version builds from into $GOMODCACHE"
total=$(go list -deps "$package" | wc -l)
say "compiling $package ($total packages, 4 to 6 minutes on 2 cores the first time)"
start=$SECONDS
# `go build -v` names each package as it compiles it: a progress line every 100;
# compiler messages (`# pkg`, `file.go:line:`) and the go command's own go through.
# Built beside the binary under this process's own name: two builds started at once each finish.
if ! go build -v -o "$binary.tmp.$$" \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" "$package" 2>&1 |
  awk -v total="$total" '{ n++; if (n % 100 == 0) printf "pulumi-cli: compiled %d/%d packages\n", n, total > "/dev/stderr" }
                         /^(#|go: )|\.go:[0-9]+:/ { print > "/dev/stderr" }'; then
  say "go build failed"
  exit 1
fi
mv "$binary.tmp.$$" "$binary"
say "built $binary in $((SECONDS - start)) s ($("$binary" version))"
echo "$binary"
