# Filters `go build -v` / `go install -v` output (one package name a line) for
# scripts/build-*-cli.sh: a progress line every 100 packages on stderr, and the
# compiler's and the go command's own messages (`# pkg`, `file.go:line:`, `go: `).
#   awk -v name=tofu-cli -v total=N -f go-build-progress.awk   (total 0: unknown)
{
  n++
  if (n % 100 == 0) {
    if (total > 0) printf "%s: compiled %d/%d packages\n", name, n, total > "/dev/stderr"
    else printf "%s: compiled %d packages\n", name, n > "/dev/stderr"
  }
}
/^(#|go: )|\.go:[0-9]+:/ { print > "/dev/stderr" }
