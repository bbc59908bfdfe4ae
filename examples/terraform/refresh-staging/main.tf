# Refresh staging from production, every night, without copying disks
# (the same as examples/refresh-staging for Pulumi):
# - the production VM (a config file and two disks),
# - a snapshot of it named after the day (a new snapshot_name takes a new one),
# - a staging VM of the same shape, synced to that snapshot: it reads
#   production's data, keeps its own name, UUID, MACs and disk GUIDs, and can
#   be undone from its safety snapshot.
#
# The agent and its token come from SNAPSYNC_URL / SNAPSYNC_TOKEN (a token in a
# variable would be written into plan files).

terraform {
  required_providers {
    snapsync = { source = "snapsync/snapsync" }
  }
}

provider "snapsync" {}

variable "snapshot_name" {
  type        = string
  description = "The snapshot to take and sync staging to, e.g. nightly-2026-11-30."
}

variable "disk_size" {
  type        = number
  default     = 21474836480 # 20 GiB; disks are thin
  description = "Bytes per disk."
}

variable "when_attached" {
  type        = string
  default     = "fail"
  description = "While staging runs (its disks attached over NBD): fail (IN_USE, naming the sessions) or disconnect them first."
}

locals {
  # VM name → env label.
  vms = {
    "prod-web"    = "production"
    "staging-web" = "staging"
  }
}

resource "snapsync_container" "config" {
  for_each = local.vms
  name     = "${each.key}-config"
  type     = "file"
  labels   = { env = each.value }
}

resource "snapsync_container" "disk0" {
  for_each = local.vms
  name     = "${each.key}-disk0"
  type     = "vdisk"
  size     = var.disk_size
  labels   = { env = each.value }
}

resource "snapsync_container" "disk1" {
  for_each = local.vms
  name     = "${each.key}-disk1"
  type     = "vdisk"
  size     = var.disk_size
  labels   = { env = each.value }
}

resource "snapsync_container" "vm" {
  for_each = local.vms
  name     = each.key
  type     = "vm"
  members = {
    config = snapsync_container.config[each.key].name
    disk0  = snapsync_container.disk0[each.key].name
    disk1  = snapsync_container.disk1[each.key].name
  }
  labels = { env = each.value }
}

resource "snapsync_snapshot" "nightly" {
  container = snapsync_container.vm["prod-web"].name
  name      = var.snapshot_name
  labels    = { purpose = "staging-refresh" }
}

resource "snapsync_sync_from_snapshot" "refresh" {
  target   = snapsync_container.vm["staging-web"].name
  snapshot = snapsync_snapshot.nightly.ref
  # preserve unset: the profile's default identity (name, UUID, MACs, hostname, disk GUIDs).
  safety_snapshot = true
  on_delete       = "keep"
  when_attached   = var.when_attached
}

output "staging_identity" {
  description = "The staging VM's own identity values that the sync kept (identity path → value)."
  value       = snapsync_sync_from_snapshot.refresh.preserved
}

output "restored_fields" {
  description = "Identity fields the sync had overwritten with production's and wrote back."
  value       = snapsync_sync_from_snapshot.refresh.restored
}

output "safety_snapshot" {
  description = "Undo the last refresh with: snapsync-agent revert staging-web <this snapshot>"
  value       = snapsync_sync_from_snapshot.refresh.safety_snapshot_ref
}

output "synced_from" {
  value = snapsync_snapshot.nightly.ref
}

output "generation" {
  value = snapsync_sync_from_snapshot.refresh.generation
}

output "staging_uuid" {
  value = snapsync_container.vm["staging-web"].uuid
}
