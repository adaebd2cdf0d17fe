// Building DOM nodes without HTML strings: every text goes in as a text node, so no value
// from the API is ever parsed as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { child.forEach((c) => append(parent, c)); return; }
  parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
}

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
      el.value = value;
    } else if (key === 'checked' || key === 'selected') {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  return el;
}

export function h(tag, attrs, ...children) {
  const el = apply(document.createElement(tag), attrs);
  append(el, children);
  return el;
}

export function s(tag, attrs, ...children) {
  const el = apply(document.createElementNS(SVG_NS, tag), attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// Operating and provisioning statuses in colour, always with their word (colour is not the
// only cue).
export function badge(status) {
  const word = status || 'UNKNOWN';
  return h('span', { class: `badge st-${word.toLowerCase()}` }, word);
}

export function shortId(id) {
  return id ? id.slice(0, 8) : '';
}

export function label(obj) {
  return (obj && obj.name) || shortId(obj && obj.id) || '';
}

export function when(iso) {
  if (!iso) return '';
  return iso.replace('T', ' ').replace(/Z$/, '').slice(0, 19);
}

export function link(href, text, attrs) {
  return h('a', { href, ...(attrs || {}) }, text);
}

export function table(columns, rows, empty) {
  const head = h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c))));
  const body = h('tbody', null, rows.length
    ? rows
    : h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty || 'None.')));
  return h('div', { class: 'table-wrap' }, h('table', null, head, body));
}

export function toast(message, kind) {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind || ''}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

export function details(pairs) {
  return h('dl', { class: 'details' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function section(title, id, ...children) {
  return h('section', { class: 'block', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}
