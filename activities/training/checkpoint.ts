import { createHash } from 'node:crypto';
import type { io, LayersModel } from '@tensorflow/tfjs';
import type { TF } from './backend.ts';
import type { ObjectStore } from './store.ts';

/** What drydock adds to a checkpoint's model.json. */
export interface CheckpointMeta {
  job: string;
  round: number;
  /** The job instance that wrote it (see JobRef.instance). */
  instance: string;
  /** L2 norm of the averaged delta that produced this round (absent for round 0). */
  deltaNorm?: number;
  /** sha256 of weights.bin, verified on every load. */
  weightsSha256: string;
  /** sha256 of momentum.bin (the outer optimizer's buffer), when there is one. */
  momentumSha256?: string;
  /**
   * sha256 of each shard's inner optimizer state saved with this round (`inner-<shard>-of-<W>.bin`),
   * by `<shard>-of-<W>`: the shard that runs next round restores it (DiLoCo keeps it across rounds).
   */
  innerStates?: Record<string, string>;
  parameters: number;
  createdAt: string;
}

export class ChecksumError extends Error {}
/** A checkpoint the job needs is not in the store (deleted from outside, or never written). */
export class CheckpointMissingError extends Error {}

/** `job/round-000007/`: zero-padded so that listing sorts by round. */
export function roundDir(job: string, round: number): string {
  return `${job}/round-${String(round).padStart(6, '0')}/`;
}

export function deltaDir(job: string, round: number): string {
  return `${job}/deltas/round-${String(round).padStart(6, '0')}/`;
}

export function deltaKey(job: string, round: number, shard: number, of: number): string {
  return `${deltaDir(job, round)}shard-${shard}-of-${of}.bin`;
}

/** Key of a shard's inner optimizer state within a checkpoint: one per shard of a given W. */
export function innerStateId(shard: number, of: number): string {
  return `${shard}-of-${of}`;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A float32 view of stored bytes (copied, so alignment is always right). */
export function floatsOf(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

/**
 * A tfjs IOHandler over an ObjectStore: `model.save(handler)` writes weights.bin, then model.json
 * (topology, weight specs and drydock's metadata with the checksum) last, so a checkpoint whose
 * model.json exists is complete. `tf.loadLayersModel(handler)` verifies the checksum.
 */
export function storeHandler(
  tf: TF,
  store: ObjectStore,
  dir: string,
  meta?: Omit<CheckpointMeta, 'weightsSha256' | 'parameters' | 'createdAt'>,
): io.IOHandler {
  return {
    async save(artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
      if (!meta) throw new Error('storeHandler: save needs checkpoint metadata');
      const data = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const weights = new Uint8Array(data);
      await store.put(`${dir}weights.bin`, weights);
      const drydock: CheckpointMeta = {
        ...meta,
        weightsSha256: sha256(weights),
        parameters: weights.byteLength / 4,
        createdAt: new Date().toISOString(),
      };
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: 'drydock',
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
        drydock,
      };
      await store.put(`${dir}model.json`, new TextEncoder().encode(JSON.stringify(json)));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    },
    async load(): Promise<io.ModelArtifacts> {
      const { json, weights } = await readCheckpointFiles(store, dir);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
      };
    },
  };
}

interface ModelJson {
  modelTopology: io.ModelArtifacts['modelTopology'];
  format?: string;
  generatedBy?: string;
  weightsManifest: { paths: string[]; weights: io.WeightsManifestEntry[] }[];
  drydock: CheckpointMeta;
}

async function readCheckpointFiles(store: ObjectStore, dir: string): Promise<{ json: ModelJson; weights: Uint8Array }> {
  const raw = await store.get(`${dir}model.json`);
  if (!raw) throw new CheckpointMissingError(`no checkpoint at ${store.uri}/${dir} (model.json missing)`);
  const json = JSON.parse(new TextDecoder().decode(raw)) as ModelJson;
  const weights = await store.get(`${dir}weights.bin`);
  if (!weights) throw new CheckpointMissingError(`checkpoint ${store.uri}/${dir} has no weights.bin`);
  const sum = sha256(weights);
  if (sum !== json.drydock?.weightsSha256) {
    throw new ChecksumError(`checkpoint ${store.uri}/${dir}: weights.bin sha256 ${sum} does not match model.json (${json.drydock?.weightsSha256})`);
  }
  return { json, weights };
}

export async function readMeta(store: ObjectStore, dir: string): Promise<CheckpointMeta | undefined> {
  const raw = await store.get(`${dir}model.json`);
  return raw ? (JSON.parse(new TextDecoder().decode(raw)) as ModelJson).drydock : undefined;
}

export interface LoadedCheckpoint {
  model: LayersModel;
  meta: CheckpointMeta;
  /** The outer optimizer's momentum buffer; zeros when the checkpoint has none. */
  momentum?: Float32Array;
}

export async function loadCheckpoint(tf: TF, store: ObjectStore, dir: string, withMomentum = false): Promise<LoadedCheckpoint> {
  const meta = await readMeta(store, dir);
  if (!meta) throw new CheckpointMissingError(`no checkpoint at ${store.uri}/${dir}`);
  const model = await tf.loadLayersModel(storeHandler(tf, store, dir));
  let momentum: Float32Array | undefined;
  if (withMomentum && meta.momentumSha256) {
    const bytes = await store.get(`${dir}momentum.bin`);
    if (!bytes || sha256(bytes) !== meta.momentumSha256) throw new ChecksumError(`checkpoint ${store.uri}/${dir}: momentum.bin is missing or corrupt`);
    momentum = floatsOf(bytes);
  }
  return { model, meta, momentum };
}

/** A shard's inner optimizer state saved with a checkpoint, verified; undefined when the checkpoint has none for it. */
export async function loadInnerState(store: ObjectStore, dir: string, meta: CheckpointMeta, id: string): Promise<Float32Array | undefined> {
  const want = meta.innerStates?.[id];
  if (want === undefined) return undefined;
  const bytes = await store.get(`${dir}inner-${id}.bin`);
  if (!bytes) throw new CheckpointMissingError(`checkpoint ${store.uri}/${dir} has no inner-${id}.bin`);
  if (sha256(bytes) !== want) throw new ChecksumError(`checkpoint ${store.uri}/${dir}: inner-${id}.bin does not match its sha256 in model.json`);
  return floatsOf(bytes);
}

/** Every inner optimizer state a checkpoint holds, by shard id (to carry them into a resumed job). */
export async function loadInnerStates(store: ObjectStore, dir: string, meta: CheckpointMeta): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const id of Object.keys(meta.innerStates ?? {})) out.set(id, (await loadInnerState(store, dir, meta, id))!);
  return out;
}

/** Writes a checkpoint: momentum.bin (if any), the shards' inner states (if any), weights.bin, then model.json. */
export async function saveCheckpoint(
  tf: TF,
  store: ObjectStore,
  dir: string,
  model: LayersModel,
  job: string,
  round: number,
  instance: string,
  momentum?: Float32Array,
  deltaNorm?: number,
  innerStates?: Map<string, Float32Array>,
): Promise<CheckpointMeta> {
  let momentumSha256: string | undefined;
  if (momentum) {
    const bytes = bytesOf(momentum);
    momentumSha256 = sha256(bytes);
    await store.put(`${dir}momentum.bin`, bytes);
  }
  let inner: Record<string, string> | undefined;
  for (const [id, state] of innerStates ?? []) {
    const bytes = bytesOf(state);
    (inner ??= {})[id] = sha256(bytes);
    await store.put(`${dir}inner-${id}.bin`, bytes);
  }
  await model.save(storeHandler(tf, store, dir, { job, round, instance, momentumSha256, deltaNorm, ...(inner ? { innerStates: inner } : {}) }));
  return (await readMeta(store, dir))!;
}

/** Rounds that have a complete checkpoint (model.json present), ascending. */
export async function listCheckpointRounds(store: ObjectStore, job: string): Promise<number[]> {
  const keys = await store.list(`${job}/`);
  const rounds = new Set<number>();
  for (const k of keys) {
    const m = /\/round-(\d{6})\/model\.json$/.exec(k);
    if (m && k.startsWith(`${job}/round-`)) rounds.add(Number(m[1]));
  }
  return [...rounds].sort((a, b) => a - b);
}

export async function removeDir(store: ObjectStore, dir: string): Promise<void> {
  // model.json first: a half-removed checkpoint is never mistaken for a complete one.
  await store.remove(`${dir}model.json`);
  for (const k of await store.list(dir)) await store.remove(k);
}
