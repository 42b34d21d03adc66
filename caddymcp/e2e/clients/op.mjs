// An OpenID Connect provider for the end-to-end tests, standing in for
// Google as the upstream login of mcp_oauth. It is the real oidc-provider
// package; this file only configures it: one confidential client (the
// Caddy host), one scripted user who signs in with a password on a login
// page of ours, and consent granted at once (the client is first-party).
//
// Environment:
//   OP_CLIENT_ID, OP_CLIENT_SECRET  the client's credentials
//   OP_REDIRECT_URI                 its one redirect URI
//   OP_USER                         JSON: {sub, email, email_verified, name, password}
//   OP_PORT                         port to listen on (default: any free one)
//
// When it listens it prints one JSON line on stdout: {"issuer": "..."}.
// Every request is logged on stderr as one line.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`op: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const clientID = need('OP_CLIENT_ID');
const clientSecret = need('OP_CLIENT_SECRET');
const redirectURI = need('OP_REDIRECT_URI');
const user = JSON.parse(need('OP_USER'));
const port = Number(process.env.OP_PORT || 0);

const escapeHTML = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// The login page: a labelled form, as a person would see it.
function loginPage(uid, clientName, error) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - Test Identity Provider</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; background: #eef1f5; color: #1b1f24; margin: 0; }
main { max-width: 24rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 10px; border: 1px solid #c9ced6; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin-top: 1rem; }
input { width: 100%; box-sizing: border-box; padding: .5rem; font: inherit; border: 1px solid #6b7280; border-radius: 6px; }
button { margin-top: 1.5rem; width: 100%; padding: .7rem; font: inherit; font-weight: 600; color: #fff; background: #1e6b3a; border: 0; border-radius: 8px; }
.error { color: #b3261e; }
</style>
</head>
<body>
<main>
<h1>Sign in to Test Identity Provider</h1>
<p>to continue to <strong>${escapeHTML(clientName)}</strong></p>
${error ? `<p class="error" role="alert">${escapeHTML(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHTML(uid)}/login">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>`;
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'op-rs256', alg: 'RS256', use: 'sig' };

let issuer = '';
let provider;

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Our interaction endpoints: GET /interaction/{uid} shows the login page
// (or grants consent), POST /interaction/{uid}/login checks the password.
async function interaction(req, res, path) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  const client = await provider.Client.find(params.client_id);
  const clientName = client?.clientName || params.client_id;
  const send = (status, html) => {
    res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(html);
  };
  if (req.method === 'GET' && path === `/interaction/${uid}`) {
    if (prompt.name === 'login') {
      send(200, loginPage(uid, clientName, ''));
      return;
    }
    if (prompt.name === 'consent') {
      // The Caddy host is a first-party client: no consent screen here.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    send(400, `unexpected prompt ${escapeHTML(prompt.name)}`);
    return;
  }
  if (req.method === 'POST' && path === `/interaction/${uid}/login`) {
    const form = await readForm(req);
    if (form.get('email') !== user.email || form.get('password') !== user.password) {
      send(401, loginPage(uid, clientName, 'Wrong email or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  send(404, 'not found');
}

const server = http.createServer((req, res) => {
  const started = Date.now();
  res.on('finish', () => {
    const loc = res.getHeader('location');
    console.error(`op: ${req.method} ${req.url.split('?')[0]} -> ${res.statusCode}${loc ? ' ' + String(loc).split('?')[0] : ''} (${Date.now() - started}ms)`);
  });
  const path = new URL(req.url, issuer).pathname;
  if (path.startsWith('/interaction/')) {
    interaction(req, res, path).catch((err) => {
      console.error('op: interaction failed:', err);
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('interaction failed');
      }
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(port, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientID,
        client_secret: clientSecret,
        client_name: 'caddymcp (end-to-end test host)',
        redirect_uris: [redirectURI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // Google puts the profile claims in the ID token, which is what
    // caddymcp reads: do the same for the scopes asked for.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    findAccount: (_ctx, id) =>
      id !== user.sub
        ? undefined
        : {
            accountId: id,
            claims: () => ({ sub: id, email: user.email, email_verified: !!user.email_verified, name: user.name }),
          },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, AccessToken: 300, IdToken: 300 },
  });
  provider.on('server_error', (_ctx, err) => console.error('op: server_error:', err));
  provider.on('authorization.error', (_ctx, err) => console.error('op: authorization.error:', err.message, err.error_description || ''));
  provider.on('grant.error', (_ctx, err) => console.error('op: grant.error:', err.message, err.error_description || ''));
  console.log(JSON.stringify({ issuer }));
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
