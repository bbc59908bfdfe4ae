/**
 * A cpio archive in the "newc" format (what the Linux kernel unpacks as an
 * initramfs): directories, regular files, symlinks and character devices,
 * written without root (a device node is only a header here).
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const pad4 = (length: number) => Buffer.alloc((4 - (length % 4)) % 4);
const hex8 = (value: number) => value.toString(16).padStart(8, '0');

function record(
  ino: number,
  name: string,
  mode: number,
  data: Buffer,
  rdev: { major: number; minor: number } = { major: 0, minor: 0 },
): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [
    ino,
    mode,
    0, // uid
    0, // gid
    (mode & S_IFDIR) === S_IFDIR ? 2 : 1, // nlink
    0, // mtime: reproducible archives
    data.length,
    0, // devmajor
    0, // devminor
    rdev.major,
    rdev.minor,
    nameBytes.length,
    0, // check
  ];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return Buffer.concat([header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)]);
}

function entryRecord(entry: CpioEntry, ino: number): Buffer {
  const name = entry.path.replace(/^\/+/, '');
  switch (entry.type) {
    case 'dir':
      return record(ino, name, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0));
    case 'file':
      return record(ino, name, S_IFREG | (entry.mode ?? 0o644), entry.data);
    case 'symlink':
      return record(ino, name, S_IFLNK | 0o777, Buffer.from(entry.target));
    case 'chardev':
      return record(ino, name, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), entry);
  }
}

/** The archive: entries in the given order (a directory before what it holds), then the trailer. */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts = entries.map((entry, index) => entryRecord(entry, index + 1));
  parts.push(record(0, 'TRAILER!!!', 0, Buffer.alloc(0)));
  return Buffer.concat(parts);
}
