import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** drydock's search attributes, in one list: the dev stack, tests and `drydock setup` register these. */
export const DRYDOCK_POOL = defineSearchAttributeKey('DrydockPool', SearchAttributeType.KEYWORD);
export const DRYDOCK_NODE = defineSearchAttributeKey('DrydockNode', SearchAttributeType.KEYWORD);
export const DRYDOCK_PHASE = defineSearchAttributeKey('DrydockPhase', SearchAttributeType.KEYWORD);
/** Velero's phases for backups: `DrydockBackupPhase = 'PartiallyFailed'` finds them in the Web UI. */
export const DRYDOCK_BACKUP_PHASE = defineSearchAttributeKey('DrydockBackupPhase', SearchAttributeType.KEYWORD);
/** Mean training loss of a job's last round, for the Web UI's list and `DrydockTrainLoss < 0.5` queries. */
export const DRYDOCK_TRAIN_LOSS = defineSearchAttributeKey('DrydockTrainLoss', SearchAttributeType.DOUBLE);

export const DRYDOCK_SEARCH_ATTRIBUTES = [DRYDOCK_POOL, DRYDOCK_NODE, DRYDOCK_PHASE, DRYDOCK_BACKUP_PHASE, DRYDOCK_TRAIN_LOSS];
