// Option lists for selects (subnets, flavors, secrets...), fetched once per page view.

import { get, LB } from './api.js';

const cache = new Map();

function once(key, load) {
  if (!cache.has(key)) cache.set(key, load().catch((err) => { cache.delete(key); throw err; }));
  return cache.get(key);
}

export function forget() { cache.clear(); }

export function subnets() {
  return once('subnets', async () => (await get('networking/v2.0/subnets')).subnets);
}

export async function subnetOptions() {
  return [['', 'Select a subnet'], ...(await subnets()).map((s) => [s.id, `${s.name || s.id} (${s.cidr})`])];
}

export async function subnetName(id) {
  const found = (await subnets()).find((s) => s.id === id);
  return found ? `${found.name || found.id} (${found.cidr})` : id;
}

export function flavors() {
  return once('flavors', async () => (await get(`${LB}/flavors`)).flavors);
}

export async function flavorOptions() {
  return [['', 'Default'], ...(await flavors()).filter((f) => f.enabled).map((f) => [f.id, f.name])];
}

export async function providerOptions() {
  const list = await once('providers', async () => (await get(`${LB}/providers`)).providers);
  return [['', 'Default'], ...list.map((p) => [p.name, `${p.name} — ${p.description}`])];
}

export async function zoneOptions() {
  const list = await once('zones', async () => (await get(`${LB}/availabilityzones`)).availability_zones);
  return [['', 'Default'], ...list.filter((z) => z.enabled).map((z) => [z.name, z.name])];
}

// Certificates for TERMINATED_HTTPS: secrets (PKCS12 bundles) and certificate containers.
export async function certificateOptions() {
  const [secrets, containers] = await once('certificates', () => Promise.all([
    get('key-manager/v1/secrets?limit=100').then((b) => b.secrets || []).catch(() => []),
    get('key-manager/v1/containers?limit=100').then((b) => b.containers || []).catch(() => []),
  ]));
  return [['', 'Select a certificate'],
    ...secrets.map((s) => [s.secret_ref, `Secret: ${s.name || s.secret_ref}`]),
    ...containers.filter((c) => c.type === 'certificate')
      .map((c) => [c.container_ref, `Container: ${c.name || c.container_ref}`])];
}

export async function externalNetworks() {
  const nets = (await get('networking/v2.0/networks')).networks;
  return nets.filter((n) => n['router:external']);
}
