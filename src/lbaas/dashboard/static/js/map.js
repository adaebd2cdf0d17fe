// The live resource map: load balancer → listeners → L7 policies → pools → members, each
// node coloured by its operating status (and saying it in words). Redrawn only when the
// structure changes; otherwise just the statuses are updated, so focus and scroll stay put.

import { h, s, replace, shortId } from './dom.js';

const COL_X = [10, 210, 410, 610, 810];
const NODE_W = 176;
const NODE_H = 54;
const PITCH = 66;
const WIDTH = 996;

function cut(text, n = 24) {
  const t = String(text ?? '');
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

function layout(tree) {
  const listeners = [...tree.listeners].sort((a, b) => a.protocol_port - b.protocol_port);
  const policies = listeners.flatMap((l) => [...(tree.policies[l.id] || [])].sort((a, b) => a.position - b.position));
  const poolIds = [];
  const addPool = (id) => { if (id && !poolIds.includes(id) && tree.pools.some((p) => p.id === id)) poolIds.push(id); };
  listeners.forEach((l) => addPool(l.default_pool_id));
  policies.forEach((p) => addPool(p.redirect_pool_id));
  tree.pools.forEach((p) => addPool(p.id));
  const pools = poolIds.map((id) => tree.pools.find((p) => p.id === id));
  const members = pools.flatMap((p) => (tree.members[p.id] || []).map((m) => ({ ...m, pool_id: p.id })));
  const lb = tree.lb;
  const nodes = [
    { kind: 'loadbalancer', col: 0, obj: lb, title: lb.name || shortId(lb.id), detail: lb.vip_address, href: null },
    ...listeners.map((l) => ({ kind: 'listener', col: 1, obj: l, title: l.name || shortId(l.id),
      detail: `${l.protocol}:${l.protocol_port}`, href: `#/listeners/${l.id}` })),
    ...policies.map((p) => ({ kind: 'l7policy', col: 2, obj: p, title: p.name || shortId(p.id),
      detail: `${p.position}. ${p.action}`, href: `#/l7policies/${p.id}` })),
    ...pools.map((p) => ({ kind: 'pool', col: 3, obj: p, title: p.name || shortId(p.id),
      detail: `${p.protocol} · ${p.lb_algorithm}`,
      href: `#/pools/${p.id}` })),
    ...members.map((m) => ({ kind: 'member', col: 4, obj: m, title: m.name || `${m.address}:${m.protocol_port}`,
      detail: `${m.name ? `${m.address}:${m.protocol_port} · ` : ''}weight ${m.weight}${m.backup ? ' · backup' : ''}`
        + `${m.admin_state_up ? '' : ' · disabled'}`,
      href: `#/pools/${m.pool_id}` })),
  ];
  const edges = [];
  listeners.forEach((l) => {
    edges.push([lb.id, l.id, '']);
    (tree.policies[l.id] || []).forEach((p) => {
      edges.push([l.id, p.id, '']);
      if (p.redirect_pool_id) edges.push([p.id, p.redirect_pool_id, '']);
    });
    if (l.default_pool_id) edges.push([l.id, l.default_pool_id, '']);
  });
  const attached = new Set(edges.map((e) => e[1]));
  pools.forEach((p) => { if (!attached.has(p.id)) edges.push([lb.id, p.id, 'loose']); });
  members.forEach((m) => edges.push([m.pool_id, m.id, '']));
  const counts = [0, 0, 0, 0, 0];
  nodes.forEach((n) => { counts[n.col] += 1; });
  const rows = Math.max(1, ...counts);
  const height = rows * PITCH + 10;
  const seen = [0, 0, 0, 0, 0];
  nodes.forEach((n) => {
    const offset = (height - counts[n.col] * PITCH) / 2;
    n.x = COL_X[n.col];
    n.y = offset + seen[n.col] * PITCH + (PITCH - NODE_H) / 2;
    seen[n.col] += 1;
  });
  return { nodes, edges, height };
}

function signature(tree, nodes) {
  return JSON.stringify(nodes.map((n) => [n.kind, n.obj.id, n.title, n.detail]))
    + JSON.stringify(tree.listeners.map((l) => l.default_pool_id));
}

const KIND = { loadbalancer: 'Load balancer', listener: 'Listener', l7policy: 'L7 policy', pool: 'Pool', member: 'Member' };

export class ResourceMap {
  constructor(label) {
    this.svg = s('svg', { class: 'map', role: 'group', 'aria-label': label, viewBox: `0 0 ${WIDTH} 80` });
    this.element = h('div', { class: 'map-wrap' }, this.svg);
    this.sig = '';
    this.byId = new Map();
  }

  status(node, statuses) {
    const live = statuses && statuses.get(node.obj.id);
    return {
      op: (live && live.operating_status) || node.obj.operating_status || 'UNKNOWN',
      prov: (live && live.provisioning_status) || node.obj.provisioning_status || '',
    };
  }

  update(tree, statuses) {
    const { nodes, edges, height } = layout(tree);
    const sig = signature(tree, nodes);
    if (sig !== this.sig) {
      this.sig = sig;
      this.draw(nodes, edges, height);
    }
    for (const node of nodes) this.paint(this.byId.get(node.obj.id), this.status(node, statuses), node);
  }

  draw(nodes, edges, height) {
    this.svg.setAttribute('viewBox', `0 0 ${WIDTH} ${height}`);
    const at = new Map(nodes.map((n) => [n.obj.id, n]));
    const paths = edges.filter(([a, b]) => at.has(a) && at.has(b)).map(([a, b, cls]) => {
      const p = at.get(a); const q = at.get(b);
      const x1 = p.x + NODE_W; const y1 = p.y + NODE_H / 2; const x2 = q.x; const y2 = q.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      return s('path', { class: `edge ${cls}`, d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` });
    });
    this.byId = new Map();
    const groups = nodes.map((n) => {
      const title = s('title');
      const state = s('text', { class: 'node-status', x: n.x + 10, y: n.y + 47 });
      const g = s('g', { class: 'node', 'data-kind': n.kind, 'data-id': n.obj.id },
        title,
        s('rect', { x: n.x, y: n.y, width: NODE_W, height: NODE_H, rx: 7 }),
        s('text', { class: 'node-title', x: n.x + 10, y: n.y + 17 }, cut(n.title)),
        s('text', { class: 'node-detail', x: n.x + 10, y: n.y + 32 }, cut(n.detail, 27)),
        state);
      this.byId.set(n.obj.id, { g, title, state });
      return n.href ? s('a', { href: n.href, class: 'node-link' }, g) : g;
    });
    replace(this.svg, paths, groups);
  }

  paint(parts, { op, prov }, node) {
    if (!parts) return;
    const pending = prov.startsWith('PENDING');
    parts.g.setAttribute('class', `node st-${op.toLowerCase()}${pending ? ' pending' : ''}`);
    parts.g.setAttribute('data-status', op);
    parts.g.setAttribute('data-provisioning', prov);
    parts.state.textContent = pending ? `${op} · ${prov}` : op;
    parts.title.textContent = `${KIND[node.kind]} ${node.title} (${node.detail}): ${op}${prov ? `, ${prov}` : ''}`;
  }
}
