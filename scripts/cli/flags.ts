import { InvalidArgumentError } from 'commander';
import { POOL_NAME, POOL_NAME_HELP } from '../../workflows/inputs/validate.ts';
import { badInput } from './runtime.ts';

/**
 * Parsers of flag values for commander: a bad value exits 2 with commander's
 * "option '--x <n>' argument 'v' is invalid. <reason>".
 */

export function wholeNumber(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number');
  return Number(v);
}

export function positiveWholeNumber(v: string): number {
  if (!/^[1-9]\d*$/.test(v)) throw new InvalidArgumentError('expected a whole number above 0');
  return Number(v);
}

export function decimalNumber(v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v.trim())) throw new InvalidArgumentError('expected a number such as 0.05');
  return Number(v);
}

export function positiveNumber(v: string): number {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

export function isoDate(v: string): Date {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`'${v}' is not a date (use ISO 8601, e.g. 2026-11-23T00:00:00Z)`);
  return d;
}

/** A repeatable flag: every value, in order. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** A pool name (an argument or --pool) as the workflows accept it, or exit 2 naming the field. */
export function checkPoolName(pool: string): void {
  if (!POOL_NAME.test(pool)) throw badInput(`pool: '${pool}' is not valid: ${POOL_NAME_HELP}`);
}
