import { getLlama, LlamaCompletion } from 'node-llama-cpp';
let t0 = Date.now();
const lap = (m) => { console.log(m, Date.now() - t0); t0 = Date.now(); };
const llama = await getLlama({ gpu: 'auto', build: 'never' }); lap('getLlama');
const model = await llama.loadModel({ modelPath: process.argv[2], gpuLayers: 'auto' }); lap('load');
const ctx = await model.createContext({ sequences: 2, contextSize: 512 }); lap('ctx');
const seq = ctx.getSequence();
const comp = new LlamaCompletion({ contextSequence: seq });
let out = await comp.generateCompletion('hello world the gpu', { maxTokens: 16 }); lap('gen1');
out = await comp.generateCompletion('hello world the gpu', { maxTokens: 64 }); lap('gen2 64');
seq.dispose(); lap('dispose')
console.log(llama.cpuMathCores, await llama.getVramState());
