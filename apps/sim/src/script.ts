/**
 * The script language: one command per line, for people who do not write TypeScript.
 *
 * ```
 * # comment                       blank lines and comments are ignored
 * buf = mmap - 0x4000 rw- private,anon       (name = …) keeps a result; '-' lets the kernel choose
 * mmap 0x10000 0x2000 r-- shared /data/f 0   a file mapping (opened read-write, or read-only with 'ro')
 * munmap buf+0x1000 0x1000
 * mprotect buf 0x1000 r--
 * touch buf w [LEN]               one 4-byte access per page of [ADDR, ADDR+LEN) (LEN default 4)
 * write buf 48656c6c6f            bytes in hex, or "text" in double quotes
 * read buf 5                      prints the bytes in hex
 * pid = fork                      the child continues on the next line with 0
 * child: exit 3                   'child:' / 'parent:' prefixes restrict a line to one side of forks
 * parent: wait
 * maps / tables [tlb|mem|pg] / sleep 2ms / exit [CODE] / log TEXT
 * ```
 *
 * Addresses and lengths are hex (`0x…`) or decimal, optionally `name+0x…`. A system call that fails
 * prints `line N: call: ERRNO` and the script goes on. Parse errors throw `E_SCRIPT` naming the line.
 *
 * @module
 */
import {
  errnoName,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  O_RDONLY,
  O_RDWR,
} from './errno.js';
import { simFail } from './errors.js';
import { AccessRun, cpu, EXEC, type Op, type Program, READ, sys, WRITE } from './program.js';

type Expr = { name: string | undefined; value: number };

interface Line {
  no: number;
  text: string;
  side: 'both' | 'child' | 'parent';
  assign: string | undefined;
  cmd: string;
  args: string[];
}

const PROT_RE = /^[r-][w-][x-]$/;

function bad(line: { no: number; text: string }, why: string): never {
  simFail('E_SCRIPT', `line ${line.no}: ${why}: '${line.text.trim()}'`, { line: line.no });
}

function parseNum(s: string): number | undefined {
  if (/^0x[0-9a-f]+$/i.test(s) || /^\d+$/.test(s)) {
    const v = Number(s);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  return undefined;
}

function parseExpr(line: Line, s: string | undefined, what: string): Expr {
  if (s === undefined) bad(line, `missing ${what}`);
  const m = /^([A-Za-z_]\w*)(?:\+(.+))?$/.exec(s);
  if (m !== null) {
    const off = m[2] === undefined ? 0 : parseNum(m[2]);
    if (off === undefined) bad(line, `${what} offset '${m[2]}' is not a number`);
    return { name: m[1], value: off };
  }
  const v = parseNum(s);
  if (v === undefined) bad(line, `${what} '${s}' is not a number (hex 0x… or decimal) or a name`);
  return { name: undefined, value: v };
}

function parseProt(line: Line, s: string | undefined): number {
  if (s === undefined) bad(line, 'missing protection (like rw-)');
  if (s === 'none' || s === '---') return 0;
  const t = s.length === 2 ? `${s}-` : s;
  if (!PROT_RE.test(t)) bad(line, `protection '${s}' is not like r--, rw- or r-x`);
  return (t[0] === 'r' ? 1 : 0) | (t[1] === 'w' ? 2 : 0) | (t[2] === 'x' ? 4 : 0);
}

function parseFlags(line: Line, s: string | undefined): { flags: number; ro: boolean } {
  if (s === undefined) bad(line, 'missing mmap flags (like private,anon)');
  let flags = 0;
  let ro = false;
  for (const f of s.split(',')) {
    if (f === 'private') flags |= MAP_PRIVATE;
    else if (f === 'shared') flags |= MAP_SHARED;
    else if (f === 'anon' || f === 'anonymous') flags |= MAP_ANONYMOUS;
    else if (f === 'fixed') flags |= MAP_FIXED;
    else if (f === 'noreplace' || f === 'fixed_noreplace') flags |= MAP_FIXED_NOREPLACE;
    else if (f === 'ro') ro = true;
    else bad(line, `unknown mmap flag '${f}' (private, shared, anon, fixed, noreplace, ro)`);
  }
  return { flags, ro };
}

function parseDuration(line: Line, s: string | undefined): number {
  const m = s === undefined ? null : /^(\d+)(ns|us|ms|s)?$/.exec(s);
  if (m === null) bad(line, `duration '${s ?? ''}' is not like 500us, 2ms`);
  const k = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 }[(m[2] ?? 'ns') as 'ns'];
  return Number(m[1]) * k;
}

function parseBytes(line: Line, s: string): Uint8Array {
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) bad(line, 'text must be in double quotes');
    return new TextEncoder().encode(s.slice(1, -1));
  }
  if (!/^([0-9a-f]{2})+$/i.test(s)) bad(line, `bytes '${s}' are not hex pairs or "text"`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function tokenize(rest: string): string[] {
  const out: string[] = [];
  const re = /"[^"]*"|\S+/g;
  for (let m = re.exec(rest); m !== null; m = re.exec(rest)) out.push(m[0]);
  return out;
}

const COMMANDS = new Set([
  'mmap',
  'munmap',
  'mprotect',
  'touch',
  'write',
  'read',
  'fork',
  'exit',
  'maps',
  'sleep',
  'wait',
  'log',
  'tables',
]);

/** Parses a script. @throws SimError `E_SCRIPT` naming the first bad line */
export function parseScript(text: string): Line[] {
  const lines: Line[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const no = i + 1;
    let s = raw.replace(/#.*$/, '').trim();
    if (s === '') return;
    let side: Line['side'] = 'both';
    const sm = /^(child|parent):\s*(.*)$/.exec(s);
    if (sm !== null) {
      side = sm[1] as 'child' | 'parent';
      s = sm[2]!;
    }
    let assign: string | undefined;
    const am = /^([A-Za-z_]\w*)\s*=\s*(.*)$/.exec(s);
    if (am !== null) {
      assign = am[1];
      s = am[2]!;
    }
    const toks = tokenize(s);
    const cmd = toks[0] ?? '';
    const line: Line = { no, text: raw, side, assign, cmd, args: toks.slice(1) };
    if (!COMMANDS.has(cmd)) bad(line, `unknown command '${cmd}'`);
    validate(line);
    lines.push(line);
  });
  return lines;
}

function validate(l: Line): void {
  const a = l.args;
  const n = (min: number, max: number): void => {
    if (a.length < min || a.length > max)
      bad(l, `${l.cmd} takes ${min === max ? min : `${min}–${max}`} argument(s)`);
  };
  switch (l.cmd) {
    case 'mmap':
      n(4, 6);
      if (a[0] !== '-') parseExpr(l, a[0], 'address');
      parseExpr(l, a[1], 'length');
      parseProt(l, a[2]);
      parseFlags(l, a[3]);
      if (a[5] !== undefined) parseExpr(l, a[5], 'offset');
      break;
    case 'munmap':
      n(2, 2);
      parseExpr(l, a[0], 'address');
      parseExpr(l, a[1], 'length');
      break;
    case 'mprotect':
      n(3, 3);
      parseExpr(l, a[0], 'address');
      parseExpr(l, a[1], 'length');
      parseProt(l, a[2]);
      break;
    case 'touch':
      n(2, 3);
      parseExpr(l, a[0], 'address');
      if (!/^[rwx]$/.test(a[1] ?? '')) bad(l, `access '${a[1] ?? ''}' is not r, w or x`);
      if (a[2] !== undefined) parseExpr(l, a[2], 'length');
      break;
    case 'write':
      n(2, 2);
      parseExpr(l, a[0], 'address');
      parseBytes(l, a[1]!);
      break;
    case 'read':
      n(2, 2);
      parseExpr(l, a[0], 'address');
      parseExpr(l, a[1], 'length');
      break;
    case 'exit':
      n(0, 1);
      if (a[0] !== undefined && parseNum(a[0]) === undefined) bad(l, `exit code '${a[0]}' is not a number`);
      break;
    case 'sleep':
      n(1, 1);
      parseDuration(l, a[0]);
      break;
    case 'tables':
      n(0, 1);
      if (a[0] !== undefined && !['tlb', 'mem', 'pg'].includes(a[0]))
        bad(l, `tables format '${a[0]}' is not tlb, mem or pg`);
      break;
    case 'log':
      break;
    default:
      n(0, 0);
  }
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** A process running a parsed script (forkable: the child continues after the `fork` line). */
export class ScriptProgram implements Program {
  private pc = 0;
  private gen: Generator<Op, void, number> | undefined;
  private readonly vars: Map<string, number>;
  private readonly isChild: boolean;

  constructor(
    readonly name: string,
    private readonly lines: readonly Line[],
    state?: { pc: number; vars: Map<string, number>; isChild: boolean },
  ) {
    this.pc = state?.pc ?? 0;
    this.vars = new Map(state?.vars ?? []);
    this.isChild = state?.isChild ?? false;
  }

  /** Parses `text` into a program. @throws SimError `E_SCRIPT` */
  static parse(name: string, text: string): ScriptProgram {
    return new ScriptProgram(name, parseScript(text));
  }

  next(result: number): Op | undefined {
    if (this.gen !== undefined) {
      const r = this.gen.next(result);
      if (!r.done) return r.value;
      this.gen = undefined;
    }
    while (this.pc < this.lines.length) {
      const line = this.lines[this.pc++]!;
      if (line.side === 'child' && !this.isChild) continue;
      if (line.side === 'parent' && this.isChild) continue;
      const g = this.exec(line);
      const r = g.next(0);
      if (!r.done) {
        this.gen = g;
        return r.value;
      }
    }
    return undefined;
  }

  forkChild(): Program {
    const vars = new Map(this.vars);
    const forkLine = this.lines[this.pc - 1];
    if (forkLine?.assign !== undefined) vars.set(forkLine.assign, 0);
    return new ScriptProgram(this.name, this.lines, { pc: this.pc, vars, isChild: true });
  }

  private val(line: Line, s: string | undefined, what: string): number {
    const e = parseExpr(line, s, what);
    if (e.name === undefined) return e.value;
    const base = this.vars.get(e.name);
    if (base === undefined) bad(line, `name '${e.name}' has no value yet`);
    return base + e.value;
  }

  private *check(line: Line, call: string, r: number): Generator<Op, number, number> {
    if (r < 0) yield sys.log(`line ${line.no}: ${call}: ${errnoName(-r)}`);
    return r;
  }

  private *exec(line: Line): Generator<Op, void, number> {
    const a = line.args;
    let r = 0;
    switch (line.cmd) {
      case 'mmap': {
        const addr = a[0] === '-' ? 0 : this.val(line, a[0], 'address');
        const len = this.val(line, a[1], 'length');
        const prot = parseProt(line, a[2]);
        const { flags, ro } = parseFlags(line, a[3]);
        if (a[4] !== undefined) {
          const fd = yield sys.open(a[4], ro ? O_RDONLY : O_RDWR);
          if ((yield* this.check(line, `open ${a[4]}`, fd)) < 0) break;
          const off = a[5] === undefined ? 0 : this.val(line, a[5], 'offset');
          r = yield sys.mmap(addr, len, prot, flags, fd, off);
          yield sys.close(fd);
        } else r = yield sys.mmap(addr, len, prot, flags | MAP_ANONYMOUS, -1, 0);
        yield* this.check(line, 'mmap', r);
        break;
      }
      case 'munmap':
        r = yield sys.munmap(this.val(line, a[0], 'address'), this.val(line, a[1], 'length'));
        yield* this.check(line, 'munmap', r);
        break;
      case 'mprotect':
        r = yield sys.mprotect(
          this.val(line, a[0], 'address'),
          this.val(line, a[1], 'length'),
          parseProt(line, a[2]),
        );
        yield* this.check(line, 'mprotect', r);
        break;
      case 'touch': {
        const va = this.val(line, a[0], 'address');
        const len = a[2] === undefined ? 4 : Math.max(1, this.val(line, a[2], 'length'));
        const kind = a[1] === 'r' ? READ : a[1] === 'w' ? WRITE : EXEC;
        yield new AccessRun(va, len, 4096, Math.ceil(len / 4096), kind, 0x7a7a7a7a);
        break;
      }
      case 'write':
        yield cpu.store(this.val(line, a[0], 'address'), parseBytes(line, a[1]!));
        break;
      case 'read': {
        const out = new Uint8Array(this.val(line, a[1], 'length'));
        const va = this.val(line, a[0], 'address');
        yield cpu.load(va, out);
        yield sys.log(`read ${a[0]}: ${hex(out)}`);
        break;
      }
      case 'fork':
        r = yield sys.fork();
        yield* this.check(line, 'fork', r);
        break;
      case 'exit':
        yield sys.exit(a[0] === undefined ? 0 : Number(a[0]));
        break;
      case 'maps':
        yield sys.maps();
        break;
      case 'tables':
        yield sys.tables((a[0] ?? 'mem') as 'mem');
        break;
      case 'sleep':
        yield sys.sleep(parseDuration(line, a[0]));
        break;
      case 'wait':
        r = yield sys.wait(-1);
        yield* this.check(line, 'wait', r);
        break;
      case 'log':
        yield sys.log(a.join(' '));
        break;
    }
    if (line.assign !== undefined) this.vars.set(line.assign, r);
  }
}
