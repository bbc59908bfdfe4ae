/*
 * LD_PRELOAD shim for tests: while the file named by $SNAPSYNC_FAULT_META_WRITE
 * exists, a pwrite into the first two pages (LMDB's meta pages) of a file
 * named data.mdb fails with EIO, as a failing disk would. LMDB then ends its
 * environment (MDB_PANIC); data pages and every other file are written as usual.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define META_PAGES_END (2 * 4096)

static int fails(int fd, off_t offset) {
  const char *trigger = getenv("SNAPSYNC_FAULT_META_WRITE");
  if (!trigger || offset >= META_PAGES_END || access(trigger, F_OK) != 0) return 0;
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 9) return 0;
  target[n] = 0;
  return strcmp(target + n - 9, "/data.mdb") == 0;
}

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static ssize_t faulty(const char *name, int fd, const void *buf, size_t len, off_t offset) {
  pwrite_fn real = (pwrite_fn)dlsym(RTLD_NEXT, name);
  if (fails(fd, offset)) {
    errno = EIO;
    return -1;
  }
  return real(fd, buf, len, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset) {
  return faulty("pwrite", fd, buf, len, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t offset) {
  return faulty("pwrite64", fd, buf, len, offset);
}
