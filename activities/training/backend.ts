import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The TensorFlow.js namespace; tfjs-node(-gpu) re-export the same API. */
export type TF = typeof import('@tensorflow/tfjs');

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface LoadedBackend {
  tf: TF;
  /** The best backend that loaded on this host. */
  best: BackendName;
  /** Why the better ones did not load (shown in the trainer's start line). */
  skipped: string[];
}

/** Kernels a model's training needs that some backends lack (wasm has no convolution gradients). */
const REQUIRED_KERNELS: Record<string, string[]> = { mlp: [], cnn: ['Conv2DBackpropFilter', 'Conv2DBackpropInput'] };

let loaded: Promise<LoadedBackend> | undefined;

/**
 * Tries, in order: @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node (optional dependencies that need
 * libtensorflow), then @tensorflow/tfjs with the wasm backend, then its cpu backend.
 * `DRYDOCK_TF_BACKEND` (wasm or cpu) forces a pure-JS backend, e.g. for benchmarks.
 */
export function loadBackend(env: NodeJS.ProcessEnv = process.env): Promise<LoadedBackend> {
  loaded ??= (async () => {
    const skipped: string[] = [];
    const forced = env.DRYDOCK_TF_BACKEND;
    if (forced === undefined || forced === '') {
      for (const [pkg, name] of [['@tensorflow/tfjs-node-gpu', 'tensorflow-gpu'], ['@tensorflow/tfjs-node', 'tensorflow']] as const) {
        try {
          const mod = (await import(pkg as string)) as TF & { default?: TF };
          const tf = mod.default ?? mod;
          await tf.ready();
          return { tf, best: name, skipped };
        } catch (err) {
          skipped.push(`${pkg}: ${firstLine(err)}`);
        }
      }
    }
    const tf = (await import('@tensorflow/tfjs')) as TF;
    if (forced !== 'cpu') {
      try {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        const require = createRequire(import.meta.url);
        // Node cannot fetch the .wasm files by URL; point the backend at the installed ones.
        wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
        if (await tf.setBackend('wasm')) {
          await tf.ready();
          return { tf, best: 'wasm', skipped };
        }
        skipped.push('wasm: setBackend returned false');
      } catch (err) {
        skipped.push(`@tensorflow/tfjs-backend-wasm: ${firstLine(err)}`);
      }
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return { tf, best: 'cpu', skipped };
  })();
  return loaded;
}

/** The backend tf reports under a BackendName (tfjs-node calls both of its variants 'tensorflow'). */
function tfName(b: BackendName): string {
  return b === 'tensorflow-gpu' ? 'tensorflow' : b;
}

/** Whether `backend` has every kernel training `model` needs. */
export function supportsModel(tf: TF, backend: BackendName, model: string): boolean {
  return (REQUIRED_KERNELS[model] ?? []).every((k) => tf.getKernel(k, tfName(backend)) !== undefined);
}

/** The backend to train `model` on: the best one if it has the kernels, else cpu (which has them all). */
export function backendForModel(lb: LoadedBackend, model: string): BackendName {
  return supportsModel(lb.tf, lb.best, model) ? lb.best : 'cpu';
}

/** Switches tf to the backend for `model`; the trainer runs one activity at a time, so this is safe. */
export async function useBackendFor(lb: LoadedBackend, model: string): Promise<BackendName> {
  const want = backendForModel(lb, model);
  if (lb.tf.getBackend() !== tfName(want)) {
    if (!(await lb.tf.setBackend(tfName(want)))) throw new Error(`TensorFlow.js backend ${want} failed to initialise`);
  }
  return want;
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
