#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real (disk tools, NBD clients),
# only when a tool is missing. Needs root (or sudo).
set -euo pipefail

declare -A package_of=(
  [sgdisk]=gdisk
  [sfdisk]=fdisk
  [mkfs.ext4]=e2fsprogs
  [e2fsck]=e2fsprogs
  [qemu-img]=qemu-utils
  [qemu-io]=qemu-utils
  [nbdinfo]=libnbd-bin
  [nbdcopy]=libnbd-bin
  [openssl]=openssl
  [virt-xml-validate]=libvirt-clients
  [xmllint]=libxml2-utils
  [flock]=util-linux
  [fincore]=util-linux
  [mount]=mount
  [mkswap]=util-linux
  [blkid]=util-linux
  [debugfs]=e2fsprogs
  # test/nbd/qemu-guest.test.ts: a real guest (busybox initramfs built by the test) on an NBD vdisk
  [qemu-system-x86_64]=qemu-system-x86
  [busybox]=busybox-static
  [xz]=xz-utils
  [losetup]=mount
  [mkfifo]=coreutils
  [mknod]=coreutils
  # test/bench/nbd-bench.test.ts: the bench:nbd smoke test drives fio against the agent and qemu-nbd
  [fio]=fio
  [qemu-nbd]=qemu-utils
  # test/cli/metadata-panic.test.ts builds a shim that fails writes of LMDB's meta pages (test/helpers/meta-write-fault.c)
  [gcc]=gcc
)

missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
# The identity tests read YAML as cloud-init does (PyYAML's safe_load).
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
# The guest's kernel is a file, not a command: the Debian kernel and its modules (installs non-interactively in a container).
compgen -G '/boot/vmlinuz-*' >/dev/null || missing+=(linux-image-amd64)
if ((${#missing[@]} == 0)); then
  echo "system packages: all present"
  exit 0
fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "system packages: installing ${packages[*]}"
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# linux-image-amd64 is only there for the test guest (it boots its own initramfs): skip its initramfs hook.
export INITRD=No
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "system packages: done"
