#!/usr/bin/env bash
# Builds the Terraform CLI v1.5.7 (the last MPL release; test tooling, never
# committed) from the Go module proxy with `go install`, once, into a cache
# outside the repo, and reuses it after that. Terraform's go.mod has no
# replace directives, so no wrapper module is needed (unlike OpenTofu's).
# Prints progress on stderr and the binary's path as the last line on stdout.
#   SNAPSYNC_TERRAFORM_CACHE  cache directory (default ~/.cache/snapsync-terraform)
set -euo pipefail
cd "$(dirname "$0")/.."

version=v1.5.7
cache=${SNAPSYNC_TERRAFORM_CACHE:-$HOME/.cache/snapsync-terraform}
bin_dir=$cache/$version/bin
binary=$bin_dir/terraform

say() { echo "terraform-cli: $*" >&2; }
terraform_version() { CHECKPOINT_DISABLE=1 "$1" version 2>/dev/null | grep -m1 '^Terraform v'; }

if [[ -x $binary ]] && terraform_version "$binary" >/dev/null; then
  say "reusing $binary ($(terraform_version "$binary"))"
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { say "the Go toolchain is needed to build the Terraform CLI"; exit 1; }
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gobuild GOFLAGS="-mod=readonly -buildvcs=false"
# GOBIN is where `go install` puts the binary; a temporary one so a failed build leaves none behind
# (per process: two builds started at once, by CI jobs or engineers sharing the cache, each finish).
export GOBIN=$bin_dir.tmp.$$
mkdir -p "$GOBIN"
say "downloading and compiling github.com/hashicorp/terraform@$version into $cache (5 to 30 minutes on 2 shared cores the first time)"
start=$SECONDS
# -s -w as the release builds; no version.dev flag exists in 1.5 (a go install build is a release build).
if ! go install -v -ldflags "-s -w" "github.com/hashicorp/terraform@$version" 2>&1 |
  awk -v name=terraform-cli -v total=0 -f scripts/go-build-progress.awk; then
  say "go install failed"
  exit 1
fi
mkdir -p "$bin_dir"
mv "$GOBIN/terraform" "$binary"
rm -rf "$GOBIN"
say "built $binary in $((SECONDS - start)) s ($(terraform_version "$binary"))"
echo "$binary"
