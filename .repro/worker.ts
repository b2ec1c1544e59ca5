import { Worker, NativeConnection } from '@temporalio/worker';
const connection = await NativeConnection.connect({ address: process.argv[2] });
const w = await Worker.create({ connection, taskQueue: 'r', workflowsPath: new URL('./workflows.ts', import.meta.url).pathname, activities: { tick: async () => {} } });
console.log('READY');
await w.run();
