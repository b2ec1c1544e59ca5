import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The TensorFlow.js namespace; tfjs-node(-gpu) re-export the same API. */
export type TF = typeof import('@tensorflow/tfjs');

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

/** A device the native TensorFlow library sees (from drydock_tf_devices.node, built by scripts/install-tfjs-native.sh). */
export interface TfDevice {
  /** e.g. /job:localhost/replica:0/task:0/device:GPU:0 */
  name: string;
  /** CPU or GPU */
  type: string;
  /** Memory TensorFlow reserves on it (GPU: its allocator's limit; CPU: a nominal figure). */
  memoryBytes: number;
}

export interface LoadedBackend {
  tf: TF;
  /** The best backend that loaded on this host. */
  best: BackendName;
  /** Why the better ones did not load (shown in the trainer's start line). */
  skipped: string[];
  /** The TensorFlow library's version, on the native backends. */
  tensorflowVersion?: string;
  /** Devices that library sees, on the native backends when the device-list addon is installed. */
  devices?: TfDevice[];
}

/** Kernels a model's training needs that some backends lack (wasm has no convolution gradients). */
const REQUIRED_KERNELS: Record<string, string[]> = { mlp: [], cnn: ['Conv2DBackpropFilter', 'Conv2DBackpropInput'] };

let loaded: Promise<LoadedBackend> | undefined;

/**
 * Tries, in order: @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node (optional dependencies that need
 * libtensorflow: scripts/install-tfjs-native.sh builds them), then @tensorflow/tfjs with the wasm
 * backend, then its cpu backend.
 * `DRYDOCK_TF_BACKEND` (wasm or cpu) forces a pure-JS backend, e.g. for benchmarks.
 */
export function loadBackend(env: NodeJS.ProcessEnv = process.env): Promise<LoadedBackend> {
  loaded ??= (async () => {
    const skipped: string[] = [];
    const forced = env.DRYDOCK_TF_BACKEND;
    if (forced === undefined || forced === '') {
      // TensorFlow's C++ INFO lines (oneDNN, CPU features) on every start say nothing a trainer needs.
      process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
      for (const [pkg, name] of [['@tensorflow/tfjs-node-gpu', 'tensorflow-gpu'], ['@tensorflow/tfjs-node', 'tensorflow']] as const) {
        try {
          const mod = (await import(pkg as string)) as TF & { default?: TF };
          const tf = mod.default ?? mod;
          await tf.ready();
          return { tf, best: name, skipped, ...nativeInfo(tf, pkg, skipped) };
        } catch (err) {
          skipped.push(`${pkg}: ${firstLine(err)}`);
        }
      }
    }
    const tf = (await import('@tensorflow/tfjs')) as TF;
    if (forced !== 'cpu') {
      const why = await registerWasm(tf);
      if (why === undefined && (await tf.setBackend('wasm'))) {
        await tf.ready();
        return { tf, best: 'wasm', skipped };
      }
      skipped.push(why ?? 'wasm: setBackend returned false');
    }
    await tf.setBackend('cpu');
    await tf.ready();
    return { tf, best: 'cpu', skipped };
  })();
  return loaded;
}

/**
 * Registers the wasm backend with `tf` (also beside a native one, for benchmarks that compare them
 * in one process). Returns why it could not, or undefined.
 */
export async function registerWasm(tf: TF): Promise<string | undefined> {
  if (tf.findBackendFactory('wasm')) return undefined;
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    // Node cannot fetch the .wasm files by URL; point the backend at the installed ones.
    wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/');
    return undefined;
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm: ${firstLine(err)}`;
  }
}

/** TensorFlow's version (from tfjs-node's binding) and the devices it sees (from drydock's addon, when installed). */
function nativeInfo(tf: TF, pkg: string, skipped: string[]): Pick<LoadedBackend, 'tensorflowVersion' | 'devices'> {
  const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
  const out: Pick<LoadedBackend, 'tensorflowVersion' | 'devices'> = { tensorflowVersion: binding?.TF_Version };
  const require = createRequire(import.meta.url);
  const addon = join(dirname(require.resolve(`${pkg}/package.json`)), 'deps', 'lib', 'drydock_tf_devices.node');
  if (existsSync(addon)) {
    try {
      out.devices = (require(addon) as { listDevices(): TfDevice[] }).listDevices();
    } catch (err) {
      skipped.push(`device list: ${firstLine(err)}`);
    }
  }
  if (pkg.endsWith('-gpu') && out.devices && !out.devices.some((d) => d.type === 'GPU')) skipped.push(`${pkg}: TensorFlow sees no GPU, so it runs on its CPU device`);
  return out;
}

/** One line for the trainer's start line: `tensorflow (TensorFlow 2.15.1; devices CPU:0)`. */
export function describeBackend(lb: LoadedBackend): string {
  if (lb.tensorflowVersion === undefined) return lb.best;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const devices = lb.devices?.map((d) => `${d.name.replace(/^.*device:/, '')}${d.type === 'GPU' ? ` ${gib(d.memoryBytes)}` : ''}`).join(', ');
  return `${lb.best} (TensorFlow ${lb.tensorflowVersion}${devices ? `; devices ${devices}` : ''})`;
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
