/**
 * The tfplugin6.Provider service: schema, configuration and the resources'
 * lifecycle calls, each decoding its DynamicValues by the resource's type and
 * answering errors as diagnostics (never as gRPC errors, which the host shows
 * without naming the resource).
 */
import type * as grpc from '@grpc/grpc-js';
import { setConnector } from '../provider/runtime/connections';
import { disablePreflight } from '../provider/runtime/preflight';
import { collectWarnings } from '../provider/runtime/warnings';
import { configureFrom, providerSchema } from './config';
import { DATA_SOURCES } from './data-sources/data-sources';
import { attributeError, type Diagnostic, errorDiagnostic, warningDiagnostic } from './diagnostics';
import { afterInterruption, interruptedDiagnostic } from './interrupted';
import { guardedConnect, OperationInterrupted, runOperation, stopAll } from './operations';
import { BridgedResource, type ResourceBinding, type State } from './resources/bridge';
import { containerBinding } from './resources/container';
import { snapshotBinding } from './resources/snapshot';
import { syncFromSnapshotBinding } from './resources/sync-from-snapshot';
import { objectType, protoSchema } from './schema';
import { type Action, timeoutFailures, timeoutFor } from './timeouts';
import { decode, encode, fromJson } from './wire/cty';

type Request = Record<string, unknown> & { type_name?: string };
type Handler = (request: Request) => Promise<Record<string, unknown>>;

const BINDINGS: ResourceBinding[] = [containerBinding, snapshotBinding, syncFromSnapshotBinding];

export interface ProviderHooks {
  /** Called once per GetProviderSchema (start-up measurements). */
  onSchema?: () => void;
}

export function providerService(hooks: ProviderHooks = {}): grpc.UntypedServiceImplementation {
  // Terraform validates resources before it configures the provider: no agent to ask yet.
  disablePreflight();
  // Every agent call runs inside an operation that StopProvider or a timeout can interrupt.
  setConnector(guardedConnect);
  const resources = new Map(BINDINGS.map((b) => [b.typeName, new BridgedResource(b)]));
  const dv = (request: Request, field: string) => (request[field] as { msgpack?: Buffer } | null)?.msgpack;
  const resourceOf = (request: Request) => {
    const r = resources.get(String(request.type_name));
    if (!r) throw new Error(`unknown resource type ${request.type_name}`);
    return r;
  };
  const dataSources = new Map(DATA_SOURCES.map((d) => [d.typeName, d]));
  const dataSourceOf = (request: Request) => {
    const d = dataSources.get(String(request.type_name));
    if (!d) throw new Error(`unknown data source ${request.type_name}`);
    return d;
  };
  const typeOf = (r: BridgedResource) => objectType(r.binding.schema);
  const stateOf = (r: BridgedResource, bytes: Buffer | undefined) => decode(bytes, typeOf(r)) as State | null;
  const value = (r: BridgedResource, state: State | null) => ({ msgpack: encode(state, typeOf(r)) });

  const handlers: Record<string, Handler> = {
    async GetMetadata() {
      return {
        server_capabilities: { plan_destroy: false, get_provider_schema_optional: false },
        diagnostics: [],
        data_sources: DATA_SOURCES.map((d) => ({ type_name: d.typeName })),
        resources: BINDINGS.map((b) => ({ type_name: b.typeName })),
      };
    },
    async GetProviderSchema() {
      hooks.onSchema?.();
      return {
        provider: protoSchema(providerSchema),
        resource_schemas: Object.fromEntries(BINDINGS.map((b) => [b.typeName, protoSchema(b.schema)])),
        data_source_schemas: Object.fromEntries(DATA_SOURCES.map((d) => [d.typeName, protoSchema(d.schema)])),
        diagnostics: [],
        server_capabilities: { plan_destroy: false, get_provider_schema_optional: false },
      };
    },
    async ValidateProviderConfig(request) {
      decode(dv(request, 'config'), objectType(providerSchema));
      return { diagnostics: [] };
    },
    async ConfigureProvider(request) {
      configureFrom(decode(dv(request, 'config'), objectType(providerSchema)) as State | null);
      return { diagnostics: [] };
    },
    async ValidateResourceConfig(request) {
      const r = resourceOf(request);
      const config = stateOf(r, dv(request, 'config')) ?? {};
      const failures: Array<[string | string[], string]> = [
        ...(await r.validate(config)),
        ...timeoutFailures(config.timeouts),
      ];
      return { diagnostics: failures.map(([a, m]) => attributeError(r.binding.typeName, a, m)) };
    },
    async ValidateDataResourceConfig(request) {
      const d = dataSourceOf(request);
      const config = (decode(dv(request, 'config'), objectType(d.schema)) ?? {}) as State;
      const required = Object.entries(d.schema.attributes).filter(([, a]) => a.required);
      const empty = required.filter(([name]) => config[name] === '').map(([name]) => name);
      return { diagnostics: empty.map((a) => attributeError(d.typeName, a, `${a}: must not be empty`)) };
    },
    async UpgradeResourceState(request) {
      // Version 0 is the only version so far: the stored JSON is already the current shape.
      const r = resourceOf(request);
      const raw = request.raw_state as { json?: Buffer } | null;
      const state = raw?.json && raw.json.length > 0 ? (fromJson(raw.json, typeOf(r)) as State) : null;
      return { upgraded_state: value(r, state), diagnostics: [] };
    },
    async ReadResource(request) {
      const r = resourceOf(request);
      const current = stateOf(r, dv(request, 'current_state'));
      const now = current === null ? null : await runOperation(null, () => r.read(current));
      return { new_state: value(r, now), diagnostics: [], private: request.private ?? Buffer.alloc(0) };
    },
    async PlanResourceChange(request) {
      const r = resourceOf(request);
      const prior = stateOf(r, dv(request, 'prior_state'));
      const proposed = stateOf(r, dv(request, 'proposed_new_state'));
      const config = stateOf(r, dv(request, 'config'));
      const { planned, requiresReplace } = await runOperation(null, () => r.plan(prior, proposed, config));
      return {
        planned_state: value(r, planned),
        requires_replace: requiresReplace.map((a) => ({ steps: [{ attribute_name: a }] })),
        planned_private: request.prior_private ?? Buffer.alloc(0),
        diagnostics: [],
      };
    },
    async ApplyResourceChange(request) {
      const r = resourceOf(request);
      const prior = stateOf(r, dv(request, 'prior_state'));
      const planned = stateOf(r, dv(request, 'planned_state'));
      const action: Action = prior === null ? 'create' : planned === null ? 'delete' : 'update';
      const limit = timeoutFor((planned ?? prior)?.timeouts, action);
      const name = r.binding.importId((planned ?? prior)!);
      try {
        const reason = `${action} timed out after ${limit.text} (timeouts.${action})`;
        const { result: state, warnings } = await collectWarnings(() =>
          runOperation({ ms: limit.ms, reason }, () => r.apply(prior, planned)),
        );
        const diagnostics = warnings.map((w) => warningDiagnostic(r.binding.typeName, w));
        return { new_state: value(r, state), private: Buffer.alloc(0), diagnostics };
      } catch (err) {
        if (!(err instanceof OperationInterrupted)) throw err;
        const { state, recorded } = await afterInterruption(r, action, prior, planned, err);
        const diagnostic = interruptedDiagnostic(r.binding.typeName, name, action, err, recorded);
        return { new_state: value(r, state), private: Buffer.alloc(0), diagnostics: [diagnostic] };
      }
    },
    async ImportResourceState(request) {
      const r = resourceOf(request);
      const state = await runOperation(null, () => r.import(String(request.id)));
      return {
        imported_resources: [
          { type_name: r.binding.typeName, state: value(r, state), private: Buffer.alloc(0) },
        ],
        diagnostics: [],
      };
    },
    async ReadDataSource(request) {
      const d = dataSourceOf(request);
      const type = objectType(d.schema);
      const config = (decode(dv(request, 'config'), type) ?? {}) as State;
      const state = await runOperation(null, () => d.read(config));
      return { state: { msgpack: encode(state, type) }, diagnostics: [] };
    },
    async StopProvider() {
      // Answered at once; the calls in flight then return their diagnostics (operations.ts).
      stopAll('stopped: the CLI asked the provider to stop (an interrupt, Ctrl-C)');
      return { Error: '' };
    },
  };

  // Every failure becomes a diagnostic in the response (all responses carry `diagnostics`).
  return Object.fromEntries(
    Object.entries(handlers).map(([name, handler]) => [
      name,
      (call: grpc.ServerUnaryCall<Request, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        handler(call.request).then(
          (response) => callback(null, response),
          (err) => {
            const diagnostic: Diagnostic = errorDiagnostic(String(call.request.type_name ?? 'snapsync'), err);
            callback(null, { diagnostics: [diagnostic] });
          },
        );
      },
    ]),
  );
}
