import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatLikeConsole, type ReadmeExample, readmeExamples, runReadmeExample } from './readme.js';

const testkitDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/** A throw-away package inside the git-ignored .vitest-readme/ (so tsx and typescript resolve from the repo). */
const fixture = join(testkitDir, '.vitest-readme', 'fixture-pkg');

/** What Node itself prints for a module, run in a child process (tsx for the TypeScript). */
function nodePrints(file: string): string[] {
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: fixture, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node failed: ${r.stderr}`);
  return r.stdout.replace(/\n$/, '').split('\n');
}

const PRINTING = `import { answer } from '@tmp/pkg';
import { twice } from '@tmp/pkg/sub';
console.log('answer', answer, [511, 510, 0, 0]);
console.log({ a: 1, b: 'x', c: [1.5, -0], d: 10n, e: null, f: undefined }, new Map([[1, { deep: { deeper: { deepest: 1 } } }]]));
console.info(twice(21), 'str', \`%s is %d\`, 'x', 42);
console.debug(Array.from({ length: 30 }, (_, i) => i * 1000));
console.dir({ a: { b: { c: { d: 1 } } } }, { depth: 0 });
console.log(new Error('boom').message, Symbol('s'), [undefined, null], { 'needs quotes': true });
`;

const README = `# fixture

\`\`\`sh
npm install @tmp/pkg
\`\`\`

\`\`\`ts
${PRINTING}\`\`\`

\`\`\`text
placeholder
\`\`\`

A type error:

\`\`\`ts
const n: number = 'not a number';
console.log(n);
\`\`\`

An import the install line does not name:

\`\`\`ts
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'path';
console.log(typeof fc.integer, typeof readFileSync, typeof join);
\`\`\`
`;

let examples: ReadmeExample[] = [];

beforeAll(() => {
  rmSync(fixture, { recursive: true, force: true });
  mkdirSync(join(fixture, 'src'), { recursive: true });
  writeFileSync(
    join(fixture, 'package.json'),
    JSON.stringify({
      name: '@tmp/pkg',
      private: true,
      type: 'module',
      exports: {
        '.': { types: './dist/index.d.ts', import: './dist/index.js', default: './dist/index.js' },
        './sub': { types: './dist/sub.d.ts', import: './dist/sub.js', default: './dist/sub.js' },
      },
    }),
  );
  writeFileSync(
    join(fixture, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../../../tsconfig.base.json',
      compilerOptions: { rootDir: '.', noEmit: true },
      include: ['src'],
    }),
  );
  writeFileSync(join(fixture, 'src/index.ts'), 'export const answer: number = 42;\n');
  writeFileSync(
    join(fixture, 'src/sub.ts'),
    'export function twice(n: number): number {\n  return 2 * n;\n}\n',
  );
  writeFileSync(join(fixture, 'README.md'), README);
  examples = readmeExamples(join(fixture, 'README.md'));
}, 60_000);

describe('README runner', () => {
  it('finds the examples, their outputs and the install line', () => {
    expect(examples.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(examples[0]?.expectedOutput).toEqual(['placeholder']);
    expect(examples[1]?.expectedOutput).toBeUndefined();
    expect(examples[0]?.installed).toEqual(['@tmp/pkg']);
  });

  it('prints exactly what Node prints (issue #9: [ 511, 510, 0, 0 ], not 511,510,0,0)', async () => {
    const ex = examples[0]!;
    expect(ex.typeErrors).toEqual([]);
    const lines = await runReadmeExample(fixture, ex, '@tmp/pkg');
    expect(lines[0]).toBe('answer 42 [ 511, 510, 0, 0 ]');
    // the same module run by Node in a child process
    expect(lines).toEqual(nodePrints(join(fixture, '.vitest-readme', 'example-1.ts')));
    expect(lines.length).toBeGreaterThan(6); // multi-line values give several lines
  }, 30_000);

  it('formatLikeConsole is util.format as console.log uses it', () => {
    expect(formatLikeConsole([511, 510, 0, 0])).toBe('[ 511, 510, 0, 0 ]');
    expect(formatLikeConsole('a', 1, 10n, { x: 'y' })).toBe("a 1 10n { x: 'y' }");
    expect(formatLikeConsole('%d%%', 5)).toBe('5%');
  });

  it('type-checks every example strictly and refuses to run one that does not compile', async () => {
    const ex = examples[1]!;
    expect(ex.typeErrors?.join('\n')).toMatch(
      /^line 1: TS2322: Type 'string' is not assignable to type 'number'/,
    );
    await expect(runReadmeExample(fixture, ex, '@tmp/pkg')).rejects.toThrow(/does not type-check/);
  });

  it('refuses an example that imports a package the install line does not name', async () => {
    const ex = examples[2]!;
    expect(ex.typeErrors).toEqual([]);
    await expect(runReadmeExample(fixture, ex, '@tmp/pkg')).rejects.toThrow(
      "README example 3 imports fast-check, which the README's install command does not install (it names @tmp/pkg)",
    );
    // node: and bare built-in modules need no install
    expect(
      await runReadmeExample(fixture, { ...ex, installed: ['@tmp/pkg', 'fast-check'] }, '@tmp/pkg'),
    ).toEqual(['function function function']);
  });
});
