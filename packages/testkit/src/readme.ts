import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

/** One runnable example of a README: a ```ts block and the ```text block that shows its output. */
export interface ReadmeExample {
  /** 1-based index of the example among the README's ```ts blocks. */
  index: number;
  /** The TypeScript source. */
  code: string;
  /** The lines the README says the example prints (from the ```text block right after it), if any. */
  expectedOutput: string[] | undefined;
}

/**
 * Extracts every ```ts block of a README, each with the ```text block that follows it (after at most
 * a line or two of prose) as its expected output.
 */
export function readmeExamples(readmePath: string): ReadmeExample[] {
  const text = readFileSync(readmePath, 'utf8');
  const re = /```(ts|typescript|text)\n([\s\S]*?)```/g;
  const blocks: { lang: string; body: string; start: number; end: number }[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    blocks.push({ lang: m[1] ?? '', body: m[2] ?? '', start: m.index, end: m.index + m[0].length });
  }
  const out: ReadmeExample[] = [];
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]!;
    if (b.lang === 'text') continue;
    const next = blocks[i + 1];
    const between = next ? text.slice(b.end, next.start) : '';
    const expected =
      next && next.lang === 'text' && between.split('\n').length <= 4
        ? next.body.replace(/\n$/, '').split('\n')
        : undefined;
    out.push({ index: out.length + 1, code: b.body, expectedOutput: expected });
  }
  return out;
}

/**
 * Runs a README example as a module and returns what it printed with `console.log`, one string a line.
 *
 * Imports of `selfName` (the package's own name) are pointed at `srcEntry` (its source), so the example
 * runs against the code under test; other imports resolve as a user's would. Call it inside a vitest test.
 *
 * @param pkgDir the package directory (the example file is written under `pkgDir/.vitest-readme/`)
 */
export async function runReadmeExample(
  pkgDir: string,
  example: ReadmeExample,
  selfName: string,
  srcEntry = 'src/index.ts',
): Promise<string[]> {
  const dir = join(pkgDir, '.vitest-readme');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `example-${example.index}.ts`);
  const rel = relative(dirname(file), join(pkgDir, srcEntry)).replace(/\\/g, '/');
  const escaped = selfName.replace(/[/\\^$*+?.()|[\]{}]/g, '\\$&');
  const code = example.code.replace(new RegExp(`(['"])${escaped}\\1`, 'g'), `'./${rel}'`.replace('/./', '/'));
  writeFileSync(file, code.replace(`'./../`, `'../`));
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...args: unknown[]) => {
    lines.push(args.map((a) => (typeof a === 'string' ? a : String(a))).join(' '));
  };
  try {
    await import(/* @vite-ignore */ `${pathToFileURL(file).href}?t=${Date.now()}`);
  } finally {
    console.log = orig;
  }
  return lines;
}
