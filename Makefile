# snapsync — every target installs what it needs first (npm ci brings Node 24 as a devDependency).
SHELL := /bin/bash
NPM_STAMP := node_modules/.package-lock.json

.PHONY: deps system-deps pulumi-cli tofu-cli terraform-cli demo test e2e lint typecheck bench drill check clean

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

deps: $(NPM_STAMP)

## Debian packages the tests drive for real (sgdisk, mkfs.ext4, qemu-img, nbdinfo, …), when missing.
system-deps:
	bash scripts/system-deps.sh

## The main job: a pool, a VM with a config file and two disks, a snapshot, a sync of a second VM, a report.
demo: deps
	npm run --silent demo

## The tests (what CI runs).
test: deps system-deps
	npm test

## The Pulumi CLI for the end-to-end tests, built from the Go module proxy once into ~/.cache/snapsync-pulumi.
pulumi-cli:
	bash scripts/build-pulumi-cli.sh >/dev/null

## The OpenTofu CLI for the Terraform provider's end-to-end tests, built once into ~/.cache/snapsync-tofu.
tofu-cli:
	bash scripts/build-tofu-cli.sh >/dev/null

## Terraform v1.5.7 (the last MPL release) for the same tests, built once into ~/.cache/snapsync-terraform.
terraform-cli:
	bash scripts/build-terraform-cli.sh >/dev/null

## Real `pulumi up`/`refresh`/`destroy` of examples/refresh-staging against a real agent (inline, and as a
## project directory under the nodejs language host, built like the CLI into ~/.cache/snapsync-pulumi),
## and real `tofu` and `terraform` `apply`/`plan`/`import`/`destroy` of the Terraform provider.
e2e: deps
	pulumi="$$(bash scripts/build-pulumi-cli.sh)" && host="$$(bash scripts/build-pulumi-language-nodejs.sh)" && \
	  tofu="$$(bash scripts/build-tofu-cli.sh)" && terraform="$$(bash scripts/build-terraform-cli.sh)" && \
	  SNAPSYNC_PULUMI="$$pulumi" SNAPSYNC_PULUMI_LANGUAGE_NODEJS="$$host" SNAPSYNC_TOFU="$$tofu" \
	  SNAPSYNC_TERRAFORM="$$terraform" npm run --silent e2e

lint: deps
	npx biome check .

typecheck: deps
	npm run --silent typecheck
	npx tsc -p examples/refresh-staging/tsconfig.json
	npx tsc -p examples/dev-clones/tsconfig.json

check: lint typecheck test

bench: deps system-deps
	npm run bench

## Reliability drills at full size (crash, faults, hostile input, load, security): one table.
drill: deps system-deps
	npm run --silent build
	npx tsx test/drills/run.ts

clean:
	rm -rf node_modules
