/**
 * `add-member`, `remove-member`: change which disks and files a VM groups
 * after it was created (the protocol's addMember and removeMember). A
 * member is a container of its own: removing it from the VM keeps it.
 */
import type { Argv, CommandModule } from 'yargs';
import type { Container } from '../../../schema';
import { AgentClient } from '../../client/client';
import { type GlobalArgs, run } from '../context';

type Args<T> = GlobalArgs & T;

/** The VM and role positionals both commands take. */
const vmAndRole = (y: Argv<GlobalArgs>, role: string) =>
  y
    .positional('vm', { type: 'string', describe: 'The VM' })
    .positional('role', { type: 'string', describe: role });

const memberList = (vm: Container) =>
  Object.entries(vm.members)
    .map(([role, name]) => `${role}=${name}`)
    .join(', ') || 'none';

export const addMember: CommandModule<GlobalArgs, Args<{ vm: string; role: string; member: string }>> = {
  command: 'add-member <vm> <role> <member>',
  describe: 'Add a vdisk or file to a VM under a role (snapshots and syncs of the VM then cover it)',
  builder: (y) =>
    vmAndRole(y as unknown as Argv<GlobalArgs>, 'e.g. disk1 (lower case, digits, - and _)')
      .positional('member', { type: 'string', describe: 'A vdisk or file no VM holds' })
      .example(
        '$0 add-member staging-web disk1 staging-web-data',
        'staging-web-data is disk1 of staging-web',
      ) as never,
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call(
          'addMember',
          { vm: args.vm, role: args.role, member: args.member },
          { idempotencyKey: AgentClient.newKey() },
        ),
      (vm: Container) => `${args.member} is ${args.role} of ${vm.name} (members: ${memberList(vm)})`,
    ),
};

export const removeMember: CommandModule<GlobalArgs, Args<{ vm: string; role: string }>> = {
  command: 'remove-member <vm> <role>',
  describe: 'Take a member out of a VM; the container itself is kept',
  builder: (y) =>
    vmAndRole(y as unknown as Argv<GlobalArgs>, 'The role to take out').example(
      '$0 remove-member staging-web disk1',
      'staging-web no longer groups its disk1',
    ) as never,
  handler: (args) =>
    run(
      args,
      (c) =>
        c.call('removeMember', { vm: args.vm, role: args.role }, { idempotencyKey: AgentClient.newKey() }),
      (vm: Container) => `${vm.name} has no ${args.role} now (members: ${memberList(vm)})`,
    ),
};
