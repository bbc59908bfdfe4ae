/**
 * The agent's messages say how to proceed in its CLI's words ("pass shrink:
 * true (CLI --shrink)", "--map SRC=DST"); a provider user sets attributes on a
 * resource instead. Each such phrase is said again in the front end's words
 * (`allow_shrink = true` for Terraform, `allowShrink: true` for Pulumi); the
 * code and the rest of the message are the agent's.
 */
import { wording } from './front-end';

type Rewrite = [RegExp, (...groups: string[]) => string];

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function rewrites(): Rewrite[] {
  const w = wording();
  return [
    // INVALID_ARGUMENT (resize): the Container's own knob.
    [/pass shrink: true \(CLI --shrink\)/, allowShrinkHint],
    // IN_USE: the provider's hint (errors.ts) names whenAttached; the CLI's flag is no help here.
    [/, or pass force \(CLI --force\) to disconnect them first/, () => ''],
    // IS_VM_MEMBER: the provider has no detach flag; the VM's members are its own resource's.
    [
      /: pass detach \(CLI --detach\) to take it out of the VM and delete it, or delete the VM/,
      () =>
        `: take it out of the VM first (drop it from the VM's ${w.attribute('members')} and run \`${w.apply}\`), then delete it, or delete the VM`,
    ],
    // A sync's or clone's refusals and warnings: the resource's settings, as the user writes them.
    ...Object.entries(w.identityOptions).map(
      ([agentTerms, own]): Rewrite => [new RegExp(escapeRegExp(agentTerms), 'g'), () => own],
    ),
    [/\(--member\)/, () => `(${w.attribute('members')})`],
    [/\(add-member; /, () => `(in its ${w.attribute('members')}; `],
    // `--map A=B` as the agent echoes an entry back (A and B may hold ':', never ': ' or a blank).
    [/--map ([^=\s]+)=(\S+?)(?=: | matched nothing)/g, (from, to) => w.mapEntry(from!, to!)],
  ];
}

/** How a provider user allows a shrink, in the front end's words. */
export function allowShrinkHint(): string {
  return `set ${wording().setting('allowShrink', 'true')} on this resource to allow it`;
}

/** `message` with the agent's CLI hints in the words of the front end in use. */
export function inProviderTerms(message: string): string {
  let said = message;
  for (const [phrase, words] of rewrites()) {
    said = said.replace(phrase, (_match, ...groups: string[]) => words(...groups));
  }
  return said;
}
