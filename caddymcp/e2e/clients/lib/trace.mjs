// An HTTP trace of everything a node client sends: a fetch wrapper that
// records each request and response (secrets shortened), so that a failing
// run shows what went over the wire.

import fs from 'node:fs';

const SECRET_FIELDS = new Set(['code', 'code_verifier', 'refresh_token', 'access_token', 'id_token', 'token', 'client_secret']);

// shorten keeps the end of a secret so two values can be told apart.
export function shorten(v) {
  if (typeof v !== 'string' || v.length <= 12) return v;
  return `<${v.length} chars …${v.slice(-6)}>`;
}

function redactParams(params) {
  const out = {};
  for (const [k, v] of params) out[k] = SECRET_FIELDS.has(k) ? shorten(v) : v;
  return out;
}

function redactJSON(v) {
  if (Array.isArray(v)) return v.map(redactJSON);
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = SECRET_FIELDS.has(k) ? shorten(x) : redactJSON(x);
    return out;
  }
  return v;
}

function headerValue(headers, name) {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  if (Array.isArray(headers)) return headers.find(([k]) => k.toLowerCase() === name)?.[1];
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

// Trace records exchanges. entries are {n, method, url, auth, form, json,
// status, headers, body}; lines is the printable form.
export class Trace {
  constructor() {
    this.entries = [];
    this.lines = [];
  }

  note(text) {
    this.lines.push(`   # ${text}`);
  }

  // fetch returns a fetch function that records into this trace.
  fetch(base = globalThis.fetch) {
    return async (input, init = {}) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
      const entry = { n: this.entries.length + 1, method, url };
      const auth = headerValue(init.headers, 'authorization');
      if (auth) entry.auth = auth.replace(/^(\S+)\s+(.*)$/, (_m, s, t) => `${s} ${shorten(t)}`);
      if (typeof init.body === 'string' || init.body instanceof URLSearchParams) {
        const text = String(init.body);
        const ct = String(headerValue(init.headers, 'content-type') || '');
        if (init.body instanceof URLSearchParams || ct.includes('x-www-form-urlencoded')) {
          entry.form = redactParams(new URLSearchParams(text));
        } else {
          try {
            entry.json = redactJSON(JSON.parse(text));
          } catch {
            entry.bodyLength = text.length;
          }
        }
      }
      this.entries.push(entry);
      const reqLine = `→ ${entry.n} ${method} ${url}${entry.auth ? ` [Authorization: ${entry.auth}]` : ''}` +
        (entry.form ? ` form=${JSON.stringify(entry.form)}` : entry.json ? ` json=${JSON.stringify(entry.json)}` : '');
      this.lines.push(reqLine);
      let res;
      try {
        res = await base(input, init);
      } catch (err) {
        entry.error = String(err?.cause?.message || err?.message || err);
        this.lines.push(`← ${entry.n} network error: ${entry.error}`);
        throw err;
      }
      entry.status = res.status;
      entry.response = res;
      entry.headers = {};
      for (const h of ['content-type', 'www-authenticate', 'location', 'cache-control', 'mcp-session-id']) {
        const v = res.headers.get(h);
        if (v) entry.headers[h] = v;
      }
      const ct = entry.headers['content-type'] || '';
      // JSON bodies are complete documents; event streams are left alone.
      if (ct.includes('json')) {
        try {
          entry.body = redactJSON(await res.clone().json());
        } catch {
          entry.body = '<unreadable JSON>';
        }
      }
      let resLine = `← ${entry.n} ${res.status} ${ct}`;
      if (entry.headers['www-authenticate']) resLine += ` WWW-Authenticate: ${entry.headers['www-authenticate']}`;
      if (entry.headers.location) resLine += ` Location: ${entry.headers.location}`;
      if (entry.body !== undefined) resLine += ` ${JSON.stringify(entry.body).slice(0, 600)}`;
      this.lines.push(resLine);
      return res;
    };
  }

  // find returns the entries matching a predicate, in order.
  find(pred) {
    return this.entries.filter(pred);
  }

  text() {
    return this.lines.join('\n') + '\n';
  }

  save(file) {
    fs.writeFileSync(file, this.text());
  }
}
