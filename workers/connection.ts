import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import { dataConverterFromEnv } from './codec.ts';

/**
 * Connection settings the same way the `temporal` CLI reads them: the config file's profile
 * (TEMPORAL_PROFILE), then TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TLS vars.
 */
export function connectConfig() {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  return { connectionOptions, namespace: namespace ?? 'default' };
}

export async function connectWorker(): Promise<{ connection: NativeConnection; namespace: string }> {
  const { connectionOptions, namespace } = connectConfig();
  return { connection: await NativeConnection.connect(connectionOptions), namespace };
}

/** A client with drydock's data converter (payload encryption when DRYDOCK_CODEC_KEY(_FILE) is set). */
export async function connectClient(overrides: Partial<ConnectionOptions> = {}): Promise<Client> {
  const { connectionOptions, namespace } = connectConfig();
  const connection = await Connection.connect({ ...connectionOptions, ...overrides });
  return new Client({ connection, namespace, dataConverter: dataConverterFromEnv() });
}
