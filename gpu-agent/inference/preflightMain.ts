/**
 * Child process for preflightModel(): reads a GGUF's metadata and vocabulary (no weights, no GPU).
 * If llama.cpp aborts on the file, only this process dies.
 */
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: process.argv[2], vocabOnly: true });
process.stdout.write(JSON.stringify({ trainContextSize: model.trainContextSize }));
await model.dispose();
