import { fileURLToPath } from 'node:url';

/** The module the worker bundles: every workflow type drydock runs. */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
