// Calls to the public API through /dashboard/api/ (the server adds the user's token).
// Errors carry the API's own message, whatever the body's shape (Octavia's WSME faultstring,
// Neutron's NeutronError, Barbican's description, Keystone's error.message).

const BASE = new URL('api/', document.baseURI);
const SESSION = new URL('session', document.baseURI);
const HEADERS = { 'X-Requested-By': 'lbaas-dashboard', Accept: 'application/json' };

export const LB = 'v2/lbaas';

export class ApiError extends Error {
  constructor(status, body) {
    super(errorMessage(status, body));
    this.status = status;
    this.body = body;
  }
}

export function errorMessage(status, body) {
  if (body && typeof body === 'object') {
    const found = body.faultstring || body.description || body.message
      || (body.NeutronError && body.NeutronError.message)
      || (body.error && (body.error.message || body.error.description))
      || body.title;
    if (found) return String(found);
  }
  if (typeof body === 'string' && body.trim()) return body.trim();
  return `The request failed (HTTP ${status}).`;
}

async function send(url, method, body, signal401 = true) {
  const init = { method, headers: { ...HEADERS }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!resp.ok) {
    if (resp.status === 401 && signal401) window.dispatchEvent(new CustomEvent('lbaas:unauthorized'));
    throw new ApiError(resp.status, data);
  }
  return data;
}

export function call(method, path, body) {
  return send(new URL(path, BASE), method, body);
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);
export const put = (path, body) => call('PUT', path, body);
export const del = (path) => call('DELETE', path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (v !== undefined && v !== null) q.append(k, v);
  }
  const text = q.toString();
  return text ? `?${text}` : '';
}

export const session = {
  get: () => send(SESSION, 'GET', undefined, false),
  signIn: (form) => send(SESSION, 'POST', form, false),
  signOut: () => send(SESSION, 'DELETE', undefined, false),
};
