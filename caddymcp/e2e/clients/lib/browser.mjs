// Headless Chromium (Debian's, driven by playwright-core) as the person
// who signs in and approves, and the small local servers around it: the
// client's redirect URI and a page of another origin that frames ours.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { check, info } from './script.mjs';

const require = createRequire(import.meta.url);

// Flags for Chromium on a machine without a network beyond loopback, run
// as root.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export async function launchBrowser(executablePath) {
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  return { browser, context: await newContext(browser) };
}

// newContext opens another browser context — another person, or the same
// person on another browser: its own cookies — with options (such as
// userAgent) on top of the defaults.
export async function newContext(browser, options = {}) {
  // Caddy's local CA is not in Chromium's trust store.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 900, height: 1000 }, colorScheme: 'light', ...options });
  context.setDefaultTimeout(20_000);
  return context;
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

// CallbackServer is the client's redirect URI: it records each
// authorization response and lets the flow wait for it by state.
export class CallbackServer {
  constructor() {
    this.waiters = new Map();
    this.received = new Map();
    this.server = http.createServer((req, res) => {
      const u = new URL(req.url, 'http://127.0.0.1');
      if (u.pathname !== '/callback') {
        res.writeHead(404).end();
        return;
      }
      const params = Object.fromEntries(u.searchParams);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><html lang="en"><title>Signed in</title><main><h1>You may close this window.</h1></main></html>');
      const key = params.state || '';
      const w = this.waiters.get(key);
      if (w) {
        this.waiters.delete(key);
        w(params);
      } else {
        this.received.set(key, params);
      }
    });
  }

  async start() {
    this.port = await listen(this.server);
    this.url = `http://127.0.0.1:${this.port}/callback`;
    return this;
  }

  // wait resolves with the query parameters of the redirect carrying state.
  wait(state, ms = 30_000) {
    if (this.received.has(state)) {
      const p = this.received.get(state);
      this.received.delete(state);
      return Promise.resolve(p);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(state);
        reject(new Error(`no redirect to ${this.url} with state ${state} within ${ms} ms`));
      }, ms);
      this.waiters.set(state, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
    });
  }

  close() {
    this.server.close();
  }
}

// FramingServer serves, over HTTPS with the Caddy host's own certificate
// but on another port (so another origin of the same site), a page that
// puts a given URL in an iframe, next to a frame of its own as a control.
export class FramingServer {
  constructor(certFile, keyFile) {
    this.target = '';
    this.server = https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) }, (req, res) => {
      const u = new URL(req.url, 'https://localhost');
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      if (u.pathname === '/control') {
        res.end('<!doctype html><html lang="en"><title>control</title><p id="control">framed page rendered</p></html>');
        return;
      }
      const esc = this.target.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
      res.end(`<!doctype html><html lang="en"><title>Another site framing the consent page</title>
<h1>A page of another origin</h1>
<iframe id="victim" title="consent page" src="${esc}" width="800" height="500"></iframe>
<iframe id="control" title="control" src="/control" width="300" height="80"></iframe></html>`);
    });
  }

  async start() {
    this.port = await listen(this.server);
    this.origin = `https://localhost:${this.port}`;
    return this;
  }

  close() {
    this.server.close();
  }
}

// runAxe injects axe-core into the page (through the DevTools protocol,
// which the page's CSP does not govern) and returns its results.
export async function runAxe(page, tags) {
  const source = fs.readFileSync(path.join(path.dirname(require.resolve('axe-core')), 'axe.min.js'), 'utf8');
  await page.evaluate(source);
  return page.evaluate(
    (values) => globalThis.axe.run(document, { runOnly: { type: 'tag', values }, resultTypes: ['violations'] }),
    tags,
  );
}

// formatViolations renders axe violations for a failure message.
export function formatViolations(violations) {
  return violations
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n` + v.nodes.map((n) => `    ${n.target.join(' ')}: ${n.failureSummary}`).join('\n'))
    .join('\n');
}

// WCAG_TAGS are the axe-core tags checkAxe runs: WCAG 2.0, 2.1 and 2.2,
// levels A and AA.
export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

// checkAxe runs axe-core on the page in the light and the dark colour
// scheme, and fails on any WCAG 2.x A/AA violation; best-practice
// findings are only reported.
export async function checkAxe(page, what) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    const axe = await runAxe(page, WCAG_TAGS);
    check(axe.violations.length === 0, `axe-core (${what}, ${scheme}) found violations:\n${formatViolations(axe.violations)}`);
    const bp = await runAxe(page, ['best-practice']);
    info(`axe-core ${what} ${scheme}: no WCAG 2.x A/AA violations${bp.violations.length ? `; best practice: ${bp.violations.map((v) => v.id).join(', ')}` : ''}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

// tabTo presses Tab until the element matching selector has the focus and
// returns how many presses it took, or -1.
export async function tabTo(page, selector, max = 15) {
  await page.evaluate(() => document.activeElement?.blur());
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((sel) => document.activeElement === document.querySelector(sel), selector)) return i;
  }
  return -1;
}

// focusRing describes how the focused element shows its focus: whether
// it matches :focus-visible, and its outline and box shadow.
async function focusRing(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const s = getComputedStyle(el);
    return { visible: el.matches(':focus-visible'), style: s.outlineStyle, width: s.outlineWidth, shadow: s.boxShadow };
  });
}

// checkKeyboard checks that Tab reaches every control of the page — each
// link, button and form field but hidden ones — and that each shows its
// focus (a :focus-visible outline of 2px or more, or a box shadow). It
// returns the controls' labels in document order.
export async function checkKeyboard(page, what) {
  const controls = await page.evaluate(() => {
    const all = [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')].filter(
      (e) => !(e.tagName === 'INPUT' && e.type === 'hidden') && !e.disabled,
    );
    return all.map((e, i) => {
      e.setAttribute('data-keyboard-check', String(i));
      const label = (e.labels?.[0]?.textContent || e.textContent || e.getAttribute('aria-label') || e.name || e.tagName).replace(/\s+/g, ' ').trim();
      return `${e.tagName.toLowerCase()} "${label}"`;
    });
  });
  for (const [i, control] of controls.entries()) {
    const presses = await tabTo(page, `[data-keyboard-check="${i}"]`, controls.length + 5);
    check(presses > 0, `${what}: Tab never reaches ${control}`);
    const ring = await focusRing(page);
    check(ring.visible && ((ring.style !== 'none' && parseFloat(ring.width) >= 2) || (ring.shadow && ring.shadow !== 'none')),
      `${what}: the focus on ${control} is not visible: ${JSON.stringify(ring)}`);
  }
  await page.evaluate(() => document.activeElement?.blur());
  info(controls.length ? `keyboard ${what}: Tab reaches ${controls.join(', ')}, each with a visible focus` : `keyboard ${what}: the page has no control`);
  return controls;
}

// signInUpstream signs in on the upstream provider's page (op.mjs) as
// email with password, and waits until the browser is back at base.
export async function signInUpstream(page, email, password, base) {
  await page.waitForSelector('#email');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(base)), page.click('button[type=submit]')]);
}
