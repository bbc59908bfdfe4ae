/**
 * Which front end runs the shared runtime, so that its hints name that front
 * end's commands and settings: a Terraform user is not told to run
 * `pulumi config set`. Pulumi is the default (the dynamic provider never sets
 * it); provider-terraform sets `terraform` when it starts.
 */
export type FrontEnd = 'pulumi' | 'terraform';

export interface Wording {
  /** Where the default agent's URL is set. */
  url: string;
  /** Where the default agent's token is set. */
  token: string;
  /** How to set a wrong token right. */
  setToken: string;
  /** How to configure an agent when none is. */
  configureAgent: string;
  /** How to give credentials for another agent. */
  addAgent(agentUrl: string): string;
  /** A resource's own agent URL attribute. */
  agentUrl: string;
  /** The run that applies the configuration again. */
  apply: string;
  /** The run that records what changed outside the configuration. */
  refresh: string;
  /** The run that deletes what the configuration manages. */
  destroy: string;
  /** How to make an object on the agent (`id`: its import id) the resource that names it. */
  importExisting(kind: string, id: string): string;
  /** The setting that disconnects attached clients before a sync. */
  whenAttachedDisconnect: string;
  /** A resource attribute, named by its Pulumi input (`allowShrink`). */
  attribute(input: string): string;
  /** An attribute set to a value, as the user writes it (`allowShrink: true`). */
  setting(input: string, value: string): string;
  /** One entry of a SyncFromSnapshot's reference map. */
  mapEntry(from: string, to: string): string;
  /** The clone source input of a container. */
  fromSnapshot: string;
  /**
   * The inputs the agent's identity errors name in its own words (`referenceMap / --map SRC=DST`):
   * the protocol's and CLI's spelling → the front end's setting.
   */
  identityOptions: Record<string, string>;
}

/** Terraform's spelling of a Pulumi input: allowShrink → allow_shrink. */
const snakeCase = (input: string) => input.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const PULUMI: Wording = {
  url: 'snapsync:url',
  token: 'snapsync:token',
  setToken: 'pulumi config set --secret snapsync:token <token> (for a host in snapsync:agents, its "token")',
  configureAgent: 'run `pulumi config set snapsync:url ws://HOST:PORT`',
  addAgent: (agentUrl) =>
    `add it to snapsync:agents, e.g. pulumi config set --secret snapsync:agents '{"${agentUrl}": {"token": "…"}}'`,
  agentUrl: 'agentUrl',
  apply: 'pulumi up',
  refresh: 'pulumi refresh',
  destroy: 'pulumi destroy',
  importExisting: (kind, id) =>
    `adopt that ${kind} as it is: \`pulumi state delete <urn of this resource>\`, then give the resource the option \`import: '${id}'\` with the ${kind}'s attributes and run \`pulumi up\``,
  whenAttachedDisconnect: "`whenAttached: 'disconnect'`",
  attribute: (input) => `\`${input}\``,
  setting: (input, value) => `\`${input}: ${value}\``,
  mapEntry: (from, to) => `referenceMap entry \`'${from}': '${to}'\``,
  fromSnapshot: 'fromSnapshot',
  identityOptions: {
    'referenceMap / --map SRC=DST': "`referenceMap: { 'SRC': 'DST' }` on this resource",
    'keepIdentity / --keep-identity':
      "`keepIdentity: true` (dangerous: the copy keeps the source's MACs, UUIDs, disks and networks)",
    'allowSourceReferences / --allow-source-reference NAME':
      "`allowSourceReferences: ['NAME']` on this resource",
    'members / --member': "`members: ['ROLE', …]` on this resource",
  },
};

const TERRAFORM: Wording = {
  url: 'url in the provider block (or SNAPSYNC_URL)',
  token: 'token in the provider block (or SNAPSYNC_TOKEN)',
  setToken:
    'set token in the provider "snapsync" block or SNAPSYNC_TOKEN (for a host in agents, its "token")',
  configureAgent: 'set url/token in the provider "snapsync" block or SNAPSYNC_URL/SNAPSYNC_TOKEN',
  addAgent: (agentUrl) =>
    `add it to agents in the provider "snapsync" block, e.g. agents = { "${agentUrl}" = { token = "…" } }`,
  agentUrl: 'agent_url',
  apply: 'tofu apply',
  refresh: 'tofu plan -refresh-only',
  destroy: 'tofu destroy',
  importExisting: (kind, id) =>
    `adopt that ${kind} as it is: \`tofu state rm <address of this resource>\`, then \`tofu import <address> ${id}\` (the next plan then shows how it differs from the declaration)`,
  whenAttachedDisconnect: '`when_attached = "disconnect"`',
  attribute: (input) => `\`${snakeCase(input)}\``,
  setting: (input, value) => `\`${snakeCase(input)} = ${value}\``,
  mapEntry: (from, to) => `reference_map entry \`"${from}" = "${to}"\``,
  fromSnapshot: 'from_snapshot',
  identityOptions: {
    'referenceMap / --map SRC=DST': '`reference_map = { "SRC" = "DST" }` on this resource',
    'keepIdentity / --keep-identity':
      "`keep_identity = true` (dangerous: the copy keeps the source's MACs, UUIDs, disks and networks)",
    'allowSourceReferences / --allow-source-reference NAME':
      '`allow_source_references = ["NAME"]` on this resource',
    'members / --member': '`members = ["ROLE", …]` on this resource',
  },
};

let current: FrontEnd = 'pulumi';

export function setFrontEnd(frontEnd: FrontEnd): void {
  current = frontEnd;
}

export function frontEnd(): FrontEnd {
  return current;
}

/** The words for the front end in use. */
export function wording(): Wording {
  return current === 'terraform' ? TERRAFORM : PULUMI;
}
