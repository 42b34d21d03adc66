// oauth4webapi, a third-party OAuth client library with DPoP support,
// against a real caddymcp host: protected resource metadata,
// authorization server metadata, dynamic registration, the authorization
// URL with PKCE and dpop_jkt in Chromium (sign-in at the upstream OpenID
// provider, our consent page), the code exchange with a DPoP proof and
// the server nonce it asks for, tools/list and tools/call on /mcp with
// DPoP, the refusals a stolen token or proof meets, and a DPoP refresh.
//
// Environment (all required):
//   MCP_URL            the MCP endpoint, https://localhost:<port>/mcp
//   OP_ISSUER          the upstream OpenID provider's issuer
//   LOGIN_EMAIL, LOGIN_PASSWORD  the scripted user at that provider
//   CHROMIUM           the Chromium executable
//   ARTIFACTS_DIR      where the HTTP trace goes
//   RESULT_FILE        a JSON file for the Go test
//   NODE_EXTRA_CA_CERTS Caddy's local root certificate
// and optionally STEP_PREFIX, put before the step numbers.
//
// On failure it prints the failed check and the HTTP trace of every
// request the client made, and exits 1.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import * as oauth from 'oauth4webapi';

import { CallbackServer, launchBrowser, signInUpstream } from './lib/browser.mjs';
import { check, CheckError, env, info, Steps } from './lib/script.mjs';
import { Trace } from './lib/trace.mjs';

const MCP_URL = new URL(env('MCP_URL'));
const OP_ISSUER = env('OP_ISSUER');
const ARTIFACTS = env('ARTIFACTS_DIR');
const SCOPE = 'booking:read product:read';
const VERSION = JSON.parse(fs.readFileSync(new URL('./node_modules/oauth4webapi/package.json', import.meta.url))).version;

const trace = new Trace();
const steps = new Steps(trace);
const step = (title) => steps.step(title);

// proofs keeps the DPoP header of every request, so that one can be
// replayed.
const proofs = [];
const tracedFetch = trace.fetch((input, init = {}) => {
  const dpop = init.headers?.dpop ?? init.headers?.DPoP;
  if (dpop) proofs.push({ url: String(input), dpop, authorization: init.headers.authorization });
  return fetch(input, init);
});
const opts = (extra = {}) => ({ [oauth.customFetch]: tracedFetch, ...extra });

// claims decodes a JWT's payload.
function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

// withNonce runs a request and its processing, and once more when the
// server asks for a DPoP nonce (RFC 9449 §8); it reports how many retries
// it took.
async function withNonce(run) {
  try {
    return { result: await run(), retries: 0 };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    info(`server asked for a DPoP nonce (${err.error}): retrying with it`);
    return { result: await run(), retries: 1 };
  }
}

// mcp sends one JSON-RPC request to the MCP endpoint with the access
// token and the DPoP handle, and returns the JSON-RPC answer.
async function mcp(accessToken, dpop, method, params) {
  const headers = new Headers({
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
  });
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
  const res = await oauth.protectedResourceRequest(accessToken, 'POST', MCP_URL, headers, body, opts(dpop ? { DPoP: dpop } : {}));
  check(res.status === 200, `${method}: status ${res.status}`);
  let text = await res.text();
  if ((res.headers.get('content-type') || '').startsWith('text/event-stream')) {
    text = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).at(-1);
  }
  const answer = JSON.parse(text);
  check(answer.result, `${method}: ${text}`);
  return answer.result;
}

// refused runs a resource request that must fail with a challenge, and
// returns the challenges oauth4webapi parsed.
async function refused(what, run) {
  try {
    await run();
  } catch (err) {
    check(err instanceof oauth.WWWAuthenticateChallengeError, `${what}: ${err}`);
    check(err.response.status === 401, `${what}: status ${err.response.status}`);
    info(`${what}: 401 ${err.response.headers.get('www-authenticate')}`);
    return err.cause;
  }
  throw new CheckError(`${what} was accepted`);
}

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const result = { oauth4webapi_version: VERSION };

  step('MCP request without a token: 401 with a Bearer challenge, then a DPoP one');
  {
    const res = await tracedFetch(MCP_URL.href, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const challenge = res.headers.get('www-authenticate') || '';
    check(res.status === 401, `status ${res.status}`);
    check(/^Bearer resource_metadata="[^"]+", scope="[^"]+", DPoP /.test(challenge), `WWW-Authenticate: ${challenge}`);
    check(/DPoP .*algs="[^"]*\bES256\b/.test(challenge), `no DPoP algs with ES256: ${challenge}`);
    result.challenge = challenge;
    info(`WWW-Authenticate: ${challenge}`);
  }

  step(`protected resource metadata, then authorization server metadata (oauth4webapi ${VERSION})`);
  const rs = await oauth.processResourceDiscoveryResponse(MCP_URL, await oauth.resourceDiscoveryRequest(MCP_URL, opts()));
  check(rs.dpop_signing_alg_values_supported?.includes('ES256'), `PRM dpop_signing_alg_values_supported: ${rs.dpop_signing_alg_values_supported}`);
  check(rs.dpop_bound_access_tokens_required === false, `PRM dpop_bound_access_tokens_required: ${rs.dpop_bound_access_tokens_required}`);
  const issuer = new URL(rs.authorization_servers[0]);
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts({ algorithm: 'oauth2' })));
  check(as.dpop_signing_alg_values_supported?.includes('ES256'), `AS dpop_signing_alg_values_supported: ${as.dpop_signing_alg_values_supported}`);
  info(`issuer ${as.issuer}; DPoP algorithms ${as.dpop_signing_alg_values_supported.join(' ')}`);

  step('start headless Chromium and the client redirect URI; dynamic registration of a public client');
  const { browser, context } = await launchBrowser(env('CHROMIUM'));
  const callbacks = await new CallbackServer().start();
  try {
    const client = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(as, {
        client_name: 'caddymcp e2e (oauth4webapi DPoP)',
        redirect_uris: [callbacks.url],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        scope: SCOPE,
      }, opts()),
    );
    info(`client_id ${client.client_id}`);

    step('DPoP key (ES256) and the authorization URL with PKCE, resource and dpop_jkt');
    const dpop = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const jkt = await dpop.calculateThumbprint();
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authURL = new URL(as.authorization_endpoint);
    for (const [k, v] of Object.entries({
      client_id: client.client_id, redirect_uri: callbacks.url, response_type: 'code', scope: SCOPE, state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      resource: MCP_URL.href, dpop_jkt: jkt,
    })) {
      authURL.searchParams.set(k, v);
    }
    result.jkt = jkt;
    info(`dpop_jkt ${jkt}`);

    step('Chromium: sign in at the upstream provider, approve on the consent page');
    const page = await context.newPage();
    const done = callbacks.wait(state);
    done.catch(() => {});
    await page.goto(authURL.href);
    check(page.url().startsWith(OP_ISSUER), `expected the provider's sign-in page, got ${page.url()}`);
    await signInUpstream(page, env('LOGIN_EMAIL'), env('LOGIN_PASSWORD'), MCP_URL.origin);
    await page.waitForSelector('button[value=approve]');
    const consent = await page.evaluate(() => document.body.textContent.replace(/\s+/g, ' '));
    check(consent.includes('caddymcp e2e (oauth4webapi DPoP)'), `consent page does not name the client: ${consent}`);
    await page.click('button[value=approve]');
    const params = oauth.validateAuthResponse(as, client, new URLSearchParams(await done), state);
    await page.close();
    info('authorization response: code, state and iss checked by oauth4webapi (RFC 9207)');

    step('code exchange with a DPoP proof: first the nonce the server requires, then the tokens');
    const exchange = await withNonce(async () =>
      oauth.processAuthorizationCodeResponse(as, client,
        await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, callbacks.url, verifier,
          opts({ DPoP: dpop, additionalParameters: { resource: MCP_URL.href } }))),
    );
    const tokens = exchange.result;
    check(exchange.retries === 1, 'the server did not ask for a DPoP nonce: is `nonce required` configured?');
    check(tokens.token_type === 'dpop', `token_type ${tokens.token_type}`);
    check(claims(tokens.access_token).cnf?.jkt === jkt, `cnf ${JSON.stringify(claims(tokens.access_token).cnf)}, want jkt ${jkt}`);
    check(tokens.refresh_token, 'no refresh token');
    result.token_type = tokens.token_type;
    result.code_nonce_retries = exchange.retries;
    info(`token_type ${tokens.token_type}, cnf.jkt matches, scope "${tokens.scope}"; the code survived use_dpop_nonce`);

    step('tools/list and tools/call on /mcp with Authorization: DPoP and a proof');
    const list = await mcp(tokens.access_token, dpop, 'tools/list', {});
    check(list.tools?.length > 0, 'no tools');
    const call = await mcp(tokens.access_token, dpop, 'tools/call', { name: 'products_list', arguments: {} });
    check(!call.isError, `products_list: ${JSON.stringify(call)}`);
    result.tools = list.tools.length;
    info(`${list.tools.length} tools; products_list answered`);

    step('the refusals: a replayed proof, the token as a bearer token, a proof of another key');
    {
      const last = proofs.filter((p) => p.url === MCP_URL.href).at(-1);
      const res = await tracedFetch(MCP_URL.href, {
        method: 'POST',
        headers: { authorization: last.authorization, dpop: last.dpop, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }),
      });
      const challenge = res.headers.get('www-authenticate') || '';
      check(res.status === 401 && /^DPoP .*error="invalid_dpop_proof"/.test(challenge), `replayed proof: ${res.status} ${challenge}`);
      info(`replayed proof: 401 ${challenge}`);
    }
    const asBearer = await refused('the DPoP-bound token as a bearer token', () => mcp(tokens.access_token, null, 'tools/list', {}));
    check(asBearer[0]?.scheme === 'bearer' && asBearer[0].parameters.error === 'invalid_token', `challenges ${JSON.stringify(asBearer)}`);
    check(asBearer.some((c) => c.scheme === 'dpop' && c.parameters.algs?.includes('ES256')), `no DPoP challenge: ${JSON.stringify(asBearer)}`);
    const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const otherKey = await refused('the token with a proof of another key', () => mcp(tokens.access_token, thief, 'tools/list', {}));
    check(otherKey[0]?.scheme === 'dpop' && otherKey[0].parameters.error === 'invalid_token', `challenges ${JSON.stringify(otherKey)}`);

    step('refresh with a proof of another key: refused, and the refresh token is not used up');
    try {
      await withNonce(async () =>
        oauth.processRefreshTokenResponse(as, client,
          await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token,
            opts({ DPoP: thief, additionalParameters: { resource: MCP_URL.href } }))),
      );
      throw new CheckError('a refresh with another key was accepted');
    } catch (err) {
      check(err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant', `refresh with another key: ${err}`);
      info(`refused: ${err.error} (${err.error_description})`);
    }

    step('refresh with the DPoP key: new DPoP-bound tokens (the nonce came with the last token response)');
    const refreshed = await withNonce(async () =>
      oauth.processRefreshTokenResponse(as, client,
        await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token,
          opts({ DPoP: dpop, additionalParameters: { resource: MCP_URL.href } }))),
    );
    const next = refreshed.result;
    check(next.token_type === 'dpop' && claims(next.access_token).cnf?.jkt === jkt, `refreshed: ${next.token_type} ${JSON.stringify(claims(next.access_token).cnf)}`);
    check(next.refresh_token && next.refresh_token !== tokens.refresh_token, 'the refresh token was not rotated');
    check(refreshed.retries === 0, 'the refresh needed a nonce retry although the token response handed one out');
    const again = await mcp(next.access_token, dpop, 'tools/list', {});
    check(again.tools?.length === list.tools.length, 'tools/list with the refreshed token');
    result.refresh_nonce_retries = refreshed.retries;
    result.refreshed_access_token = next.access_token;
    info('refreshed; tools/list works with the new token');
  } finally {
    await browser.close();
    callbacks.close();
  }
  fs.writeFileSync(env('RESULT_FILE'), JSON.stringify(result, null, 2));
  trace.save(path.join(ARTIFACTS, 'dpop-http-trace.txt'));
}

main().catch((err) => {
  console.error(err instanceof CheckError ? `CHECK FAILED: ${err.message}` : err);
  console.error('HTTP trace:\n' + trace.text());
  process.exit(1);
});
