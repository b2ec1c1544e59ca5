import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** drydock's search attributes; the dev stack, tests and `drydock setup` register these. */
export const DRYDOCK_POOL = defineSearchAttributeKey('DrydockPool', SearchAttributeType.KEYWORD);
export const DRYDOCK_NODE = defineSearchAttributeKey('DrydockNode', SearchAttributeType.KEYWORD);
export const DRYDOCK_PHASE = defineSearchAttributeKey('DrydockPhase', SearchAttributeType.KEYWORD);

export const DRYDOCK_SEARCH_ATTRIBUTES = [DRYDOCK_POOL, DRYDOCK_NODE, DRYDOCK_PHASE];
