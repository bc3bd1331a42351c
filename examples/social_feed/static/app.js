// The region page: reads and writes its own region's replica over the crdtsync client API.
// Data model (see ../README.md): each post is an ORMap under "post:<hlc>:<region>" with LWW
// fields author/text/region/created, an AWORSet "likes" of user ids, and an ORMap
// "comments" of "<hlc>.<region>.<rand>" -> LWW {author, text}, ordered by that HLC.
"use strict";

const cfg = window.DEMO;
const $ = (id) => document.getElementById(id);
const posts = new Map();
let api = null;
let renderQueued = false;

class Api {
  constructor(url, onEvent, onState) {
    this.url = url; this.onEvent = onEvent; this.onState = onState;
    this.next = 1; this.pending = new Map(); this.ws = null; this.ready = null;
    this.connect();
  }
  connect() {
    this.ready = new Promise((resolve) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => { this.onState(true); resolve(); };
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.event) return this.onEvent(msg);
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        msg.ok ? p.resolve(msg) : p.reject(new Error(msg.error.code + ": " + msg.error.message));
      };
      ws.onclose = () => {
        this.onState(false);
        for (const p of this.pending.values()) p.reject(new Error("disconnected"));
        this.pending.clear();
        setTimeout(() => this.connect(), 1000);
      };
    });
    this.ready.then(() => start());
  }
  async request(op, fields = {}) {
    await this.ready;
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, op, ...fields }));
    });
  }
}

async function start() {
  await api.request("watch", { prefix: "post:" });
  const keys = (await api.request("keys", { prefix: "post:" })).value;
  const values = await Promise.all(keys.map((key) => api.request("get", { key })));
  keys.forEach((key, i) => { if (values[i].value) posts.set(key, values[i].value); });
  queueRender();
}

function onChange(msg) {
  if (msg.value === null) posts.delete(msg.key); else posts.set(msg.key, msg.value);
  queueRender();
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

const user = () => $("user").value;
const pad = (s) => s.padStart(20, "0");
const physicalMs = (hlc) => Number(BigInt(hlc) >> 16n);

function timeAgo(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago";
  return new Date(ms).toLocaleDateString();
}

function render() {
  const container = $("posts");
  const keys = [...posts.keys()].sort().reverse();  // newest first: keys start with an HLC
  $("empty").style.display = keys.length ? "none" : "block";
  $("stat-posts").textContent = keys.length;
  const existing = new Map([...container.children].map((el) => [el.dataset.key, el]));
  let prev = null;
  for (const key of keys) {
    let el = existing.get(key);
    if (!el) el = newPostElement(key);
    existing.delete(key);
    fillPost(el, posts.get(key));
    if (el.previousElementSibling !== prev || el.parentNode !== container) {
      prev ? prev.after(el) : container.prepend(el);
    }
    prev = el;
  }
  for (const el of existing.values()) el.remove();
}

function newPostElement(key) {
  const el = $("post-template").content.firstElementChild.cloneNode(true);
  el.dataset.key = key;
  el.querySelector(".like").addEventListener("click", () => toggleLike(key));
  el.querySelector(".comment-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = el.querySelector(".comment-input");
    const text = input.value.trim();
    if (text) addComment(key, text).then(() => { input.value = ""; });
  });
  return el;
}

function fillPost(el, post) {
  const author = post.author || "someone";
  const origin = post.region || "";
  el.querySelector(".avatar").textContent = author[0].toUpperCase();
  el.querySelector(".avatar").className = "avatar " + origin;
  el.querySelector(".author").textContent = author;
  const badge = el.querySelector(".origin");
  badge.textContent = origin; badge.className = "origin " + origin;
  el.querySelector(".when").textContent = post.created ? timeAgo(physicalMs(post.created)) : "";
  el.querySelector(".text").textContent = post.text || "";
  const likes = post.likes || [];
  const liked = likes.includes(user());
  const btn = el.querySelector(".like");
  btn.classList.toggle("liked", liked);
  btn.querySelector(".heart").textContent = liked ? "♥" : "♡";
  btn.querySelector(".count").textContent = likes.length;
  el.querySelector(".likers").textContent = likes.length ? "liked by " + likes.join(", ") : "";
  const list = el.querySelector(".comments");
  const comments = Object.entries(post.comments || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  list.replaceChildren(...comments.map(([cid, c]) => commentElement(el.dataset.key, cid, c)));
}

function commentElement(key, cid, c) {
  const li = document.createElement("li");
  li.className = "comment";
  li.dataset.cid = cid;
  const who = document.createElement("strong");
  who.textContent = c.author;
  const text = document.createElement("span");
  text.className = "c-text"; text.textContent = c.text;
  li.append(who, text);
  if (c.author === user()) {
    const del = document.createElement("button");
    del.className = "c-del"; del.title = "delete comment"; del.textContent = "×";
    del.addEventListener("click", () => api.request("map.remove", { key, field: ["comments", cid] }));
    li.append(del);
  }
  return li;
}

async function newHlc() {
  return pad((await api.request("clock.now")).value_str);
}

async function createPost(text) {
  const hlc = await newHlc();
  const key = `post:${hlc}:${cfg.region}`;
  const field = (name, value) => ({ op: "map.register.assign", key, field: name, value });
  await api.request("batch", { ops: [field("author", user()), field("text", text),
    field("region", cfg.region), field("created", hlc)] });
}

function toggleLike(key) {
  const likes = (posts.get(key) || {}).likes || [];
  const op = likes.includes(user()) ? "map.set.remove" : "map.set.add";
  return api.request(op, { key, field: "likes", element: user() });
}

async function addComment(key, text) {
  const cid = `${await newHlc()}.${cfg.region}.${Math.random().toString(36).slice(2, 6)}`;
  await api.request("map.register.assign", { key, field: ["comments", cid], value: { author: user(), text } });
}

function setupChrome() {
  const nav = $("region-nav");
  for (const r of cfg.regions) {
    const a = document.createElement("a");
    a.href = "/" + r; a.textContent = r.toUpperCase();
    a.className = r + (r === cfg.region ? " current" : "");
    nav.append(a);
  }
  const badge = $("region-badge");
  badge.textContent = cfg.region.toUpperCase(); badge.className = "region-badge " + cfg.region;
  const select = $("user");
  for (const u of cfg.users) select.append(new Option(u, u));
  select.value = localStorage.getItem("crdtsync-user") || cfg.users[0];
  select.addEventListener("change", () => { localStorage.setItem("crdtsync-user", select.value); render(); });
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("post-text").value.trim();
    if (text) createPost(text).then(() => { $("post-text").value = ""; });
  });
}

let control = null;  // the control websocket (partition switches, link status)

function connectControl() {
  const ws = new WebSocket(cfg.controlUrl);
  control = ws;
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "status") renderStatus(msg.regions);
  };
  ws.onclose = () => setTimeout(connectControl, 1000);
  $("partition").onclick = () => {
    const cut = $("partition").dataset.cut === "1";
    ws.send(JSON.stringify({ op: cut ? "heal" : "cut", region: cfg.region }));
  };
}

function renderStatus(regions) {
  const me = regions[cfg.region];
  if (!me) return;
  const list = $("peers");
  list.replaceChildren(...cfg.regions.filter((r) => r !== cfg.region).map((r) => {
    const info = me.peers[r];
    const li = document.createElement("li");
    li.dataset.peer = r;
    const name = document.createElement("span");
    name.textContent = "link to " + r.toUpperCase();
    const state = document.createElement("span");
    const up = info && info.connected;
    state.className = "pill " + (up ? "up" : "down");
    state.textContent = up ? `connected · lag ${info.lag_batches}` : "disconnected";
    const linkCut = Boolean(info && info.link_cut);
    const sw = document.createElement("button");
    sw.className = "link-switch" + (linkCut ? " cut" : "");
    sw.textContent = linkCut ? "heal link" : "cut link";
    sw.onclick = () => control && control.send(JSON.stringify(
      { op: linkCut ? "heal-link" : "cut-link", region: cfg.region, peer: r }));
    li.append(name, state, sw);
    const relayed = (info && info.relayed) || [];
    if (relayed.length) {  // this region forwards those regions' writes to that peer whole
      const relay = document.createElement("span");
      relay.className = "pill relay";
      relay.textContent = "relaying " + relayed.map((o) => o.toUpperCase()).join(", ") +
        " (it cannot reach " + (relayed.length > 1 ? "them" : "it") + ")";
      li.append(relay);
    }
    return li;
  }));
  const btn = $("partition");
  btn.dataset.cut = me.cut ? "1" : "0";
  btn.textContent = me.cut ? "Heal: reconnect this region" : "Cut this region off";
  btn.classList.toggle("cut", me.cut);
  document.body.classList.toggle("isolated", me.cut);
  $("stat-keys").textContent = me.keys ?? "–";
}

setupChrome();
api = new Api(cfg.clientUrl, onChange, (up) => {
  $("conn-state").textContent = up ? "connected to " + cfg.region.toUpperCase() + " replica" : "reconnecting…";
  $("post-button").disabled = !up;
});
connectControl();
setInterval(queueRender, 30000);  // keep "time ago" fresh
