// Start-up, sign-in and the hash router: #/loadbalancers, #/loadbalancers/<id>, ...
// Each view gets a fresh main element and a View whose timers stop when the user leaves.

import { session } from './api.js';
import { h, replace, toast } from './dom.js';
import { forget } from './lookups.js';
import { signInView } from './views/signin.js';
import { listView } from './views/list.js';
import { wizardView } from './views/wizard.js';
import { loadBalancerView } from './views/loadbalancer.js';
import { listenerView, poolView, l7policyView } from './views/children.js';
import { amphoraeView } from './views/amphorae.js';
import { quotasView } from './views/quotas.js';
import { state } from './state.js';

const ROUTES = [
  [/^\/loadbalancers$/, listView, 'loadbalancers'],
  [/^\/loadbalancers\/new$/, wizardView, 'loadbalancers'],
  [/^\/loadbalancers\/([\w-]+)$/, loadBalancerView, 'loadbalancers'],
  [/^\/listeners\/([\w-]+)$/, listenerView, 'loadbalancers'],
  [/^\/pools\/([\w-]+)$/, poolView, 'loadbalancers'],
  [/^\/l7policies\/([\w-]+)$/, l7policyView, 'loadbalancers'],
  [/^\/amphorae$/, amphoraeView, 'amphorae'],
  [/^\/quotas$/, quotasView, 'quotas'],
];

// Timers that belong to one page view; polling pauses while the tab is hidden.
export class View {
  constructor() { this.alive = true; this.timers = new Set(); }

  // Run fn every ms milliseconds (the first time after ms), one run at a time.
  every(ms, fn) {
    const tick = async () => {
      if (!this.alive) return;
      if (!document.hidden) {
        try { await fn(); } catch (err) { if (this.alive) console.warn(err); }
      }
      if (this.alive) this.timers.add(setTimeout(tick, ms));
    };
    this.timers.add(setTimeout(tick, ms));
  }

  stop() { this.alive = false; this.timers.forEach(clearTimeout); }
}

let current = null;

function main() { return document.getElementById('main'); }

function route() {
  const path = (window.location.hash || '#/loadbalancers').slice(1);
  if (!path.startsWith('/')) return; // an in-page anchor
  if (current) current.stop();
  forget();
  document.querySelectorAll('dialog').forEach((d) => d.remove());
  current = new View();
  const found = ROUTES.map(([re, view, section]) => [re.exec(path), view, section]).find(([m]) => m);
  const el = replace(main());
  if (!found) {
    window.location.hash = '#/loadbalancers';
    return;
  }
  const [match, view, section] = found;
  document.querySelectorAll('#nav a').forEach((a) => {
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  view(el, current, ...match.slice(1)).then(() => {
    const heading = el.querySelector('h1');
    if (heading && document.activeElement === document.body) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
  }).catch((err) => {
    el.append(h('div', { class: 'alert', role: 'alert' }, err.message || String(err)));
  });
}

function showWho(who) {
  const box = replace(document.getElementById('who'));
  const nav = document.getElementById('nav');
  nav.hidden = false;
  nav.querySelectorAll('[data-admin]').forEach((a) => { a.hidden = !who.is_admin; });
  if (who.auth_strategy === 'noauth') {
    box.append(h('span', { class: 'muted' }, `noauth · project ${who.project}`));
    return;
  }
  box.append(h('span', null, `${who.user} · ${who.project}`), ' ',
    h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign Out'));
}

async function signOut() {
  try { await session.signOut(); } catch { /* the cookie is gone either way */ }
  window.location.hash = '#/loadbalancers';
  window.location.reload();
}

function showSignIn() {
  if (current) current.stop();
  document.getElementById('nav').hidden = true;
  replace(document.getElementById('who'));
  signInView(replace(main()), (who) => start(who));
}

function start(who) {
  state.who = who;
  showWho(who);
  if (!window.location.hash.startsWith('#/')) window.location.hash = '#/loadbalancers';
  route();
}

async function boot() {
  document.getElementById('skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    main().focus();
  });
  window.addEventListener('hashchange', () => { if (state.who) route(); });
  window.addEventListener('lbaas:unauthorized', () => {
    if (state.who && state.who.auth_strategy === 'keystone') {
      state.who = null;
      toast('Your session has ended: sign in again.', 'error');
      showSignIn();
    }
  });
  let who;
  try {
    who = await session.get();
  } catch (err) {
    replace(main(), h('div', { class: 'alert', role: 'alert' }, err.message));
    return;
  }
  if (!who.authenticated) showSignIn(); else start(who);
}

boot();
