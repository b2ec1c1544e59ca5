// Every workflow type the control worker runs; names here are public API.
export { replaceNode } from './replaceNode.ts';
export { trainingJob } from './trainingJob.ts';
export { backup } from './backup.ts';
export { restore } from './restore.ts';
export { fleetPool } from './fleetPool.ts';
export { verifyBackup } from './verifyBackup.ts';
export { rollingUpdate } from './rollingUpdate.ts';
