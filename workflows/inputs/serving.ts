import { invalidArgument } from '../common/errors.ts';
import { modelRef, type ModelRef } from './rollingUpdate.ts';
import { nested, rejectUnknown, requireObject, type Obj } from './validate.ts';

/**
 * A pool's desired serving state (`serving` in the pool spec): the model every member serves.
 * Every node that joins is brought to it before it counts; drift is converged through the
 * disruption budget (`reconcile: converge`, the default) or only reported (`report`).
 */
export interface ServingSpec {
  model: ModelRef;
  reconcile?: 'converge' | 'report';
}

export interface ServingConfig {
  model: ModelRef;
  reconcile: 'converge' | 'report';
}

export const SERVING_DEFAULTS = { reconcile: 'converge' } as const;

/** `obj` is the spec's `serving` object; errors name `serving.<field>`. */
export function parseServing(obj: Obj): ServingConfig {
  return nested('serving.', () => parseServingFields(obj));
}

function parseServingFields(obj: Obj): ServingConfig {
  rejectUnknown(obj, ['model', 'reconcile']);
  if (obj.model === undefined) throw invalidArgument('model', 'is required, e.g. {"uri": "/models/m.gguf", "sha256": "…"}');
  const model = nestedModel(obj.model);
  const r = obj.reconcile ?? SERVING_DEFAULTS.reconcile;
  if (r !== 'converge' && r !== 'report') throw invalidArgument('reconcile', `expected 'converge' or 'report', got ${JSON.stringify(r)}`);
  return { model, reconcile: r };
}

function nestedModel(raw: unknown): ModelRef {
  const obj = requireObject(raw, 'model');
  try {
    return modelRef(obj);
  } catch (err) {
    if (err instanceof Error && (err as { type?: string }).type === 'InvalidArgument') {
      throw invalidArgument(`model.${err.message.split(':')[0]}`, err.message.slice(err.message.indexOf(':') + 2));
    }
    throw err;
  }
}
