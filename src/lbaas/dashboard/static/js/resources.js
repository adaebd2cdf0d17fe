// The API's objects as field lists: one description serves the wizard, create and edit
// dialogs. `create: 'only'` fields are immutable after creation; `edit: 'only'` ones exist
// only on update; `when(raw)` shows a field only where the API accepts it.

import * as look from './lookups.js';

const opts = (list) => list.map((x) => (Array.isArray(x) ? x : [x, x]));
const HTTPISH = ['HTTP', 'TERMINATED_HTTPS'];

export const LISTENER_PROTOCOLS = ['HTTP', 'HTTPS', 'TCP', 'TERMINATED_HTTPS', 'UDP', 'SCTP', 'PROMETHEUS'];
export const POOL_PROTOCOLS = ['HTTP', 'HTTPS', 'PROXY', 'PROXYV2', 'TCP', 'UDP', 'SCTP'];
export const ALGORITHMS = [['ROUND_ROBIN', 'Round Robin'], ['LEAST_CONNECTIONS', 'Least Connections'],
  ['SOURCE_IP', 'Source IP'], ['SOURCE_IP_PORT', 'Source IP:Port']];
export const MONITOR_TYPES = ['HTTP', 'HTTPS', 'PING', 'TCP', 'TLS-HELLO', 'UDP-CONNECT', 'SCTP'];
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'OPTIONS', 'CONNECT', 'PATCH'];
const PERSISTENCE = [['', 'None'], ['SOURCE_IP', 'Source IP'], ['HTTP_COOKIE', 'HTTP Cookie'], ['APP_COOKIE', 'App Cookie']];
const L7_ACTIONS = [['REJECT', 'Reject'], ['REDIRECT_TO_URL', 'Redirect To URL'],
  ['REDIRECT_TO_POOL', 'Redirect To Pool'], ['REDIRECT_PREFIX', 'Redirect Prefix']];
const L7_TYPES = [['HOST_NAME', 'Host Name'], ['PATH', 'Path'], ['FILE_TYPE', 'File Type'], ['HEADER', 'Header'],
  ['COOKIE', 'Cookie'], ['SSL_CONN_HAS_CERT', 'SSL Conn Has Cert'], ['SSL_VERIFY_RESULT', 'SSL Verify Result'],
  ['SSL_DN_FIELD', 'SSL DN Field']];
const L7_COMPARE = [['EQUAL_TO', 'Equal To'], ['STARTS_WITH', 'Starts With'], ['ENDS_WITH', 'Ends With'],
  ['CONTAINS', 'Contains'], ['REGEX', 'Regex']];
const INSERT_HEADERS = ['X-Forwarded-For', 'X-Forwarded-Port', 'X-Forwarded-Proto'];

const name = { name: 'name', label: 'Name', clear: '' };
const description = { name: 'description', label: 'Description', clear: '' };
const adminState = { name: 'admin_state_up', label: 'Admin State Up', type: 'checkbox', value: true };

export const loadbalancer = [
  name,
  description,
  { name: 'vip_subnet_id', label: 'Subnet', type: 'select', required: true, create: 'only',
    options: look.subnetOptions, help: 'The VIP address is taken from this subnet.' },
  { name: 'vip_address', label: 'IP address', create: 'only', placeholder: 'Allocated when empty' },
  { name: 'flavor_id', label: 'Flavor', type: 'select', create: 'only', options: look.flavorOptions },
  { name: 'availability_zone', label: 'Availability Zone', type: 'select', create: 'only', options: look.zoneOptions },
  { name: 'provider', label: 'Provider', type: 'select', create: 'only', options: look.providerOptions },
  adminState,
];

const insertHeaders = INSERT_HEADERS.map((header) => ({
  name: header, label: header, type: 'checkbox', when: (raw) => HTTPISH.includes(raw.protocol),
  get: (obj) => Boolean(obj.insert_headers && String(obj.insert_headers[header]).toLowerCase() === 'true'),
  // the API replaces the whole dict: always send every box's state
  put: (out, value, raw) => {
    out.insert_headers = Object.fromEntries(INSERT_HEADERS.filter((x) => raw[x]).map((x) => [x, 'true']));
  },
}));

export function listener(poolOptions) {
  return [
    name,
    description,
    { name: 'protocol', label: 'Protocol', type: 'select', required: true, create: 'only',
      options: [['', 'Select a protocol'], ...opts(LISTENER_PROTOCOLS)] },
    { name: 'protocol_port', label: 'Port', type: 'number', required: true, create: 'only' },
    { name: 'default_tls_container_ref', label: 'Certificate', type: 'select',
      options: look.certificateOptions, when: (raw) => raw.protocol === 'TERMINATED_HTTPS',
      help: 'A PKCS12 secret or certificate container from the key manager.' },
    { name: 'connection_limit', label: 'Connection Limit', type: 'number', value: -1 },
    poolOptions ? { name: 'default_pool_id', label: 'Default Pool', type: 'select', edit: 'only',
      options: poolOptions, when: (raw) => raw.protocol !== 'PROMETHEUS' } : null,
    { name: 'allowed_cidrs', label: 'Allowed CIDRs', type: 'lines', placeholder: '0.0.0.0/0',
      help: 'One per line; empty allows every source.' },
    ...insertHeaders,
    { name: 'timeout_client_data', label: 'Client Data Timeout (ms)', type: 'number', value: 50000,
      when: (raw) => !['UDP', 'SCTP'].includes(raw.protocol) },
    { name: 'timeout_member_connect', label: 'Member Connect Timeout (ms)', type: 'number', value: 5000,
      when: (raw) => !['UDP', 'SCTP'].includes(raw.protocol) },
    { name: 'timeout_member_data', label: 'Member Data Timeout (ms)', type: 'number', value: 50000,
      when: (raw) => !['UDP', 'SCTP'].includes(raw.protocol) },
    { name: 'timeout_tcp_inspect', label: 'TCP Inspect Timeout (ms)', type: 'number', value: 0,
      when: (raw) => !['UDP', 'SCTP'].includes(raw.protocol) },
    adminState,
  ].filter(Boolean);
}

export const pool = [
  name,
  description,
  { name: 'protocol', label: 'Protocol', type: 'select', required: true, create: 'only',
    options: [['', 'Select a protocol'], ...opts(POOL_PROTOCOLS)] },
  { name: 'lb_algorithm', label: 'Algorithm', type: 'select', required: true, options: ALGORITHMS, value: 'ROUND_ROBIN' },
  { name: 'session_persistence', label: 'Session Persistence', type: 'select', options: PERSISTENCE,
    get: (obj) => (obj.session_persistence ? obj.session_persistence.type : ''),
    put: (out, value, raw) => {
      out.session_persistence = value ? { type: value, ...(value === 'APP_COOKIE' ? { cookie_name: raw.cookie_name } : {}) } : null;
    } },
  { name: 'cookie_name', label: 'Cookie Name', local: true, when: (raw) => raw.session_persistence === 'APP_COOKIE',
    get: (obj) => (obj.session_persistence && obj.session_persistence.cookie_name) || '' },
  { name: 'tls_enabled', label: 'TLS to members', type: 'checkbox', value: false },
  adminState,
];

export function member(subnetRequired) {
  return [
    { name: 'address', label: 'IP Address', required: true, create: 'only' },
    { name: 'subnet_id', label: 'Subnet', type: 'select', create: 'only', required: subnetRequired,
      options: look.subnetOptions },
    { name: 'protocol_port', label: 'Port', type: 'number', required: true, create: 'only' },
    { name: 'weight', label: 'Weight', type: 'number', value: 1 },
    { name: 'name', label: 'Name', clear: '' },
    { name: 'monitor_address', label: 'Monitor Address' },
    { name: 'monitor_port', label: 'Monitor Port', type: 'number' },
    { name: 'backup', label: 'Backup', type: 'checkbox', value: false },
    adminState,
  ];
}

const httpMonitor = (raw) => raw.type === 'HTTP' || raw.type === 'HTTPS';
export const monitor = [
  name,
  { name: 'type', label: 'Type', type: 'select', required: true, create: 'only', value: 'HTTP',
    options: opts(MONITOR_TYPES) },
  { name: 'delay', label: 'Delay (sec)', type: 'number', required: true, value: 5 },
  { name: 'timeout', label: 'Timeout (sec)', type: 'number', required: true, value: 5 },
  { name: 'max_retries', label: 'Max Retries', type: 'number', required: true, value: 3 },
  { name: 'max_retries_down', label: 'Max Retries Down', type: 'number', value: 3 },
  { name: 'http_method', label: 'HTTP Method', type: 'select', options: opts(HTTP_METHODS), value: 'GET', when: httpMonitor },
  { name: 'expected_codes', label: 'Expected Codes', value: '200', when: httpMonitor },
  { name: 'url_path', label: 'URL Path', value: '/', when: httpMonitor },
  adminState,
];

export function l7policy(poolOptions) {
  const redirect = (raw) => raw.action === 'REDIRECT_TO_URL' || raw.action === 'REDIRECT_PREFIX';
  return [
    name,
    description,
    { name: 'action', label: 'Action', type: 'select', required: true, options: L7_ACTIONS, value: 'REDIRECT_TO_POOL' },
    { name: 'position', label: 'Position', type: 'number', value: 1 },
    { name: 'redirect_pool_id', label: 'Redirect Pool', type: 'select', options: poolOptions,
      when: (raw) => raw.action === 'REDIRECT_TO_POOL' },
    { name: 'redirect_url', label: 'Redirect URL', when: (raw) => raw.action === 'REDIRECT_TO_URL' },
    { name: 'redirect_prefix', label: 'Redirect Prefix', when: (raw) => raw.action === 'REDIRECT_PREFIX' },
    { name: 'redirect_http_code', label: 'Redirect HTTP Code', type: 'select', when: redirect,
      options: [['', 'Default (302)'], ...opts(['301', '302', '303', '307', '308'])],
      put: (out, value) => { out.redirect_http_code = value === null ? null : Number(value); } },
    adminState,
  ];
}

export const l7rule = [
  { name: 'type', label: 'Type', type: 'select', required: true, options: L7_TYPES },
  { name: 'compare_type', label: 'Compare Type', type: 'select', required: true, options: L7_COMPARE },
  { name: 'key', label: 'Key', when: (raw) => ['HEADER', 'COOKIE', 'SSL_DN_FIELD'].includes(raw.type) },
  { name: 'value', label: 'Value', required: true },
  { name: 'invert', label: 'Invert', type: 'checkbox', value: false },
  adminState,
];

// The pool protocol that goes with a listener protocol (Octavia's compatibility map).
export function poolProtocolFor(listenerProtocol) {
  return { HTTP: 'HTTP', TERMINATED_HTTPS: 'HTTP', HTTPS: 'HTTPS', TCP: 'TCP', UDP: 'UDP', SCTP: 'SCTP' }[listenerProtocol] || '';
}
