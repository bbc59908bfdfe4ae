/**
 * The plugin as tofu starts it: refuses to run without the magic cookie or
 * without AutoMTLS, prints `1|6|unix|<socket>|grpc|<cert>`, serves
 * GetProviderSchema only to the pinned client certificate, answers the
 * health check, and exits on GRPCController.Shutdown, SIGTERM/SIGHUP (not
 * SIGINT: the host's Ctrl-C, the host stops it) or its launcher's death, its
 * socket directory removed every time.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { selfSignedCertificate } from '../../provider-terraform/plugin/certificate';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../../provider-terraform/plugin/serve';
import { cleanupTempDirs, tempDir } from '../helpers/tmp';
import { call, PLUGIN_BIN, type PluginProcess, pluginClient, startPlugin } from './plugin-process';

describe('terraform provider plugin: handshake and AutoMTLS', () => {
  let plugin: PluginProcess | null = null;
  afterEach(() => {
    if (plugin && plugin.child.exitCode === null) plugin.child.kill('SIGKILL');
    plugin = null;
  });
  after(cleanupTempDirs);

  it('refuses to run without the magic cookie, and without a client certificate', () => {
    const { [MAGIC_COOKIE_KEY]: _cookie, PLUGIN_CLIENT_CERT: _cert, ...env } = process.env;
    const bare = spawnSync(process.execPath, [PLUGIN_BIN], { env, encoding: 'utf8' });
    assert.equal(bare.status, 1);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /This binary is a plugin/);
    const noCert = spawnSync(process.execPath, [PLUGIN_BIN], {
      env: { ...env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE },
      encoding: 'utf8',
    });
    assert.equal(noCert.status, 1);
    assert.equal(noCert.stdout, '');
    assert.match(noCert.stderr, /PLUGIN_CLIENT_CERT is missing/);
  });

  it('prints the handshake line, serves GetProviderSchema over mTLS, and stops on Shutdown', async () => {
    plugin = await startPlugin();
    const { core, app, network, address, protocol, cert } = plugin.handshake;
    assert.deepEqual([core, app, network, protocol], ['1', '6', 'unix', 'grpc']);
    assert.ok(fs.statSync(address).isSocket());
    assert.ok(!cert.endsWith('='), 'base64 without padding');
    const x509 = new X509Certificate(Buffer.from(cert, 'base64'));
    assert.ok(x509.checkHost('localhost'));
    assert.ok(x509.verify(x509.publicKey), 'self-signed');

    const provider = pluginClient(plugin, 'tfplugin6.Provider');
    const schema = await call<{
      resource_schemas: Record<
        string,
        { block: { attributes: Array<{ name: string; sensitive: boolean }> } }
      >;
      provider: { block: { attributes: Array<{ name: string; sensitive: boolean }> } };
    }>(provider, 'GetProviderSchema', {});
    assert.deepEqual(Object.keys(schema.resource_schemas).sort(), [
      'snapsync_container',
      'snapsync_snapshot',
      'snapsync_sync_from_snapshot',
    ]);
    const token = schema.provider.block.attributes.find((a) => a.name === 'token');
    assert.equal(token?.sensitive, true);
    const health = pluginClient(plugin, 'grpc.health.v1.Health');
    assert.deepEqual(await call(health, 'Check', { service: 'plugin' }), { status: 1 }); // SERVING

    const controller = pluginClient(plugin, 'plugin.GRPCController');
    await call(controller, 'Shutdown', {});
    assert.equal(await plugin.exited, 0);
    assert.equal(fs.existsSync(path.dirname(address)), false, 'the socket and its directory are removed');
    for (const c of [provider, health, controller]) c.close();
  });

  it('removes its socket directory when killed by SIGTERM or SIGHUP, exiting 128 + the signal number', async () => {
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      const sockets = tempDir();
      plugin = await startPlugin({ PLUGIN_UNIX_SOCKET_DIR: sockets });
      assert.equal(path.dirname(path.dirname(plugin.handshake.address)), sockets);
      plugin.child.kill(signal);
      assert.equal(await plugin.exited, code, signal);
      assert.deepEqual(fs.readdirSync(sockets), [], `nothing left after ${signal}`);
    }
  });

  it('removes its socket directory when it exits because its launcher was killed outright', async function () {
    // Only a Node older than 22 hands the plugin over to a child: the child is what exits.
    const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find(
      (node) =>
        fs.existsSync(node) &&
        Number(spawnSync(node, ['-p', 'process.versions.node.split(".")[0]']).stdout) < 22,
    );
    if (!oldNode) this.skip();
    const sockets = tempDir();
    plugin = await startPlugin({ PLUGIN_UNIX_SOCKET_DIR: sockets }, oldNode);
    plugin.child.kill('SIGKILL'); // as a plugin host's force-kill: the handed-over child gets no signal
    await plugin.exited;
    for (let i = 0; i < 50 && fs.readdirSync(sockets).length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(fs.readdirSync(sockets), []);
  });

  it('keeps serving on SIGINT (the host stops it), and removes its socket directory on Shutdown after', async () => {
    const sockets = tempDir();
    plugin = await startPlugin({ PLUGIN_UNIX_SOCKET_DIR: sockets });
    plugin.child.kill('SIGINT');
    const health = pluginClient(plugin, 'grpc.health.v1.Health');
    assert.deepEqual(await call(health, 'Check', { service: 'plugin' }), { status: 1 }); // SERVING
    const controller = pluginClient(plugin, 'plugin.GRPCController');
    await call(controller, 'Shutdown', {});
    assert.equal(await plugin.exited, 0);
    assert.deepEqual(fs.readdirSync(sockets), []);
    for (const c of [health, controller]) c.close();
  });

  it('refuses a client certificate other than the pinned one', async () => {
    plugin = await startPlugin();
    const stranger = pluginClient(plugin, 'tfplugin6.Provider', selfSignedCertificate());
    await assert.rejects(
      call(stranger, 'GetProviderSchema', {}),
      (err: { code?: number }) => err.code === 14,
    );
    stranger.close();
    // The pinned one still gets in.
    const host = pluginClient(plugin, 'tfplugin6.Provider');
    await call(host, 'GetMetadata', {});
    host.close();
  });

  it('a new server certificate every run', async () => {
    const first = await startPlugin();
    try {
      const second = await startPlugin();
      second.child.kill('SIGKILL');
      assert.notEqual(first.handshake.cert, second.handshake.cert);
      assert.notEqual(first.handshake.address, second.handshake.address);
    } finally {
      first.child.kill('SIGKILL');
    }
  });
});
