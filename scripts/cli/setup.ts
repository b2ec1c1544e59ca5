import type { Command } from 'commander';
import type { SearchAttributeType } from '@temporalio/common';
import { DRYDOCK_SEARCH_ATTRIBUTES } from '../../workflows/searchAttributes.ts';
import { badInput, globals, output, withClient } from './runtime.ts';

/** temporal.api.enums.v1.IndexedValueType numbers (the SDK does not export its encoder). */
const INDEXED_VALUE_TYPE: Record<SearchAttributeType, number> = { TEXT: 1, KEYWORD: 2, INT: 3, DOUBLE: 4, BOOL: 5, DATETIME: 6, KEYWORD_LIST: 7 };

/** Every search attribute a drydock workflow upserts. */
export const SETUP_SEARCH_ATTRIBUTES = DRYDOCK_SEARCH_ATTRIBUTES;

/**
 * `drydock setup`: registers drydock's search attributes in the namespace through the operator
 * service (self-hosted and dev servers). Idempotent: attributes already there are left alone.
 */
export function registerSetupCommand(program: Command): void {
  program
    .command('setup')
    .description(
      `register drydock's search attributes (${SETUP_SEARCH_ATTRIBUTES.map((k) => k.name).join(', ')}) in the namespace; ` +
        'on Temporal Cloud add them with tcld or the Cloud UI instead (the operator API is not open there)',
    )
    .action(async (_opts, cmd: Command) => {
      const o = globals(cmd);
      const result = await withClient(o, async (client) => {
        const namespace = client.options.namespace;
        const { operatorService } = client.connection;
        const existing = (await operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
        const added: string[] = [];
        const present: string[] = [];
        const missing: Record<string, number> = {};
        for (const key of SETUP_SEARCH_ATTRIBUTES) {
          const want = INDEXED_VALUE_TYPE[key.type];
          const have = existing[key.name];
          if (have === undefined) {
            missing[key.name] = want;
            added.push(key.name);
          } else if (have !== want) {
            throw badInput(`search attribute ${key.name} exists in namespace ${namespace} with another type; drydock needs ${key.type}`);
          } else {
            present.push(key.name);
          }
        }
        if (added.length) await operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
        return { namespace, added, present };
      });
      output(o, result, () =>
        [
          `namespace ${result.namespace}:`,
          ...result.added.map((n) => `  added ${n}`),
          ...result.present.map((n) => `  ${n} already registered`),
        ].join('\n'),
      );
    });
}
