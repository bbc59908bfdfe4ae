#!/usr/bin/env bash
# Builds the Pulumi nodejs language host (pulumi-language-nodejs; test tooling, never committed)
# from the Go module proxy, once, into a cache outside the repo, and reuses it after that. The
# wrapper module test/e2e/pulumi-language-nodejs pins sdk/v3 (the last version that still holds
# nodejs/cmd/pulumi-language-nodejs) and the replace its go.mod needs.
# Prints progress on stderr and the binary's path as the last line on stdout.
#   SNAPSYNC_PULUMI_CACHE  cache directory (default ~/.cache/snapsync-pulumi)
set -euo pipefail
cd "$(dirname "$0")/.."
module_dir=test/e2e/pulumi-language-nodejs

version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/pulumi/pulumi/sdk/v3") { print $(i + 1); exit } }' "$module_dir/go.mod")
[[ -n $version ]] || { echo "pulumi-language-nodejs: no sdk/v3 version in $module_dir/go.mod" >&2; exit 1; }
cache=${SNAPSYNC_PULUMI_CACHE:-$HOME/.cache/snapsync-pulumi}
bin_dir=$cache/language-nodejs-$version/bin  # put on PATH: the CLI looks the host up there
binary=$bin_dir/pulumi-language-nodejs

say() { echo "pulumi-language-nodejs: $*" >&2; }

if [[ -x $binary ]]; then
  say "reusing $binary"
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { say "the Go toolchain is needed to build the language host"; exit 1; }
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gobuild GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$bin_dir"
cd "$module_dir"
package=github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
say "downloading the modules it builds from into $GOMODCACHE"
total=$(go list -deps "$package" | wc -l)
say "compiling $package ($total packages)"
start=$SECONDS
# Built beside the binary under this process's own name: two builds started at once each finish.
if ! go build -o "$binary.tmp.$$" \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" "$package"; then
  say "go build failed"
  exit 1
fi
mv "$binary.tmp.$$" "$binary"
say "built $binary in $((SECONDS - start)) s"
echo "$binary"
