import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layering rules of DESIGN.md, read from every source file's imports and export-froms:
 * workflows/ take only types from activities/; activities/ take from workflows/ only types and
 * workflows/common/; workflows/common/ depends on nothing but itself and @temporalio/common (it runs
 * in the workflow sandbox and in Node); scripts/ never import test/. No new top-level folder.
 */

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SOURCE_DIRS = ['workflows', 'activities', 'workers', 'gpu-agent', 'scripts', 'test'];
const TOP_LEVEL = ['workflows', 'activities', 'workers', 'gpu-agent', 'scripts', 'test', 'docs', 'deploy'];

interface ImportRef {
  /** The importing file, relative to the repository root. */
  file: string;
  line: number;
  specifier: string;
  /** The imported file relative to the root, for relative specifiers; undefined for packages. */
  target?: string;
  typeOnly: boolean;
}

/** Files git knows of (tracked, or new and not ignored), relative to the root. */
function repoFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isImportDeclaration(node)) {
    const clause = node.importClause;
    if (!clause) return false; // `import 'x'` runs the module
    if (clause.isTypeOnly) return true;
    if (clause.name) return false;
    const bindings = clause.namedBindings;
    return !!bindings && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
  }
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return !!clause && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly);
}

/** Every import, export-from and dynamic import() of one file. */
function importsOf(file: string, text = readFileSync(join(REPO_ROOT, file), 'utf8')): ImportRef[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const refs: ImportRef[] = [];
  const add = (spec: ts.Expression, typeOnly: boolean) => {
    if (!ts.isStringLiteralLike(spec)) return;
    const specifier = spec.text;
    const target = specifier.startsWith('.') ? relative(REPO_ROOT, resolve(REPO_ROOT, dirname(file), specifier)) : undefined;
    refs.push({ file, line: source.getLineAndCharacterOfPosition(spec.getStart()).line + 1, specifier, target, typeOnly });
  };
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) add(node.moduleSpecifier, isTypeOnly(node));
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) add(node.arguments[0], false);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, true);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return refs;
}

const under = (path: string | undefined, dir: string) => path !== undefined && (path === dir || path.startsWith(`${dir}/`));

type Rule = 'common' | 'workflows' | 'activities' | 'scripts';

/** Which rule one import breaks, with a message naming file, line and import; undefined when it breaks none. */
function violation(r: ImportRef): { rule: Rule; message: string } | undefined {
  const at = `${r.file}:${r.line} imports '${r.specifier}'`;
  if (under(r.file, 'workflows/common')) {
    const ok = r.target ? under(r.target, 'workflows/common') : r.specifier === '@temporalio/common' || r.specifier.startsWith('@temporalio/common/');
    if (!ok) return { rule: 'common', message: `${at}: workflows/common/ may import only workflows/common/ and @temporalio/common (it must run in the sandbox and in Node)` };
  }
  if (under(r.file, 'workflows') && under(r.target, 'activities') && !r.typeOnly) {
    return { rule: 'workflows', message: `${at}: workflows import only types from activities/ (use \`import type\`, or move pure code to workflows/common/)` };
  }
  if (under(r.file, 'activities') && under(r.target, 'workflows') && !r.typeOnly && !under(r.target, 'workflows/common')) {
    return { rule: 'activities', message: `${at}: activities import from workflows/ only types and workflows/common/` };
  }
  if (under(r.file, 'scripts') && under(r.target, 'test')) return { rule: 'scripts', message: `${at}: scripts/ never import from test/ (shared helpers live under scripts/)` };
  return undefined;
}

let scanned: { rule: Rule; message: string }[] | undefined;
/** Messages for every import in the repository that breaks `rule`. */
function broken(rule: Rule): string[] {
  scanned ??= repoFiles()
    .filter((f) => SOURCE_DIRS.some((d) => under(f, d)) && /\.(ts|mts|cts|mjs|js)$/.test(f) && !under(f, 'test/fixtures'))
    .flatMap((f) => importsOf(f).map(violation))
    .filter((v) => v !== undefined);
  return scanned.filter((v) => v.rule === rule).map((v) => v.message);
}

describe('layering: who may import what', () => {
  it('reads imports, export-froms and type-only specifiers correctly', () => {
    const refs = importsOf(
      'workflows/x.ts',
      [
        "import type { A } from '../activities/a.ts';",
        "import { type B, type C } from '../activities/b.ts';",
        "import { type D, e } from '../activities/c.ts';",
        "import * as f from '../activities/d.ts';",
        "import g from '../activities/e.ts';",
        "import '../activities/f.ts';",
        "export type { H } from '../activities/g.ts';",
        "export { i } from '../activities/h.ts';",
        "export * from '../activities/i.ts';",
        "const j = await import('../activities/j.ts');",
        "type K = import('../activities/k.ts').K;",
        "import {\n  type L,\n} from '@temporalio/workflow';",
      ].join('\n'),
    );
    assert.deepEqual(
      refs.map((r) => [r.target ?? r.specifier, r.typeOnly]),
      [
        ['activities/a.ts', true],
        ['activities/b.ts', true],
        ['activities/c.ts', false],
        ['activities/d.ts', false],
        ['activities/e.ts', false],
        ['activities/f.ts', false],
        ['activities/g.ts', true],
        ['activities/h.ts', false],
        ['activities/i.ts', false],
        ['activities/j.ts', false],
        ['activities/k.ts', true],
        ['@temporalio/workflow', true],
      ],
    );
    assert.deepEqual(refs.filter((r) => violation(r)).map((r) => r.line), [3, 4, 5, 6, 8, 9, 10]);
    assert.equal(violation(refs[2])?.message.startsWith("workflows/x.ts:3 imports '../activities/c.ts': workflows import only types"), true);
  });

  it('workflows/ import only types from activities/', () => {
    assert.deepEqual(broken('workflows'), []);
  });

  it('activities/ import from workflows/ only types and workflows/common/', () => {
    assert.deepEqual(broken('activities'), []);
  });

  it('workflows/common/ depends only on itself and @temporalio/common', () => {
    assert.deepEqual(broken('common'), []);
  });

  it('scripts/ never import from test/', () => {
    assert.deepEqual(broken('scripts'), []);
  });

  it('no new top-level folder', () => {
    const folders = [...new Set(repoFiles().filter((f) => f.includes('/')).map((f) => f.split('/')[0]))];
    assert.deepEqual(folders.filter((d) => !d.startsWith('.') && !TOP_LEVEL.includes(d)), [], `allowed: ${TOP_LEVEL.join(', ')} and dot-folders`);
  });
});
