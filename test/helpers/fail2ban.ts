/**
 * The README's fail2ban filter, applied the way fail2ban applies it
 * (fail2ban/server/failregex.py and filter.py): <HOST> expanded to fail2ban's
 * host expression (IPv4, IPv6, DNS name), Python named groups turned into JS
 * ones, and the datepattern match cut out of the line before failregex runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './gateway-process.js';

// fail2ban's IPAddr.IP_4_RE / IP_6_RE and R_HOST (usedns not "no": <HOST> = ADDR or DNS)
const IP4 = String.raw`(?:\d{1,3}\.){3}\d{1,3}`;
const IP6 = String.raw`(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)`;
const ADDR = String.raw`\[?(?:(?:::f{4,6}:)?(?P<ip4>${IP4})|(?P<ip6>${IP6}))\]?`;
const HOST = String.raw`(?:${ADDR}|(?P<dns>[\w\-.^_]*\w))`;

/** fail2ban's strptime pieces the datepattern uses (fail2ban/server/strptime.py). */
const DATE_CODES: Record<string, string> = {
  Y: String.raw`\d\d\d\d`,
  m: String.raw`1[0-2]|0[1-9]|[1-9]`,
  d: String.raw`3[01]|[12]\d|0?[1-9]`,
  H: String.raw`2[0-3]|[0-1]\d|\d`,
  M: String.raw`[0-5]\d|\d`,
  S: String.raw`6[0-1]|[0-5]\d|\d`,
  f: String.raw`[0-9]{1,6}`,
  z: String.raw`[+-]\d\d:?[0-5]\d(?::?[0-5]\d(?:\.\d{1,6})?)?|Z`,
};

export interface Fail2banFilter {
  failregex: string;
  datepattern: string | undefined;
  /** the banned host of a log line, undefined when the line does not match */
  hostOf(line: string): string | undefined;
}

/** Python regex syntax to JS: named groups. */
function pyToJs(re: string): string {
  return re.replace(/\(\?P</g, '(?<');
}

/** The [Definition] block of the README's filter.d file, values exactly as written. */
export function readmeFilter(): Fail2banFilter {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const block = /```ini\n(\[Definition\][\s\S]*?)```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('README has no ```ini [Definition] block');
  const value = (key: string): string | undefined => new RegExp(`^${key}\\s*=\\s*(.*)$`, 'm').exec(block)?.[1]?.trim();
  const failregex = value('failregex');
  if (failregex === undefined || failregex === '') throw new Error('the filter has no failregex');
  return filterOf(failregex, value('datepattern') || undefined);
}

export function filterOf(failregex: string, datepattern: string | undefined): Fail2banFilter {
  const fail = new RegExp(pyToJs(failregex.replace(/<HOST>/g, HOST)));
  let date: RegExp | undefined;
  if (datepattern !== undefined) {
    // configparser turns %% into %; each %X becomes its strptime expression
    const unescaped = datepattern.replace(/%%/g, '%');
    date = new RegExp(unescaped.replace(/%([A-Za-z])/g, (_m, c: string) => `(?:${DATE_CODES[c] ?? '(?!)'})`));
  }
  return {
    failregex,
    datepattern,
    hostOf(line: string): string | undefined {
      let text = line;
      if (date !== undefined) {
        const m = date.exec(line);
        if (m === null) return undefined; // fail2ban ignores a line without its date
        text = line.slice(0, m.index) + line.slice(m.index + m[0].length);
      }
      const g = fail.exec(text)?.groups;
      return g === undefined ? undefined : (g['ip4'] ?? g['ip6'] ?? g['dns']);
    },
  };
}
