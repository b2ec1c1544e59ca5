import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { badInput } from './runtime.ts';

/**
 * A workflow input written as YAML or JSON (`--spec`, `pool apply -f`): one object, or exit 2
 * naming the flag, the file and what is wrong with it. The workflow's parser checks the fields.
 */
export function readSpecFile(file: string, flag: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw badInput(`${flag}: cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw badInput(`${flag}: ${file} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw badInput(`${flag}: ${file} must hold one object (${what})`);
  return doc;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A copy of `v` when it is an object, else an empty one: for overriding a spec's nested fields. */
export function objectOrEmpty(v: unknown): Record<string, unknown> {
  return isObject(v) ? { ...v } : {};
}

/** Flags on top of a spec: sets each field whose value is defined, leaves the spec's others alone. */
export function assignDefined(target: Record<string, unknown>, fields: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) target[k] = v;
}
