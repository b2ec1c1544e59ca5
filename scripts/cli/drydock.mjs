#!/usr/bin/env node
// The `drydock` bin: loads tsx so the TypeScript CLI runs as-is, then hands over to main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exit(await main(process.argv));
