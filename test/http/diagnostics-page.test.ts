/**
 * The diagnostics page's files: served with their content types and the
 * page's CSP; the markup has no inline script or style. (The build of these
 * files: test/scripts/build-diagnostics-page.test.ts; the page at work, in
 * Chromium: test/interop/diagnostics-page.test.ts.)
 */
import t from 'tap';
import {
  DIAGNOSTICS_CSP,
  DIAGNOSTICS_CSS_PATH,
  DIAGNOSTICS_SCRIPT_PATH,
  loadDiagnosticsAssets,
} from '../../src/http/diagnostics-page.js';
import { startHttpServer } from '../../src/http/server.js';
import { silentLogger } from '../../src/util/logger.js';
import { fakeSource, TOKEN } from './fake-source.js';

t.test('the CSP: scripts and styles from the gateway only, nothing inline, no eval', async (t) => {
  t.equal(
    DIAGNOSTICS_CSP,
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  );
  t.notMatch(DIAGNOSTICS_CSP, /unsafe-|nonce-|sha256-/, 'no inline allowance of any kind');
});

t.test('the page, its style and its script are served with their types and the CSP', async (t) => {
  const src = fakeSource();
  const server = await startHttpServer({ address: '127.0.0.1', port: 0, logger: silentLogger(), admin: { token: TOKEN, source: src } });
  t.teardown(async () => {
    await server.close();
    src.close();
  });
  const files = await loadDiagnosticsAssets();
  const cases: Array<[path: string, type: string, body: string]> = [
    ['/', 'text/html; charset=utf-8', files.html],
    ['/diagnostics', 'text/html; charset=utf-8', files.html],
    [DIAGNOSTICS_CSS_PATH, 'text/css; charset=utf-8', files.css],
    [DIAGNOSTICS_SCRIPT_PATH, 'text/javascript; charset=utf-8', await files.script()],
  ];
  for (const [path, type, body] of cases) {
    const r = await fetch(server.origin + path);
    t.equal(r.status, 200, `${path} without a token (it holds no data)`);
    t.equal(r.headers.get('content-type'), type, `${path} is ${type}`);
    t.equal(r.headers.get('content-security-policy'), DIAGNOSTICS_CSP, `${path} carries the CSP`);
    t.equal(r.headers.get('x-content-type-options'), 'nosniff');
    t.equal(r.headers.get('cache-control'), 'no-store');
    t.equal(await r.text(), body, `${path} is the file`);
  }
  t.equal((await fetch(server.origin + '/diagnostics.ts')).status, 404, 'the TypeScript source is not served');
  t.equal((await fetch(server.origin + '/tsconfig.json')).status, 404, 'nor anything else from the folder');
});

t.test('the markup: no inline script or style, the two files linked, nothing from elsewhere', async (t) => {
  const files = await loadDiagnosticsAssets();
  const { html, css } = files;
  const script = await files.script();
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  t.equal(scripts.length, 1, 'one script element');
  t.match(scripts[0]?.[1], new RegExp(`\\bsrc="${DIAGNOSTICS_SCRIPT_PATH}"`), 'the script file');
  t.match(scripts[0]?.[1], /\btype="module"/, 'as a module (the built script is one)');
  t.equal(scripts[0]?.[2], '', 'with nothing inline');
  t.notMatch(html, /<style\b/i, 'no style element');
  t.notMatch(html, /\sstyle=/i, 'no style attribute');
  t.notMatch(html, /\son[a-z]+=/i, 'no event-handler attribute');
  t.notMatch(html, /javascript:/i, 'no javascript: address');
  t.match(html, new RegExp(`<link rel="stylesheet" href="${DIAGNOSTICS_CSS_PATH}">`), 'the style file');
  for (const [name, text] of [['html', html], ['css', css], ['script', script]] as const) {
    t.notMatch(text, /https?:\/\//, `the ${name} loads nothing from elsewhere`);
  }
  t.notMatch(css, /@import|url\(/, 'the style loads nothing');
  t.notMatch(script, /^\s*(import|export)\s+(?!\{\s*\};)/m, 'the script imports nothing (its imports are types only)');
  t.notMatch(script, /\beval\(|new Function\(/, 'and needs no eval');
});
