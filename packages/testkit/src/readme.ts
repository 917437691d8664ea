import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { formatWithOptions, type InspectOptions, inspect } from 'node:util';

/** One runnable example of a README: a ```ts block and the ```text block that shows its output. */
export interface ReadmeExample {
  /** 1-based index of the example among the README's ```ts blocks. */
  index: number;
  /** The TypeScript source. */
  code: string;
  /** The lines the README says the example prints (from the ```text block right after it), if any. */
  expectedOutput: string[] | undefined;
  /**
   * What `tsc` (the package's strict tsconfig) reports on the example, one formatted diagnostic each;
   * empty when it type-checks. Filled by {@link readmeExamples}; {@link runReadmeExample} refuses to run
   * an example with type errors.
   */
  typeErrors?: readonly string[];
  /**
   * The packages the README's install commands (`npm install …`, `pnpm add …`) name, when it has any;
   * {@link runReadmeExample} checks that the example imports no other package.
   */
  installed?: readonly string[];
}

/** The directory (under the package, git-ignored) where examples are written to be run and checked. */
export const README_EXAMPLE_DIR = '.vitest-readme';

/**
 * Formats `console.log` arguments exactly as Node prints them to a non-TTY stdout
 * (`util.formatWithOptions` without colors): `[ 511, 510, 0, 0 ]`, `{ a: 1 }`, `10n`, strings as is.
 */
export function formatLikeConsole(...args: unknown[]): string {
  return formatWithOptions({}, ...args);
}

/**
 * Extracts every ```ts block of a README, each with the ```text block that follows it (after at most
 * a line or two of prose) as its expected output, and type-checks them all at once.
 *
 * Each example is written to `<package>/.vitest-readme/example-N.ts` with imports of the package's own
 * name (and of its subpath exports, from `package.json` `exports`) pointed at its sources, and the whole
 * set is type-checked with the package's `tsconfig.json` (the repository's strict options, `noEmit`);
 * the diagnostics land in each example's `typeErrors`. This runs synchronously when the test file is
 * collected, so it does not count against any test's timeout.
 */
export function readmeExamples(readmePath: string): ReadmeExample[] {
  const text = readFileSync(readmePath, 'utf8');
  const re = /```(ts|typescript|text)\n([\s\S]*?)```/g;
  const blocks: { lang: string; body: string; start: number; end: number }[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    blocks.push({ lang: m[1] ?? '', body: m[2] ?? '', start: m.index, end: m.index + m[0].length });
  }
  const installed = installedPackages(text);
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
    const ex: ReadmeExample = { index: out.length + 1, code: b.body, expectedOutput: expected };
    if (installed !== undefined) ex.installed = installed;
    out.push(ex);
  }
  const pkgDir = dirname(resolve(readmePath));
  const pkg = readPackageJson(pkgDir);
  if (pkg?.name !== undefined && out.length > 0) typecheck(pkgDir, pkg.name, out);
  return out;
}

/**
 * Runs a README example as a module and returns what it printed on stdout through `console.log`,
 * `console.info`, `console.debug` and `console.dir`, formatted as Node formats them (see
 * {@link formatLikeConsole}), one string a line (a value printed over several lines gives several).
 *
 * Imports of `selfName` (the package's own name) are pointed at `srcEntry` (its source), and imports of
 * its subpath exports at their sources, so the example runs against the code under test; other imports
 * resolve as a user's would. Throws (failing the test) when the example has type errors or imports a
 * package that the README's install command does not name. Call it inside a vitest test.
 *
 * @param pkgDir the package directory (the example file is written under `pkgDir/.vitest-readme/`)
 * @param srcEntry the source of the package's main entry, relative to `pkgDir` (default: derived from
 *   the `types` target of `exports["."]`, `./dist/x.d.ts` → `src/x.ts`, else `src/index.ts`)
 */
export async function runReadmeExample(
  pkgDir: string,
  example: ReadmeExample,
  selfName: string,
  srcEntry?: string,
): Promise<string[]> {
  if (example.typeErrors !== undefined && example.typeErrors.length > 0) {
    throw new Error(
      `README example ${example.index} does not type-check (strict):\n  ${example.typeErrors.join('\n  ')}`,
    );
  }
  if (example.installed !== undefined) checkInstalled(example, selfName, example.installed);
  const file = writeExample(pkgDir, example, selfName, srcEntry);
  const lines: string[] = [];
  const push = (s: string): void => {
    for (const line of s.split('\n')) lines.push(line);
  };
  const saved = { log: console.log, info: console.info, debug: console.debug, dir: console.dir };
  console.log = (...args: unknown[]) => push(formatLikeConsole(...args));
  console.info = console.log;
  console.debug = console.log;
  console.dir = (obj: unknown, options?: InspectOptions) =>
    push(inspect(obj, { customInspect: false, ...options }));
  try {
    await import(/* @vite-ignore */ `${pathToFileURL(file).href}?t=${Date.now()}`);
  } finally {
    Object.assign(console, saved);
  }
  return lines;
}

interface PackageJson {
  name?: string;
  exports?: unknown;
}

function readPackageJson(pkgDir: string): PackageJson | undefined {
  const f = join(pkgDir, 'package.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as PackageJson) : undefined;
}

/** Specifier → source file (absolute) for the package's own name and its subpath exports. */
function selfImports(pkgDir: string, selfName: string, srcEntry: string | undefined): Map<string, string> {
  const map = new Map<string, string>();
  const exp = readPackageJson(pkgDir)?.exports;
  if (typeof exp === 'object' && exp !== null && !Array.isArray(exp)) {
    for (const [key, target] of Object.entries(exp as Record<string, unknown>)) {
      if (!(key === '.' || key.startsWith('./')) || key.includes('*')) continue;
      const t =
        typeof target === 'string'
          ? target
          : typeof target === 'object' && target !== null
            ? ((target as Record<string, unknown>).types ?? (target as Record<string, unknown>).import)
            : undefined;
      if (typeof t !== 'string' || !t.startsWith('./dist/')) continue;
      const src = join(pkgDir, `src/${t.slice('./dist/'.length).replace(/\.d\.ts$|\.js$/, '.ts')}`);
      if (existsSync(src)) map.set(key === '.' ? selfName : `${selfName}/${key.slice(2)}`, src);
    }
  }
  if (srcEntry !== undefined || !map.has(selfName))
    map.set(selfName, join(pkgDir, srcEntry ?? 'src/index.ts'));
  // longest specifier first, so that `pkg/sub` is rewritten before `pkg` could match a prefix
  return new Map([...map].sort((a, b) => b[0].length - a[0].length));
}

function escapeRe(s: string): string {
  return s.replace(/[/\\^$*+?.()|[\]{}]/g, '\\$&');
}

/** Writes the example (self imports pointed at the sources) and returns its path. */
function writeExample(
  pkgDir: string,
  example: ReadmeExample,
  selfName: string,
  srcEntry: string | undefined,
): string {
  const dir = join(pkgDir, README_EXAMPLE_DIR);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `example-${example.index}.ts`);
  let code = example.code;
  for (const [spec, src] of selfImports(pkgDir, selfName, srcEntry)) {
    let rel = relative(dir, src).replace(/\\/g, '/');
    if (!rel.startsWith('.')) rel = `./${rel}`;
    code = code.replace(new RegExp(`(['"])${escapeRe(spec)}\\1`, 'g'), `'${rel}'`);
  }
  writeFileSync(file, code);
  return file;
}

/** Type-checks every example with the package's tsconfig; fills `typeErrors`. */
function typecheck(pkgDir: string, selfName: string, examples: ReadmeExample[]): void {
  const req = createRequire(join(pkgDir, 'package.json'));
  const ts = req('typescript') as typeof import('typescript');
  const files = examples.map((ex) => writeExample(pkgDir, ex, selfName, undefined));
  const configPath = join(pkgDir, 'tsconfig.json');
  let options: import('typescript').CompilerOptions;
  if (existsSync(configPath)) {
    const parsed = ts.getParsedCommandLineOfConfigFile(
      configPath,
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        },
      },
    );
    if (parsed === undefined) throw new Error(`cannot read ${configPath}`);
    options = parsed.options;
  } else {
    options = {
      strict: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
    };
  }
  options = { ...options, noEmit: true, allowImportingTsExtensions: true, incremental: false };
  delete options.tsBuildInfoFile;
  const program = ts.createProgram(files, options);
  const host: import('typescript').FormatDiagnosticsHost = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => pkgDir,
    getNewLine: () => '\n',
  };
  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map((d) =>
    ts.formatDiagnostic(d, host).trim(),
  );
  examples.forEach((ex, i) => {
    const sf = program.getSourceFile(files[i]!);
    const diags = sf ? [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)] : [];
    ex.typeErrors = [
      ...global,
      ...diags.map((d) => {
        const where =
          d.file && d.start !== undefined
            ? `line ${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: `
            : '';
        return `${where}TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      }),
    ];
  });
}

/** The packages named by the README's `npm install` / `npm i` / `pnpm add` / `yarn add` lines, if any. */
function installedPackages(readme: string): string[] | undefined {
  const names: string[] = [];
  let found = false;
  for (const line of readme.split('\n')) {
    const m = /^\s*(?:\$\s*)?(?:npm\s+(?:install|i)|pnpm\s+(?:add|install|i)|yarn\s+add)\s+(.*)$/.exec(line);
    if (!m) continue;
    found = true;
    for (const word of (m[1] ?? '').split(/\s+/)) {
      if (word === '' || word.startsWith('-') || word === '&&') continue;
      names.push(packageName(word));
    }
  }
  return found ? names : undefined;
}

/** `@scope/name@1.2` → `@scope/name`, `name/sub` → `name`. */
function packageName(spec: string): string {
  const m = /^(@[^/@]+\/[^/@]+|[^/@]+)/.exec(spec);
  return m?.[1] ?? spec;
}

const BUILTINS = new Set(builtinModules);

function checkInstalled(example: ReadmeExample, selfName: string, installed: readonly string[]): void {
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g;
  const missing = new Set<string>();
  for (let m = re.exec(example.code); m !== null; m = re.exec(example.code)) {
    const spec = m[2] ?? '';
    if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:')) continue;
    const name = packageName(spec);
    if (BUILTINS.has(name) || name === selfName || installed.includes(name)) continue;
    missing.add(name);
  }
  if (missing.size > 0) {
    throw new Error(
      `README example ${example.index} imports ${[...missing].join(', ')}, which the README's install command does not install (it names ${installed.join(', ') || 'nothing'})`,
    );
  }
}
