/**
 * Runs a scenario file: `node --import tsx scripts/sim/run.ts scripts/sim/scenarios/rack-failure.yaml`
 * (or `drydock sim run FILE`). Starts its own dev server, fleet simulator and workers, prints each
 * step with its timing, and exits 0 when every step passed, 1 naming the first that failed, 2 for a
 * bad scenario file.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ScenarioRunner } from './runner.ts';
import { parseScenario, ScenarioError } from './scenario.ts';
import { SimStack } from './stack.ts';

/** Exit code: 0 passed, 1 a step failed, 2 the file is bad. */
export async function runScenarioFile(file: string, log: (line: string) => void = (l) => console.log(l)): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'drydock-sim-'));
  let stack: SimStack | undefined;
  try {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      log(`sim: cannot read ${file}: ${(err as Error).message}`);
      return 2;
    }
    const scenario = parseScenario(text, { work });
    log(`scenario ${scenario.name}: ${scenario.fleet.pools.map((p) => `${p.name} (${p.nodes} nodes)`).join(', ')}, ${scenario.steps.length} steps`);
    const t0 = Date.now();
    stack = new SimStack(scenario.fleet, work);
    await stack.start();
    log(`dev server, fleet simulator and workers up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await new ScenarioRunner(scenario, stack, log).run();
    log(`scenario ${scenario.name} passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } catch (err) {
    if (err instanceof ScenarioError) {
      log(`sim: ${file}: ${err.message}`);
      return 2;
    }
    log(`sim: ${(err as Error).message}`);
    return 1;
  } finally {
    await stack?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node --import tsx scripts/sim/run.ts SCENARIO.yaml');
    process.exit(2);
  }
  runScenarioFile(file).then((code) => process.exit(code));
}
