/**
 * A small Dockerfile reader for the ops tests: instructions (continuation
 * lines joined, comments dropped) grouped by build stage, and the exec-form
 * (JSON array) arguments of CMD, HEALTHCHECK CMD and friends.
 */
import { readFileSync } from 'node:fs';

export interface Instruction {
  /** upper case, e.g. RUN */
  keyword: string;
  /** the rest of the instruction, continuation lines joined with spaces */
  args: string;
  line: number;
}

export interface Stage {
  /** FROM's image reference as written (may contain ${ARG}) */
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults */
  globalArgs: Map<string, string | undefined>;
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (pending === '' && /^\s*#/.test(line)) return;
    if (pending !== '' && /^\s*#/.test(line)) return; // comments inside a continuation are dropped
    if (pending === '' && line.trim() === '') return;
    if (pending === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      pending += line.replace(/\\\s*$/, ' ');
      return;
    }
    pending += line;
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(pending);
    if (m !== null) instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim().replace(/\s+/g, ' '), line: start });
    pending = '';
  });
  const globalArgs = new Map<string, string | undefined>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (m === null) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ from: m[1]!, name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
      const [name, value] = ins.args.split('=', 2) as [string, string | undefined];
      globalArgs.set(name, value);
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

export function readDockerfile(path: string): Dockerfile {
  return parseDockerfile(readFileSync(path, 'utf8'));
}

/** Exec form only: the JSON array of strings, else undefined (shell form). */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const value: unknown = JSON.parse(args);
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) return undefined;
  return value;
}

/** HEALTHCHECK [--opt=value ...] CMD <args>: its options and command. */
export function parseHealthcheck(args: string): { options: Map<string, string>; command: string } | undefined {
  const options = new Map<string, string>();
  let rest = args;
  for (;;) {
    const m = /^--([a-z-]+)=(\S+)\s+/.exec(rest);
    if (m === null) break;
    options.set(m[1]!, m[2]!);
    rest = rest.slice(m[0].length);
  }
  const cmd = /^CMD\s+(.*)$/.exec(rest);
  return cmd === null ? undefined : { options, command: cmd[1]! };
}

/** The image a FROM names once ${ARG} / $ARG references are replaced by the global ARG defaults. */
export function resolveFrom(from: string, args: ReadonlyMap<string, string | undefined>): string {
  return from.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => {
    const v = args.get((a ?? b)!);
    if (v === undefined) throw new Error(`FROM uses ${a ?? b}, which has no default`);
    return v;
  });
}
