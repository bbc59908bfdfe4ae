/** Errors as the user sees them: diagnostics naming the resource, the agent's code and, where one applies, the attribute. */
import { ProviderError } from '../provider/runtime/errors';
import type { ResourceWarning } from '../provider/runtime/warnings';

export interface Diagnostic {
  severity: number; // tfplugin6.Diagnostic.Severity: 1 ERROR, 2 WARNING
  summary: string;
  detail: string;
  attribute?: { steps: Array<{ attribute_name: string }> };
}

export const ERROR = 1;
export const WARNING = 2;

/** A warning the agent's answer carried (the apply went through). */
export function warningDiagnostic(resource: string, w: ResourceWarning): Diagnostic {
  return {
    severity: WARNING,
    summary: `${resource} "${w.name}": [${w.code}]`,
    detail: w.message,
  };
}

/** `attribute`: a name, or a path into a nested block (["timeouts", "create"]). */
export function attributeError(resource: string, attribute: string | string[], message: string): Diagnostic {
  const path = typeof attribute === 'string' ? [attribute] : attribute;
  return {
    severity: ERROR,
    summary: `${resource}: invalid ${path.join('.')}`,
    detail: message,
    attribute: { steps: path.map((a) => ({ attribute_name: a })) },
  };
}

export function errorDiagnostic(resource: string, err: unknown): Diagnostic {
  if (err instanceof ProviderError) {
    return {
      severity: ERROR,
      summary: `${resource} "${err.container}": ${err.operation} failed [${err.code}]`,
      detail: err.message,
    };
  }
  const e = err as { code?: string; message?: string };
  return {
    severity: ERROR,
    summary: `${resource}: ${e.code ? `[${e.code}] ` : ''}${e.message ?? String(err)}`,
    detail: e.message ?? String(err),
  };
}
