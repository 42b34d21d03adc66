// The MCP TypeScript SDK's client against a real caddymcp host, the way an
// MCP client authorizes: 401 → protected resource metadata → authorization
// server metadata → dynamic registration → the authorization URL in
// Chromium (sign-in at the upstream OpenID provider or on the host's
// development sign-in form, our consent page) →
// token exchange with PKCE and resource → tools → 403 insufficient_scope →
// step-up → refresh → revocation. Along the way it screenshots and checks
// the pages (text, accessibility, keyboard focus, framing).
//
// Environment (all required, but as LOGIN_KIND says):
//   MCP_URL            the MCP endpoint, https://localhost:<port>/mcp
//   LOGIN_KIND         oidc (the default): sign in at the upstream
//                      provider; dev: fill in the host's development
//                      sign-in form (login dev)
//   OP_ISSUER          the upstream OpenID provider's issuer (oidc)
//   LOGIN_EMAIL, LOGIN_PASSWORD  the scripted user at that provider
//                      (oidc; LOGIN_EMAIL also for dev)
//   LOGIN_NAME         the display name typed into the form (dev); the
//                      policy must let LOGIN_EMAIL grant product:write
//   CHROMIUM           the Chromium executable
//   ARTIFACTS_DIR      where screenshots and the HTTP trace go
//   RESULT_FILE        a JSON file for the Go test: a token for the other
//                      clients and the revoked one
//   CADDY_CERT, CADDY_KEY  the host's certificate and key (for a page of
//                      another origin on the same site)
//   NODE_EXTRA_CA_CERTS Caddy's local root certificate
// and optionally STEP_PREFIX, put before the step numbers ("3." → step 3.1).
//
// On failure it prints the failed check, the HTTP trace of every request
// the node client made, and the browser's navigations, and exits 1.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { auth, extractWWWAuthenticateParams, refreshAuthorization, startAuthorization, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InvalidGrantError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

import { CallbackServer, checkAxe, checkKeyboard, FramingServer, formatViolations, launchBrowser, runAxe, tabTo } from './lib/browser.mjs';
import { check, CheckError, env, info, Steps } from './lib/script.mjs';
import { shorten, Trace } from './lib/trace.mjs';

const MCP_URL = new URL(env('MCP_URL'));
const BASE = MCP_URL.origin;
const DEV = (process.env.LOGIN_KIND || 'oidc') === 'dev';
const OP_ISSUER = DEV ? '' : env('OP_ISSUER');
const EMAIL = env('LOGIN_EMAIL');
const PASSWORD = DEV ? '' : env('LOGIN_PASSWORD');
const NAME = DEV ? env('LOGIN_NAME') : '';
const DEV_FORM = `${BASE}/auth/login/dev`;
// atSignIn reports whether a URL is the sign-in page: the upstream
// provider's, or the host's development form.
const atSignIn = (u) => (DEV ? u.startsWith(DEV_FORM) : u.startsWith(OP_ISSUER));
const ARTIFACTS = env('ARTIFACTS_DIR');
const SDK_VERSION = JSON.parse(fs.readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url))).version;

const READ_SCOPE = 'booking:read product:read';
const trace = new Trace();
const tracedFetch = trace.fetch();
const navigations = [];
const steps = new Steps(trace);
const step = (title) => steps.step(title);

function expectParams(u, want) {
  for (const [k, v] of Object.entries(want)) {
    const got = u.searchParams.get(k);
    check(v instanceof RegExp ? v.test(got ?? '') : got === v, `authorization URL: ${k}=${got}, want ${v}`);
  }
}

// TestClient is an OAuthClientProvider kept in memory, whose
// redirectToAuthorization hands the URL to the browser.
class TestClient {
  constructor(name, scope, redirect, onRedirect) {
    this.name = name;
    this.scope = scope;
    this.redirect = redirect;
    this.onRedirect = onRedirect;
    this.authorizationURLs = [];
    this.responses = [];
  }
  get redirectUrl() {
    return this.redirect;
  }
  get clientMetadata() {
    return {
      client_name: this.name,
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: this.scope,
    };
  }
  state() {
    this.lastState = randomBytes(16).toString('hex');
    return this.lastState;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(c) {
    this.client = c;
  }
  tokens() {
    return this.stored;
  }
  saveTokens(t) {
    this.stored = t;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  invalidateCredentials(what) {
    if (what === 'all' || what === 'tokens') this.stored = undefined;
    if (what === 'all' || what === 'client') this.client = undefined;
    if (what === 'all' || what === 'verifier') this.verifier = undefined;
  }
  async redirectToAuthorization(url) {
    this.authorizationURLs.push(url);
    trace.note(`redirectToAuthorization ${url.origin}${url.pathname} scope=${url.searchParams.get('scope')}`);
    const params = await this.onRedirect(url, this);
    this.responses.push(params);
  }
  // code returns the code of the last authorization response, after
  // checking its state and iss.
  code() {
    const p = this.responses.at(-1);
    check(p, 'no authorization response was received');
    check(!p.error, `authorization error: ${p.error} ${p.error_description || ''}`);
    check(p.state === this.lastState, `state ${p.state}, want ${this.lastState}`);
    check(p.iss === BASE, `iss ${p.iss}, want ${BASE} (RFC 9207)`);
    check(p.code, 'no code in the authorization response');
    return p.code;
  }
}

async function screenshot(page, name) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  info(`screenshot ${file}`);
}

// bodyText is the page's text as in the DOM (before CSS text-transform),
// with runs of white space made one space.
async function bodyText(page) {
  return page.evaluate(() => document.body.textContent.replace(/\s+/g, ' ').trim());
}

// asMetadata is the authorization server metadata the SDK fetched (it
// holds no secret, so the trace has it verbatim).
function asMetadata() {
  const e = trace.find((x) => x.url === `${BASE}/.well-known/oauth-authorization-server` && x.status === 200).at(-1);
  check(e?.body, 'the SDK never fetched the authorization server metadata');
  return e.body;
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const result = { sdk_version: SDK_VERSION };

  step(`start headless Chromium and the client's redirect URI (SDK ${SDK_VERSION})`);
  const { browser, context } = await launchBrowser(env('CHROMIUM'));
  const callbacks = await new CallbackServer().start();
  const framing = await new FramingServer(env('CADDY_CERT'), env('CADDY_KEY')).start();
  info(`redirect URI ${callbacks.url}; framing origin ${framing.origin}`);
  const pageLog = [];
  context.on('page', (p) => {
    p.on('framenavigated', (f) => f === p.mainFrame() && navigations.push(f.url().split('?')[0]));
    p.on('console', (m) => pageLog.push(`console ${m.type()}: ${m.text()}`));
  });

  // What the person does after the client opens the authorization URL.
  // hooks: login(page) on the provider's page, consent(page) on ours
  // before Approve; keyboard: approve with the keyboard.
  async function browse(url, client, hooks = {}) {
    const page = await context.newPage();
    try {
      const done = callbacks.wait(client.lastState);
      done.catch(() => {});
      await page.goto(url.href);
      if (atSignIn(page.url())) {
        // Only the first authorization signs in; later ones reuse the
        // session at the host.
        check(hooks.login, `the sign-in page came up again (${page.url()}): the host's session was not reused`);
        await page.waitForSelector('#email');
        await hooks.login(page);
        await page.fill('#email', EMAIL);
        if (DEV) await page.fill('#name', NAME);
        else await page.fill('#password', PASSWORD);
        await Promise.all([page.waitForURL((u) => u.href.startsWith(BASE) && !atSignIn(u.href)), page.click('button[type=submit]')]);
      } else {
        check(!hooks.login, `expected the sign-in page, got ${page.url()}`);
      }
      await page.waitForSelector('button[value=approve]');
      if (hooks.consent) await hooks.consent(page);
      if (hooks.keyboard) {
        check((await tabTo(page, 'button[value=approve]')) > 0, 'Tab never reached Approve');
        await page.keyboard.press('Enter');
      } else {
        await page.click('button[value=approve]');
      }
      const params = await done;
      // The redirect must land on the client's page (CSP form-action allows it).
      await page.waitForURL((u) => u.href.startsWith(callbacks.url));
      return params;
    } finally {
      await page.close();
    }
  }

  try {
    // ---------------------------------------------------------------
    step('MCP request without a token → 401 with a Bearer challenge');
    {
      const client = new Client({ name: 'caddymcp-e2e-probe', version: '1' });
      const transport = new StreamableHTTPClientTransport(MCP_URL, { fetch: tracedFetch });
      let err;
      try {
        await client.connect(transport);
      } catch (e) {
        err = e;
      }
      check(err instanceof StreamableHTTPError && err.code === 401, `connect without a token: ${err}`);
      await client.close().catch(() => {});
    }
    const unauthorized = trace.find((e) => e.url === MCP_URL.href && e.status === 401).at(-1);
    const challenge = extractWWWAuthenticateParams(unauthorized.response);
    check(/^Bearer /.test(unauthorized.headers['www-authenticate'] || ''), 'the challenge does not start with Bearer');
    check(challenge.resourceMetadataUrl?.href === `${BASE}/.well-known/oauth-protected-resource/mcp`, `resource_metadata = ${challenge.resourceMetadataUrl}`);
    info(`challenge scope: "${challenge.scope}"`);
    result.challenge_scope = challenge.scope;

    // ---------------------------------------------------------------
    step(`SDK auth(): protected resource metadata, authorization server metadata, registration, authorization URL (scope "${READ_SCOPE}")`);
    // The SDK puts the challenge's scope ahead of clientMetadata.scope; the
    // scope option of auth() is what it honours over the challenge, so the
    // first authorization asks for read scopes only.
    let consentChecked = false;
    // The development form: its text, accessibility and keyboard order;
    // then an empty name, posted past the browser's own validation (as a
    // script could), comes back as the form with the field's error.
    const devLogin = async (page) => {
      step('development sign-in form: content, screenshot, accessibility (axe-core), keyboard and visible focus; an empty name first');
      const text = await bodyText(page);
      for (const want of ['Development sign-in', 'For development only.', 'Email address', 'Display name', 'Sign in']) {
        check(text.includes(want), `sign-in form lacks "${want}":\n${text}`);
      }
      await screenshot(page, '01-login-dev.png');
      await checkAxe(page, 'sign-in form');
      const presses = await tabTo(page, '#email');
      check(presses > 0, 'Tab never reaches the email field');
      for (const next of ['#name', 'button[type=submit]']) {
        await page.keyboard.press('Tab');
        check(await page.evaluate((sel) => document.activeElement === document.querySelector(sel), next), `Tab after the previous field does not reach ${next}`);
      }
      info(`email field focused after ${presses} Tab press(es); then the name, then Sign in`);
      await checkKeyboard(page, 'sign-in form');
      await page.fill('#email', EMAIL);
      await page.fill('#name', '');
      await page.evaluate(() => {
        document.querySelector('form').noValidate = true;
      });
      await Promise.all([page.waitForSelector('#name-error'), page.click('button[type=submit]')]);
      const again = await bodyText(page);
      check(again.includes('Enter a display name.'), `the form with an empty name:\n${again}`);
      check((await page.inputValue('#email')) === EMAIL, 'the email address was not kept');
      check((await page.getAttribute('#name', 'aria-invalid')) === 'true' && (await page.getAttribute('#name', 'aria-describedby')) === 'name-error',
        'the name field is not marked invalid and tied to its error');
      await screenshot(page, '01-login-dev-error.png');
      await checkAxe(page, 'sign-in form with an error');
      await checkKeyboard(page, 'sign-in form with an error');
    };
    const firstHooks = {
      login: DEV ? devLogin : async (page) => {
        step('upstream sign-in page of oidc-provider (wrong password first, then the right one)');
        const text = await bodyText(page);
        check(text.includes('Sign in to Test Identity Provider') && text.includes('caddymcp (end-to-end test host)'), `login page text:\n${text}`);
        await screenshot(page, '01-login-oidc-provider.png');
        await page.fill('#email', EMAIL);
        await page.fill('#password', 'not-the-password');
        await page.click('button[type=submit]');
        await page.waitForSelector('.error');
        check((await bodyText(page)).includes('Wrong email or password.'), 'a wrong password was not refused');
      },
      consent: async (page) => {
        step('consent page: content, screenshot, accessibility (axe-core), keyboard focus');
        check(page.url().startsWith(BASE), `consent page at ${page.url()}`);
        const text = await bodyText(page);
        for (const want of ['Authorize caddymcp e2e (MCP TypeScript SDK)', 'Signed in as', EMAIL, 'You will be sent to', '127.0.0.1', callbacks.url, 'View your products', 'View your bookings', 'Approve', 'Deny']) {
          check(text.includes(want), `consent page lacks "${want}":\n${text}`);
        }
        check(!text.includes('Manage your products'), 'the read-only request offers product:write');
        await screenshot(page, '02-consent.png');
        await checkAxe(page, 'consent page');
        const presses = await tabTo(page, 'button[value=approve]');
        check(presses > 0, 'Tab never reaches the Approve button');
        const ring = await page.evaluate(() => {
          const s = getComputedStyle(document.activeElement);
          return { style: s.outlineStyle, width: s.outlineWidth, visible: document.activeElement.matches(':focus-visible') };
        });
        check(ring.visible && ring.style !== 'none' && parseFloat(ring.width) >= 2, `focus on Approve is not visible: ${JSON.stringify(ring)}`);
        await page.keyboard.press('Tab');
        check(await page.evaluate(() => document.activeElement?.value === 'deny'), 'Tab after Approve does not reach Deny');
        info(`Approve focused after ${presses} Tab press(es), outline ${ring.width} ${ring.style}; Deny next`);
        consentChecked = true;
      },
    };
    // The step-up: the session at the host is still there, so no upstream
    // sign-in; the consent page now offers product:write; Approve is
    // chosen with the keyboard.
    const stepUpHooks = {
      keyboard: true,
      consent: async (page) => {
        const text = await bodyText(page);
        check(text.includes('Manage your products') && text.includes('products_create'), `step-up consent page lacks product:write:\n${text}`);
        await screenshot(page, '03-consent-step-up.png');
      },
    };
    const sdkClient = new TestClient('caddymcp e2e (MCP TypeScript SDK)', READ_SCOPE, callbacks.url, (url, c) =>
      browse(url, c, c.authorizationURLs.length === 1 ? firstHooks : stepUpHooks),
    );
    const first = await auth(sdkClient, { serverUrl: MCP_URL, resourceMetadataUrl: challenge.resourceMetadataUrl, scope: READ_SCOPE, fetchFn: tracedFetch });
    check(first === 'REDIRECT', `auth() returned ${first}, want REDIRECT`);
    check(consentChecked, 'the consent page was never shown');
    {
      const seq = trace.entries.filter((e) => e.n > unauthorized.n);
      const prm = seq.find((e) => e.url === challenge.resourceMetadataUrl.href);
      const asm = seq.find((e) => e.url === `${BASE}/.well-known/oauth-authorization-server`);
      const reg = seq.find((e) => e.method === 'POST' && e.url === `${BASE}/oauth/register`);
      check(prm?.status === 200 && prm.body?.resource === MCP_URL.href, `protected resource metadata: ${prm?.status} ${JSON.stringify(prm?.body)}`);
      check(asm?.status === 200 && asm.body?.issuer === BASE, `authorization server metadata: ${asm?.status}`);
      check(prm.n < asm.n && asm.n < reg.n, 'discovery did not run in order (PRM, AS metadata, registration)');
      check(reg?.status === 201 && reg.json?.scope === READ_SCOPE && reg.json?.token_endpoint_auth_method === 'none', `registration: ${reg?.status} ${JSON.stringify(reg?.json)}`);
      check(!reg.body?.client_secret, 'a public client got a secret');
      info(`registered client ${sdkClient.client.client_id}`);
    }
    const authURL = sdkClient.authorizationURLs[0];
    expectParams(authURL, {
      response_type: 'code',
      client_id: sdkClient.client.client_id,
      redirect_uri: callbacks.url,
      scope: READ_SCOPE,
      resource: MCP_URL.href,
      code_challenge_method: 'S256',
      code_challenge: /^[A-Za-z0-9_-]{43}$/,
      state: sdkClient.lastState,
    });
    check(authURL.href.startsWith(`${BASE}/oauth/authorize?`), `authorization endpoint ${authURL.origin}${authURL.pathname}`);
    check(navigations.some(atSignIn), `the browser never went to the sign-in page (${DEV ? DEV_FORM : OP_ISSUER})`);

    // ---------------------------------------------------------------
    step('callback → token exchange with PKCE and resource (SDK auth() with the code)');
    const code = sdkClient.code();
    check((await auth(sdkClient, { serverUrl: MCP_URL, authorizationCode: code, resourceMetadataUrl: challenge.resourceMetadataUrl, fetchFn: tracedFetch })) === 'AUTHORIZED', 'code exchange did not authorize');
    {
      const tok = trace.find((e) => e.url === `${BASE}/oauth/token`).at(-1);
      check(tok.status === 200, `token endpoint: ${tok.status} ${JSON.stringify(tok.body)}`);
      check(tok.form?.grant_type === 'authorization_code' && tok.form.code_verifier && tok.form.resource === MCP_URL.href && tok.form.redirect_uri === callbacks.url,
        `token request ${JSON.stringify(tok.form)}`);
      check(tok.headers['cache-control'] === 'no-store', 'token response without Cache-Control: no-store');
    }
    const t1 = sdkClient.tokens();
    check(t1.scope === READ_SCOPE && t1.refresh_token && t1.token_type === 'Bearer', `tokens: scope "${t1.scope}", type ${t1.token_type}, refresh ${!!t1.refresh_token}`);
    info(`access token ${shorten(t1.access_token)} scope "${t1.scope}"`);

    // ---------------------------------------------------------------
    step('the consent page refuses to be framed by another origin');
    {
      const { authorizationUrl } = await startAuthorization(BASE, {
        metadata: asMetadata(),
        clientInformation: sdkClient.client,
        redirectUrl: callbacks.url,
        scope: `${READ_SCOPE} product:write`,
        state: 'framed',
        resource: MCP_URL,
      });
      framing.target = authorizationUrl.href;
      const page = await context.newPage();
      let framedResponse;
      page.on('response', (r) => {
        if (r.frame() !== page.mainFrame() && r.url().startsWith(`${BASE}/oauth/authorize`)) framedResponse = r;
      });
      // goto waits for the load event, which waits for both frames.
      await page.goto(`${framing.origin}/`);
      const control = page.frame({ url: `${framing.origin}/control` });
      check(control && (await control.textContent('#control')) === 'framed page rendered', 'the control frame did not render: the test proves nothing');
      check(framedResponse, 'the framed authorization request never reached the server');
      const h = await framedResponse.allHeaders();
      check(framedResponse.status() === 200, `framed request: ${framedResponse.status()} (not the consent page; session cookie not sent?)`);
      check(/frame-ancestors 'none'/.test(h['content-security-policy'] || '') && h['x-frame-options'] === 'DENY',
        `consent page headers: CSP ${h['content-security-policy']}, X-Frame-Options ${h['x-frame-options']}`);
      const victim = page.frames().find((f) => f !== page.mainFrame() && f !== control);
      const rendered = victim ? await victim.evaluate(() => document.body?.innerText || '').catch(() => '') : '';
      check(!rendered.includes('Approve') && !rendered.includes('Authorize'), `the consent page rendered inside a frame of ${framing.origin}:\n${rendered}`);
      info(`framed consent page (200 with frame-ancestors 'none') blocked; frame shows ${victim?.url() || 'nothing'}`);
      await screenshot(page, '05-consent-framed-blocked.png');
      await page.close();
    }

    // ---------------------------------------------------------------
    step('SDK client with the token: initialize, tools/list');
    const transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: sdkClient, fetch: tracedFetch });
    const mcp = new Client({ name: 'caddymcp-e2e-sdk', version: '1' });
    await mcp.connect(transport);
    const tools = (await mcp.listTools()).tools;
    const names = tools.map((t) => t.name);
    check(tools.length === 20 && names.includes('products_list') && names.includes('products_create'), `tools/list: ${names.join(', ')}`);
    const pl = tools.find((t) => t.name === 'products_list');
    check(pl.annotations?.readOnlyHint === true && pl.outputSchema, `products_list: ${JSON.stringify(pl.annotations)} outputSchema ${!!pl.outputSchema}`);
    info(`${tools.length} tools; server ${JSON.stringify(mcp.getServerVersion())}`);

    // ---------------------------------------------------------------
    step('tools/call products_list (read scope)');
    const listed = await mcp.callTool({ name: 'products_list', arguments: { limit: 5 } });
    check(!listed.isError && listed.structuredContent, `products_list: ${JSON.stringify(listed).slice(0, 400)}`);

    // ---------------------------------------------------------------
    step('tools/call products_create without product:write → 403 insufficient_scope');
    const createArgs = { sku: `SDK-${Date.now()}`, name: 'Made by the MCP TypeScript SDK', price_minor: 1250, currency: 'EUR' };
    const forbiddenFrom = trace.entries.length;
    let created;
    let stepUpError;
    try {
      created = await mcp.callTool({ name: 'products_create', arguments: createArgs });
    } catch (e) {
      stepUpError = e;
    }
    const forbidden = trace.entries.slice(forbiddenFrom).find((e) => e.status === 403);
    check(forbidden, `no 403 for products_create: ${stepUpError}`);
    const fch = extractWWWAuthenticateParams(forbidden.response);
    check(fch.error === 'insufficient_scope' && fch.scope?.split(' ').includes('product:write') && fch.resourceMetadataUrl,
      `403 challenge: ${forbidden.headers['www-authenticate']}`);
    info(`403 WWW-Authenticate: ${forbidden.headers['www-authenticate']}`);

    // ---------------------------------------------------------------
    step(`step-up re-authorization with scope "${fch.scope}"`);
    if (created) {
      throw new CheckError('products_create succeeded without a new authorization');
    } else if (stepUpError instanceof UnauthorizedError) {
      // The SDK started the re-authorization itself; the browser has
      // approved it: finish it.
      result.step_up = 'sdk';
      info('the SDK re-authorized by itself (redirect); finishing with transport.finishAuth()');
    } else if (stepUpError instanceof StreamableHTTPError && stepUpError.code === 403) {
      // SDK 1.x: with a refresh token stored, auth() refreshes instead of
      // re-authorizing, so the scope never widens and the retry gets the
      // same 403. Drive the re-authorization with auth() explicitly.
      const refreshed = trace.entries.slice(forbiddenFrom).some((e) => e.form?.grant_type === 'refresh_token');
      info(`SDK ${SDK_VERSION} did not step up: "${stepUpError.message}" (it ${refreshed ? 'refreshed the token instead' : 'did not refresh'}); driving auth() with the challenged scope`);
      result.step_up = `explicit auth(): SDK ${SDK_VERSION} ${refreshed ? 'refreshed instead of re-authorizing' : 'gave up'} on 403 insufficient_scope`;
      sdkClient.invalidateCredentials('tokens');
      const r = await auth(sdkClient, { serverUrl: MCP_URL, resourceMetadataUrl: fch.resourceMetadataUrl, scope: fch.scope, fetchFn: tracedFetch });
      check(r === 'REDIRECT', `step-up auth() returned ${r}`);
    } else {
      throw stepUpError;
    }
    // (the browser approved inside redirectToAuthorization, stepUpHooks)
    const stepUpURL = sdkClient.authorizationURLs.at(-1);
    check(sdkClient.authorizationURLs.length === 2, `${sdkClient.authorizationURLs.length} authorization requests, want 2`);
    check(stepUpURL.searchParams.get('scope') === fch.scope, `step-up scope ${stepUpURL.searchParams.get('scope')}`);
    await transport.finishAuth(sdkClient.code());
    const t2 = sdkClient.tokens();
    check(t2.scope.split(' ').includes('product:write'), `step-up granted "${t2.scope}"`);
    created = await mcp.callTool({ name: 'products_create', arguments: createArgs });
    check(!created.isError && created.structuredContent?.id, `products_create after step-up: ${JSON.stringify(created).slice(0, 400)}`);
    info(`granted "${t2.scope}"; created product ${created.structuredContent.id}`);
    result.created_product_id = created.structuredContent.id;

    // ---------------------------------------------------------------
    step('refresh: the SDK auth() with a stored refresh token makes a refresh_token grant');
    const before = sdkClient.tokens();
    const refreshFrom = trace.entries.length;
    check((await auth(sdkClient, { serverUrl: MCP_URL, resourceMetadataUrl: fch.resourceMetadataUrl, fetchFn: tracedFetch })) === 'AUTHORIZED', 'refresh did not authorize');
    {
      const r = trace.entries.slice(refreshFrom).find((e) => e.form?.grant_type === 'refresh_token');
      check(r?.status === 200 && r.form.resource === MCP_URL.href && !r.form.scope, `refresh request ${JSON.stringify(r?.form)} → ${r?.status}`);
    }
    const t3 = sdkClient.tokens();
    check(t3.access_token !== before.access_token && t3.refresh_token && t3.refresh_token !== before.refresh_token, 'refresh did not rotate both tokens');
    check(t3.scope === before.scope, `refresh changed the scope: "${before.scope}" → "${t3.scope}"`);
    const got = await mcp.callTool({ name: 'products_get', arguments: { id: created.structuredContent.id } });
    check(!got.isError && got.structuredContent?.sku === createArgs.sku, `products_get with the refreshed token: ${JSON.stringify(got).slice(0, 300)}`);
    await mcp.close();

    // ---------------------------------------------------------------
    step('revocation: POST /oauth/revoke with the refresh token');
    {
      const res = await tracedFetch(`${BASE}/oauth/revoke`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: t3.refresh_token, token_type_hint: 'refresh_token', client_id: sdkClient.client.client_id }).toString(),
      });
      check(res.status === 200, `revoke: ${res.status}`);
    }

    // ---------------------------------------------------------------
    step('the revoked grant is refused: its access token gets 401, its refresh token invalid_grant');
    {
      const probe = new Client({ name: 'caddymcp-e2e-revoked', version: '1' });
      const tr = new StreamableHTTPClientTransport(MCP_URL, { fetch: tracedFetch, requestInit: { headers: { Authorization: `Bearer ${t3.access_token}` } } });
      let err;
      try {
        await probe.connect(tr);
      } catch (e) {
        err = e;
      }
      check(err instanceof StreamableHTTPError && err.code === 401, `revoked access token: ${err || 'accepted'}`);
      const last = trace.find((e) => e.url === MCP_URL.href).at(-1);
      check(/error="invalid_token"/.test(last.headers['www-authenticate'] || ''), `401 challenge: ${last.headers['www-authenticate']}`);
      await probe.close().catch(() => {});
      let rerr;
      try {
        await refreshAuthorization(BASE, { metadata: asMetadata(), clientInformation: sdkClient.client, refreshToken: t3.refresh_token, resource: MCP_URL, fetchFn: tracedFetch });
      } catch (e) {
        rerr = e;
      }
      check(rerr instanceof InvalidGrantError, `refresh with the revoked token: ${rerr || 'succeeded'}`);
      result.revoked_access_token = t3.access_token;
    }

    // ---------------------------------------------------------------
    step('error page: /oauth/authorize with an unknown client_id is shown, not redirected');
    {
      const page = await context.newPage();
      const res = await page.goto(`${BASE}/oauth/authorize?response_type=code&client_id=no-such-client&redirect_uri=${encodeURIComponent('https://attacker.example/cb')}&state=x`);
      check(res.status() === 400 && page.url().startsWith(`${BASE}/oauth/authorize`), `unknown client: ${res.status()} at ${page.url()}`);
      const text = await bodyText(page);
      check(text.includes('Unknown application') && text.includes('not registered'), `error page text:\n${text}`);
      check((await page.title()).length > 0, 'error page has no title');
      const axe = await runAxe(page, ['wcag2a', 'wcag2aa']);
      check(axe.violations.length === 0, `axe-core on the error page:\n${formatViolations(axe.violations)}`);
      await screenshot(page, '04-error-unknown-client.png');
      await page.close();
    }

    // ---------------------------------------------------------------
    step('a second client (for MCP Inspector\'s CLI and mcp-go): registration, consent, token');
    {
      const other = new TestClient('caddymcp e2e (Inspector CLI and mcp-go)', 'product:read product:write', callbacks.url, (url, c) => browse(url, c));
      const scope = 'product:read product:write';
      check((await auth(other, { serverUrl: MCP_URL, resourceMetadataUrl: challenge.resourceMetadataUrl, scope, fetchFn: tracedFetch })) === 'REDIRECT', 'second client: no redirect');
      check((await auth(other, { serverUrl: MCP_URL, authorizationCode: other.code(), resourceMetadataUrl: challenge.resourceMetadataUrl, fetchFn: tracedFetch })) === 'AUTHORIZED', 'second client: no token');
      check(other.tokens().scope === scope, `second client granted "${other.tokens().scope}"`);
      result.other_access_token = other.tokens().access_token;
      result.other_scope = other.tokens().scope;
    }

    fs.writeFileSync(env('RESULT_FILE'), JSON.stringify(result, null, 2), { mode: 0o600 });
    console.log(`sdk flow passed: ${steps.count} steps, ${trace.entries.length} HTTP exchanges; step-up: ${result.step_up || 'n/a'}`);
  } finally {
    trace.save(path.join(ARTIFACTS, 'sdk-http-trace.txt'));
    fs.writeFileSync(path.join(ARTIFACTS, 'browser-navigations.txt'), navigations.join('\n') + '\n' + pageLog.join('\n') + '\n');
    callbacks.close();
    framing.close();
    await browser.close().catch(() => {});
  }
}

main().catch((err) => {
  console.error(`\nFAILED at step ${steps.current}: ${err instanceof CheckError ? err.message : err?.stack || err}`);
  console.error('\nHTTP trace of the node client (secrets shortened):');
  console.error(trace.text());
  console.error('browser navigations:');
  console.error(navigations.map((u) => `  ${u}`).join('\n'));
  process.exit(1);
});
