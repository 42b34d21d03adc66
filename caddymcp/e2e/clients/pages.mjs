// Every page a person sees on a caddymcp host, walked in headless
// Chromium the way people meet them: the provider picker, the consent
// page, the account page with two applications and two sessions, and the
// error pages. Each page is screenshotted into ARTIFACTS_DIR, checked
// with axe-core (no WCAG 2.x A/AA violation, light and dark colour
// schemes) and with the keyboard (Tab reaches every link, button and
// field, each with a visible focus). The development sign-in form is
// filled in on the way, but not screenshotted here: the development
// sign-in test (sdk-flow.mjs, LOGIN_KIND=dev) checks it, with its field
// error, the same way.
//
// Environment (all required):
//   BASE_URL       the host: development sign-in and an OpenID provider
//                  (two providers, so sign-in starts at the picker),
//                  https://localhost:<port>
//   OUTAGE_URL     a second host, whose providers UNREACHABLE_PROVIDER
//                  (a closed port) and SLOW_PROVIDER (a port that never
//                  answers) cannot sign anyone in
//   UNREACHABLE_PROVIDER, SLOW_PROVIDER  their names
//   LOGIN_EMAIL, LOGIN_NAME  the person who signs in; the policy lets
//                  LOGIN_EMAIL grant every scope
//   DENIED_EMAIL   an address the policy refuses
//   CHROMIUM       the Chromium executable
//   ARTIFACTS_DIR  where the screenshots go, with pages.json listing them
//   NODE_EXTRA_CA_CERTS  BASE_URL's local root certificate
// and optionally STEP_PREFIX, put before the step numbers.
//
// On failure it prints the failed check and the browser's navigations,
// and exits 1.

import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { CallbackServer, checkAxe, checkKeyboard, launchBrowser, newContext, tabTo } from './lib/browser.mjs';
import { check, CheckError, env, info, Steps } from './lib/script.mjs';
import { Trace } from './lib/trace.mjs';

const BASE = env('BASE_URL');
const OUTAGE = env('OUTAGE_URL');
const EMAIL = env('LOGIN_EMAIL');
const NAME = env('LOGIN_NAME');
const ARTIFACTS = env('ARTIFACTS_DIR');
const RESOURCE = `${BASE}/mcp`;
// The second browser the person signs in on, as the account page names
// it from its User-Agent.
const OTHER_BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';

const trace = new Trace();
const tracedFetch = trace.fetch();
const steps = new Steps(trace);
const step = (title) => steps.step(title);
const navigations = [];
// index lists the screenshots, in the order they were taken.
const index = [];

// bodyText is the page's text as in the DOM, with runs of white space
// made one space.
async function bodyText(page) {
  return page.evaluate(() => document.body.textContent.replace(/\s+/g, ' ').trim());
}

// watch records the main frame's navigations of a page, for a failure.
function watch(page, who) {
  page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(`${who}: ${f.url().split('?')[0]}`));
  return page;
}

// submit clicks selector (a form's button) and returns the response of
// the page the browser ends on, after any redirect.
async function submit(page, selector) {
  const [res] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return res;
}

// shoot checks the page the browser shows after res — its status, its
// title (also its heading), its text, the headers every page has — then
// screenshots it as file, runs axe-core on it and walks it with the
// keyboard.
async function shoot(page, res, file, want) {
  const what = file.replace(/^\d+-|\.png$/g, '');
  check(res, `${what}: no response`);
  check(res.status() === want.status, `${what}: status ${res.status()} at ${page.url()}, want ${want.status}\n${await bodyText(page)}`);
  const title = await page.title();
  check(title === want.title, `${what}: title "${title}", want "${want.title}"`);
  check((await page.textContent('h1'))?.trim() === want.title, `${what}: the heading is not the title`);
  const text = await bodyText(page);
  for (const t of want.texts || []) {
    check(text.includes(t), `${what}: the page lacks "${t}":\n${text}`);
  }
  const h = await res.allHeaders();
  check(/frame-ancestors 'none'/.test(h['content-security-policy'] || '') && h['x-frame-options'] === 'DENY' && h['cache-control'] === 'no-store',
    `${what}: headers CSP ${h['content-security-policy']}, X-Frame-Options ${h['x-frame-options']}, Cache-Control ${h['cache-control']}`);
  const where = new URL(page.url());
  await page.screenshot({ path: path.join(ARTIFACTS, file), fullPage: true });
  info(`screenshot ${file}: ${res.status()} "${title}" at ${where.pathname}`);
  await checkAxe(page, what);
  const controls = await checkKeyboard(page, what);
  index.push({ file, status: res.status(), title, path: where.pathname, controls });
}

// Client is an application registered at the host (dynamic
// registration, a public client) that the person authorizes.
class Client {
  constructor(name, scope, redirect) {
    this.name = name;
    this.scope = scope;
    this.redirect = redirect;
  }

  async register() {
    const res = await tracedFetch(`${BASE}/oauth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        client_name: this.name,
        redirect_uris: [this.redirect],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        scope: this.scope,
      }),
    });
    const body = await res.json();
    check(res.status === 201 && body.client_id, `registering ${this.name}: ${res.status} ${JSON.stringify(body)}`);
    this.id = body.client_id;
    info(`registered "${this.name}" as ${this.id}`);
    return this;
  }

  // authorizeURL is a fresh authorization request (PKCE, resource).
  authorizeURL(extra = {}) {
    this.state = randomBytes(12).toString('hex');
    this.verifier = randomBytes(32).toString('base64url');
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: this.id,
      redirect_uri: this.redirect,
      scope: this.scope,
      state: this.state,
      code_challenge: createHash('sha256').update(this.verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: RESOURCE,
      ...extra,
    });
    for (const [k, v] of Object.entries(extra)) if (v === undefined) q.delete(k);
    return `${BASE}/oauth/authorize?${q}`;
  }

  // redeem exchanges the code of the authorization response: the grant
  // the account page lists.
  async redeem(params) {
    check(!params.error && params.code && params.state === this.state, `authorization response for ${this.name}: ${JSON.stringify(params)}`);
    const res = await tracedFetch(`${BASE}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.code,
        redirect_uri: this.redirect,
        client_id: this.id,
        code_verifier: this.verifier,
        resource: RESOURCE,
      }).toString(),
    });
    const body = await res.json();
    check(res.status === 200 && body.access_token && body.refresh_token, `token for ${this.name}: ${res.status} ${JSON.stringify(body)}`);
    info(`${this.name}: granted "${body.scope}"`);
  }
}

// signInDev fills in the development sign-in form the page shows and
// sends it, returning the response of the page it leads to.
async function signInDev(page, email, name) {
  await page.waitForSelector('#email');
  check(page.url().startsWith(`${BASE}/auth/login/dev`), `expected the development sign-in form, got ${page.url()}`);
  await page.fill('#email', email);
  await page.fill('#name', name);
  return submit(page, 'button[type=submit]');
}

// pickDev chooses the development sign-in on the provider picker.
async function pickDev(page) {
  await Promise.all([page.waitForURL((u) => u.pathname === '/auth/login/dev'), page.click('a[href^="/auth/login/dev"]')]);
}

// setField changes a hidden field of the form whose action field is
// action (the n-th such form), as a forged or stale form would carry.
async function setField(page, action, n, field, value) {
  await page.evaluate(
    ([action, n, field, value]) => {
      const form = [...document.querySelectorAll('form')].filter((f) => f.elements.action?.value === action)[n];
      form.elements[field].value = value;
      form.setAttribute('data-target', 'yes');
    },
    [action, n, field, value],
  );
  return '[data-target=yes] button[type=submit]';
}

// accountCounts counts the applications and sessions the account page
// lists (their revoke and end forms).
async function accountCounts(page) {
  return page.evaluate(() => {
    const forms = [...document.querySelectorAll('form')];
    const count = (a) => forms.filter((f) => f.elements.action?.value === a).length;
    return { applications: count('revoke_application'), sessions: count('end_session') };
  });
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });

  step('start headless Chromium and the applications\' redirect URI; register three applications');
  const { browser, context: ada } = await launchBrowser(env('CHROMIUM'));
  const callbacks = await new CallbackServer().start();
  const notes = await new Client('Notes assistant', 'booking:read product:read', callbacks.url).register();
  const inventory = await new Client('Inventory dashboard', 'product:read product:write', callbacks.url).register();
  const unapproved = await new Client('Never approved', 'product:read', callbacks.url).register();

  try {
    const page = watch(await ada.newPage(), 'first browser');

    // -------------------------------------------------------------
    step('provider picker: an application asks for access, the person is not signed in');
    let res = await page.goto(notes.authorizeURL());
    check(new URL(page.url()).pathname === '/auth/login', `the authorization request did not lead to the picker: ${page.url()}`);
    await shoot(page, res, '01-sign-in-picker.png', {
      status: 200,
      title: 'Sign in',
      texts: ['Choose how to sign in.', 'Development sign-in (any email address)', 'Sign in with Test Identity Provider'],
    });

    // -------------------------------------------------------------
    step(`consent page: ${EMAIL} signs in with the development form, then sees what "${notes.name}" asks for`);
    await pickDev(page);
    let done = callbacks.wait(notes.state);
    done.catch(() => {});
    res = await signInDev(page, EMAIL, NAME);
    check(new URL(page.url()).pathname === '/oauth/authorize', `signing in did not come back to the authorization request: ${page.url()}`);
    await shoot(page, res, '02-consent.png', {
      status: 200,
      title: `Authorize ${notes.name}`,
      texts: ['Signed in as', EMAIL, 'Manage your applications', 'You will be sent to', '127.0.0.1', 'View your bookings', 'View your products', 'Approve', 'Deny'],
    });
    check((await tabTo(page, 'button[value=approve]')) > 0, 'Tab never reaches Approve');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callbacks.url)), page.keyboard.press('Enter')]);
    await notes.redeem(await done);
    info('approved with the keyboard (Tab, Enter)');

    step(`a second application, "${inventory.name}": consent (the session is reused) and approval`);
    const inventoryURL = inventory.authorizeURL();
    done = callbacks.wait(inventory.state);
    done.catch(() => {});
    await page.goto(inventoryURL);
    await page.waitForSelector('button[value=approve]');
    check((await bodyText(page)).includes('Manage your products'), 'the consent page does not offer product:write');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callbacks.url)), page.click('button[value=approve]')]);
    await inventory.redeem(await done);

    // -------------------------------------------------------------
    step('the same person signs in on a second browser (Firefox on Windows) through the account page');
    const otherContext = await newContext(browser, { userAgent: OTHER_BROWSER });
    const other = watch(await otherContext.newPage(), 'second browser');
    await other.goto(`${BASE}/auth/account`);
    check(new URL(other.url()).pathname === '/auth/login', `the account page without a session did not lead to sign-in: ${other.url()}`);
    await pickDev(other);
    await signInDev(other, EMAIL, NAME);
    check(new URL(other.url()).pathname === '/auth/account', `signing in did not come back to the account page: ${other.url()}`);

    // -------------------------------------------------------------
    step('account page: two applications, two sessions');
    res = await page.goto(`${BASE}/auth/account`);
    const counts = await accountCounts(page);
    check(counts.applications === 2 && counts.sessions === 2, `the account page lists ${JSON.stringify(counts)}, want two of each`);
    await shoot(page, res, '03-account.png', {
      status: 200,
      title: 'Your account',
      texts: ['Signed in as', EMAIL, notes.name, inventory.name, 'View your bookings', 'Manage your products', 'Chrome on Linux', 'Firefox on Windows', 'This session', 'Sign out'],
    });

    // -------------------------------------------------------------
    step('account page, a forged form (another session\'s token) → 403');
    res = await submit(page, await setField(page, 'revoke_application', 0, 'csrf_token', randomBytes(32).toString('base64url')));
    await shoot(page, res, '04-account-error-forged-form.png', {
      status: 403,
      title: 'Request refused',
      texts: ['nothing was changed', 'Back to your account'],
    });

    step('account page, a grant that does not exist → 404');
    await Promise.all([page.waitForURL((u) => u.pathname === '/auth/account'), page.click('a[href="/auth/account"]')]);
    check((await accountCounts(page)).applications === 2, 'the forged form changed something');
    res = await submit(page, await setField(page, 'revoke_application', 0, 'grant', 'no-such-grant'));
    await shoot(page, res, '05-account-error-not-found.png', {
      status: 404,
      title: 'Application not found',
      texts: ['nothing was changed', 'Back to your account'],
    });

    step(`account page, "${inventory.name}" revoked with the keyboard → the page again, with a notice`);
    await page.goto(`${BASE}/auth/account`);
    check((await accountCounts(page)).applications === 2, 'the form with an unknown grant changed something');
    await page.evaluate((name) => {
      const item = [...document.querySelectorAll('li')].find((li) => li.querySelector('h3')?.textContent === name);
      item.querySelector('button[type=submit]').setAttribute('data-revoke', 'yes');
    }, inventory.name);
    check((await tabTo(page, '[data-revoke=yes]', 20)) > 0, `Tab never reaches the revoke button of ${inventory.name}`);
    [res] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    check(new URL(page.url()).pathname === '/auth/account', `revoking did not come back to the account page: ${page.url()}`);
    const after = await accountCounts(page);
    check(after.applications === 1 && after.sessions === 2, `after the revocation the page lists ${JSON.stringify(after)}`);
    check(!(await bodyText(page)).includes(inventory.name), `${inventory.name} is still listed`);
    await shoot(page, res, '06-account-application-revoked.png', {
      status: 200,
      title: 'Your account',
      texts: ['The application\'s access was revoked.', notes.name],
    });

    // -------------------------------------------------------------
    step('authorization request errors shown as a page: unknown client, unregistered redirect_uri, a refused request');
    res = await page.goto(`${BASE}/oauth/authorize?response_type=code&client_id=no-such-client&redirect_uri=${encodeURIComponent('https://attacker.example/cb')}&state=x`);
    await shoot(page, res, '07-error-unknown-client.png', { status: 400, title: 'Unknown application', texts: ['not registered'] });
    res = await page.goto(notes.authorizeURL({ redirect_uri: 'https://attacker.example/cb' }));
    await shoot(page, res, '08-error-bad-redirect-uri.png', { status: 400, title: 'Invalid redirect', texts: ['not registered for it'] });
    // A request without PKCE, from an application whose redirect URI the
    // person never approved: shown, not sent there.
    res = await page.goto(unapproved.authorizeURL({ code_challenge: undefined, code_challenge_method: undefined }));
    await shoot(page, res, '09-error-authorization-failed.png', { status: 400, title: 'Authorization failed', texts: ['invalid_request', 'PKCE is required'] });

    // -------------------------------------------------------------
    step('"Signed out": the second browser signs out on the account page');
    await other.goto(`${BASE}/auth/account`);
    res = await submit(other, 'button:has-text("Sign out of this session")');
    await shoot(other, res, '10-signed-out.png', { status: 200, title: 'Signed out', texts: ['You are signed out on this browser.', 'Sign in again'] });
    await otherContext.close();

    // -------------------------------------------------------------
    step(`sign-in errors, on a third browser: ${env('DENIED_EMAIL')} is not allowed, a forged sign-in form, an unknown provider`);
    const strangerContext = await newContext(browser);
    const stranger = watch(await strangerContext.newPage(), 'third browser');
    await stranger.goto(`${BASE}/auth/login/dev`);
    res = await signInDev(stranger, env('DENIED_EMAIL'), 'Mallory');
    await shoot(stranger, res, '11-error-sign-in-denied.png', { status: 403, title: 'Access denied', texts: [`${env('DENIED_EMAIL')} is not allowed to use this server`] });
    await stranger.goto(`${BASE}/auth/login/dev`);
    await stranger.fill('#email', EMAIL);
    await stranger.fill('#name', NAME);
    await stranger.evaluate((v) => {
      document.querySelector('input[name=csrf_token]').value = v;
    }, randomBytes(32).toString('base64url'));
    res = await submit(stranger, 'button[type=submit]');
    await shoot(stranger, res, '12-error-sign-in-form-expired.png', { status: 400, title: 'Sign-in form expired', texts: ['Open the sign-in page again'] });
    res = await stranger.goto(`${BASE}/auth/login/no-such-provider`);
    await shoot(stranger, res, '13-error-unknown-provider.png', { status: 404, title: 'Unknown sign-in provider', texts: ['no sign-in provider by that name'] });

    // -------------------------------------------------------------
    step('provider unavailable: one that refuses connections (502), one that never answers (504, after the host\'s timeout)');
    res = await stranger.goto(`${OUTAGE}/auth/login/${env('UNREACHABLE_PROVIDER')}`);
    await shoot(stranger, res, '14-error-provider-unreachable.png', { status: 502, title: 'Sign-in unavailable', texts: ['could not be reached'] });
    const started = Date.now();
    res = await stranger.goto(`${OUTAGE}/auth/login/${env('SLOW_PROVIDER')}`, { timeout: 60_000 });
    info(`the stalled provider's page came after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await shoot(stranger, res, '15-error-provider-timeout.png', { status: 504, title: 'Sign-in unavailable', texts: ['did not answer in time'] });

    // -------------------------------------------------------------
    step('too many sign-in requests from one network → 429');
    let n = 0;
    for (res = null; n < 200; n++) {
      res = await stranger.goto(`${BASE}/auth/login`);
      if (res.status() !== 200) break;
    }
    info(`refused after ${n} more pages in a row`);
    check(res.headers()['retry-after'], 'the 429 has no Retry-After');
    await shoot(stranger, res, '16-error-too-many-requests.png', { status: 429, title: 'Too many requests', texts: ['Too many sign-in attempts'] });
    await strangerContext.close();

    fs.writeFileSync(path.join(ARTIFACTS, 'pages.json'), JSON.stringify(index, null, 2) + '\n');
    console.log(`pages walk passed: ${index.length} pages screenshotted, each without WCAG 2.x A/AA violations and reachable by keyboard`);
  } finally {
    trace.save(path.join(ARTIFACTS, 'http-trace.txt'));
    fs.writeFileSync(path.join(ARTIFACTS, 'browser-navigations.txt'), navigations.join('\n') + '\n');
    callbacks.close();
    await browser.close().catch(() => {});
  }
}

main().catch((err) => {
  console.error(`\nFAILED at step ${steps.current}: ${err instanceof CheckError ? err.message : err?.stack || err}`);
  console.error('browser navigations:');
  console.error(navigations.map((u) => `  ${u}`).join('\n'));
  process.exit(1);
});
