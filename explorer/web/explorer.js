// The acd log explorer. Fetches the log's read path and JSON API beside
// this page and hands every answer to the protocol core (acd_explorer.wasm,
// built from explorer/src/lib.rs) to check; this file only fetches, stores
// the last checkpoint seen, and draws.

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();
const dec = new TextDecoder();
const here = (path) => new URL(path, document.baseURI);
const TRUST_KEY = "acd-explorer:trust";
const lastKey = (origin) => `acd-explorer:last:${origin}`;

let wasm;
let trust = { log: "", witnesses: [], threshold: 0 };
let pinned = false;
let latestSize = 0;
let pageEnd = null;
const PAGE = 20;

async function loadCore() {
  const res = await fetch(new URL("acd_explorer.wasm", import.meta.url));
  if (!res.ok) throw new Error(`the verifier (acd_explorer.wasm) could not be fetched: HTTP ${res.status}`);
  const { instance } = await WebAssembly.instantiate(await res.arrayBuffer(), {});
  wasm = instance.exports;
}

// One call into the core: JSON in, {ok} or {error} out.
function core(request) {
  const input = enc.encode(JSON.stringify(request));
  const p = wasm.acd_alloc(input.length) >>> 0;
  new Uint8Array(wasm.memory.buffer, p, input.length).set(input);
  const r = BigInt.asUintN(64, wasm.acd_call(p, input.length));
  wasm.acd_free(p, input.length);
  const rp = Number(r >> 32n);
  const rl = Number(r & 0xffffffffn);
  const text = dec.decode(new Uint8Array(wasm.memory.buffer, rp, rl).slice());
  wasm.acd_free(rp, rl);
  return JSON.parse(text);
}

async function fetchText(path) {
  const res = await fetch(here(path), { cache: "no-store" });
  const body = await res.text();
  if (!res.ok) {
    let msg = body;
    try { const j = JSON.parse(body); msg = j.message || j.error || body; } catch (_) { /* plain text */ }
    // A static server's error page says nothing more than its status.
    if ((res.headers.get("content-type") || "").startsWith("text/html")) msg = "not served here";
    throw new Error(`${path}: HTTP ${res.status}: ${msg}`);
  }
  return body;
}
const fetchJSON = async (path) => JSON.parse(await fetchText(path));

// A tile or entry bundle as hex: at the path for the tree size asked, or,
// since a mirror may replace a partial tile by the full one once the tree
// grew past it, at the full tile's path.
async function fetchTileHex(path, full) {
  let res = await fetch(here(path));
  if (!res.ok && full !== path) res = await fetch(here(full));
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// What the core answers, or an exception with its error.
function coreOk(request) {
  const a = core(request);
  if (a.error) throw new Error(a.error);
  return a.ok;
}

// The consistency proof from `from` to `to`: from the log's JSON API, or,
// on a mirror of the read path only, computed by the core from the hash
// tiles. Either way `checkpoint` verifies it against both signed roots.
async function consistencyProof(from, to) {
  try {
    return (await fetchJSON(`api/v1/consistency?from=${from}&to=${to}`)).proof;
  } catch (apiError) {
    try {
      const tiles = {};
      for (const t of coreOk({ op: "consistency_tiles", from, to }).tiles) {
        tiles[t.path] = await fetchTileHex(t.path, t.full);
      }
      return coreOk({ op: "consistency_from_tiles", from, to, tiles }).proof;
    } catch (tileError) {
      throw new Error(`${apiError.message}; from the tiles: ${tileError.message}`);
    }
  }
}

function setStatus(id, state, text) {
  const el = $(id);
  el.dataset.state = state;
  el.textContent = text;
}

function fact(dl, name, value, cls) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (cls) dd.className = cls;
  dl.append(dt, dd);
}

const time = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
const short = (hex) => `${hex.slice(0, 8)}…${hex.slice(-4)}`;

// Trust: pinned keys from this browser's storage, else what the server says
// about itself (shown as such: a server that lies about its own key is
// caught only once its key is pinned).
async function loadTrust() {
  const stored = localStorage.getItem(TRUST_KEY);
  if (stored) {
    trust = JSON.parse(stored);
    pinned = true;
  } else {
    try {
      const info = await fetchJSON("api/v1/log");
      trust = { log: info.vkey, witnesses: info.witnesses, threshold: info.threshold };
    } catch (_) {
      try {
        trust = { log: (await fetchText("vkey")).trim(), witnesses: [], threshold: 0 };
      } catch (_) {
        // A mirror of the read path serves no key: the user brings it.
        trust = { log: "", witnesses: [], threshold: 0 };
      }
    }
  }
  showTrust();
}

function showTrust() {
  $("log-key").value = trust.log;
  $("witness-keys").value = trust.witnesses.join("\n");
  $("threshold").value = String(trust.threshold);
  $("trust-status").textContent = pinned
    ? "Keys pinned in this browser: every checkpoint must be signed by this log key."
    : trust.log === ""
      ? "This server does not state the log's key (a mirror of the read path): paste the log's verifier key and the witnesses' keys you know, and pin them."
      : "Keys as this server states them, not pinned: pin them (or paste the keys you know) so that a server that changes its key is caught.";
}

function readTrust() {
  return {
    log: $("log-key").value.trim(),
    witnesses: $("witness-keys").value.split("\n").map((s) => s.trim()).filter(Boolean),
    threshold: Number($("threshold").value) || 0,
  };
}

// Checks a signed checkpoint, then its consistency with the last one this
// browser accepted for the origin; stores it when it moves the view forward.
async function checkCheckpoint(note) {
  const origin = note.split("\n", 1)[0];
  const previous = localStorage.getItem(lastKey(origin));
  const req = { op: "checkpoint", note, trust, previous };
  let a = core(req);
  if (a.ok && a.ok.view.state === "needs_consistency") {
    const { from, to } = a.ok.view;
    try {
      a = core({ ...req, consistency: await consistencyProof(from, to) });
    } catch (e) {
      a.ok.view = { state: "unchecked", reason: `no consistency proof from ${from} to ${to}: ${e.message}` };
    }
  }
  if (a.ok && (a.ok.view.state === "first" || a.ok.view.state === "newer")) {
    localStorage.setItem(lastKey(a.ok.origin), note);
  }
  return a;
}

function viewText(v) {
  switch (v.state) {
    case "first": return v.reason ? `first checkpoint kept (${v.reason})` : "first checkpoint this browser has seen of this log";
    case "same": return "the same checkpoint as this browser saw before";
    case "newer": return `consistent with the checkpoint of size ${v.from} this browser saw before (consistency proof verified)`;
    case "older": return `older than the checkpoint of size ${v.latest} seen before, and consistent with it`;
    case "split": return `NOT consistent with the checkpoint seen before: ${v.reason}`;
    default: return v.reason || v.state;
  }
}

function showSplit(v) {
  $("split").hidden = v.state !== "split";
  if (v.state !== "split") return;
  $("split-reason").textContent = v.definite
    ? `${v.reason}. Both checkpoints carry the log's valid signature: together they prove the log forked.`
    : `${v.reason}. Either the log forked or it served a broken consistency proof; both signed checkpoints are below.`;
  $("split-previous").textContent = v.previous;
  $("split-current").textContent = v.current;
}

function showSignatures(cp) {
  const body = $("signatures").querySelector("tbody");
  body.replaceChildren();
  for (const s of cp.signatures) {
    const tr = document.createElement("tr");
    const cells = [s.name, s.key_id, s.role, s.type || "", s.timestamp ? time(s.timestamp * 1000) : "", s.verified ? "yes" : "no"];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    tr.lastChild.className = s.verified ? "ok" : "bad";
    body.append(tr);
  }
}

async function refresh() {
  let note;
  try {
    note = await fetchText("checkpoint");
  } catch (e) {
    setStatus("checkpoint-status", "failed", `failed: ${e.message}`);
    return;
  }
  const a = await checkCheckpoint(note);
  if (a.error) {
    setStatus("checkpoint-status", "failed", `failed: ${a.error}`);
    return;
  }
  const cp = a.ok;
  $("origin").textContent = cp.origin;
  $("size").textContent = String(cp.size);
  $("root").textContent = cp.root;
  $("witness-summary").textContent =
    `${cp.cosigned} of the ${trust.witnesses.length} trusted witnesses cosigned (${cp.threshold} required)`;
  $("consistency").textContent = viewText(cp.view);
  showSignatures(cp);
  showSplit(cp.view);
  if (cp.view.state === "split") {
    setStatus("checkpoint-status", "failed", "failed: split view");
  } else if (!cp.policy_met) {
    setStatus("checkpoint-status", "warning", `signed by the log, but the witness policy is not met`);
  } else {
    setStatus("checkpoint-status", "verified", cp.view.state === "unchecked"
      ? "signature verified; consistency not checked"
      : "verified");
  }
  latestSize = cp.size;
  if (pageEnd === null || pageEnd > latestSize) pageEnd = latestSize;
  await showEntries();
}

async function lookup(tid) {
  const dl = $("lookup-facts");
  dl.replaceChildren();
  setStatus("lookup-status", "pending", "checking…");
  let proof;
  try {
    proof = await fetchJSON(`tx/${encodeURIComponent(tid)}`);
  } catch (e) {
    setStatus("lookup-status", "failed", `failed: ${e.message}`);
    return;
  }
  const a = core({ op: "entry", proof, trust });
  if (a.error) {
    setStatus("lookup-status", "failed", `failed: ${a.error}`);
    return;
  }
  const e = a.ok;
  const view = await checkCheckpoint(proof.checkpoint);
  const consistent = view.ok && view.ok.view.state !== "split";
  fact(dl, "Outcome", e.outcome === "commit" ? "commit: the merchant published the goods key" : "abort: the transaction failed, the customer is refunded");
  fact(dl, "TID", e.tid, "hash");
  fact(dl, "Entry", `#${e.index} of a tree of ${e.checkpoint.size}, inclusion proof of ${e.inclusion} hashes`);
  fact(dl, "Merchant key", e.merchant, "hash");
  fact(dl, "Logged", time(e.timestamp_ms));
  fact(dl, "Expires", time(e.expiration_ms));
  fact(dl, "In time", e.timely ? "yes" : "no");
  fact(dl, "Checkpoint", view.ok ? viewText(view.ok.view) : view.error);
  if (!consistent) {
    if (view.ok) showSplit(view.ok.view);
    setStatus("lookup-status", "failed", "failed: the proof's checkpoint is not consistent with this browser's view");
  } else if (!e.checkpoint.policy_met) {
    setStatus("lookup-status", "warning", "inclusion verified, but the witness policy is not met");
  } else {
    setStatus("lookup-status", "verified", `verified: ${e.outcome}`);
  }
}

function checkBundle(text) {
  const dl = $("bundle-facts");
  dl.replaceChildren();
  let bundle;
  try {
    bundle = JSON.parse(text);
  } catch (e) {
    setStatus("bundle-status", "failed", `failed: not JSON: ${e.message}`);
    return;
  }
  const a = core({ op: "bundle", bundle, trust });
  if (a.error) {
    setStatus("bundle-status", "failed", `failed: ${a.error}`);
    return;
  }
  const b = a.ok;
  fact(dl, "Goods", `${b.description} (price ${b.price})`);
  fact(dl, "TID", b.tid, "hash");
  fact(dl, "Goods key", b.key, "hash");
  fact(dl, "Plaintext SHA-256", b.plaintext_hash, "hash");
  fact(dl, "Ciphertext SHA-256", b.ciphertext_hash, "hash");
  fact(dl, "Committed", `${time(b.timestamp_ms)}, before the expiration ${time(b.expiration_ms)}`);
  fact(dl, "Entry", `#${b.index} of a tree of ${b.checkpoint.size} (${b.checkpoint.origin})`);
  setStatus("bundle-status", "verified", "verified: the merchant committed the key of these goods in time");
}

async function showEntries() {
  const body = $("entries").querySelector("tbody");
  body.replaceChildren();
  const end = pageEnd ?? 0;
  const start = Math.max(0, end - PAGE);
  $("entries-range").textContent = end === 0 ? "no entries" : `${start}–${end - 1} of ${latestSize}`;
  if (end === 0) return;
  const origin = $("origin").textContent;
  let a;
  try {
    const list = await fetchJSON(`api/v1/entries?start=${start}&end=${end}`);
    a = core({ op: "entries", origin, entries: list.entries });
  } catch (apiError) {
    // A mirror of the read path: the entry bundles hold the same entries.
    try {
      const bundles = [];
      for (const b of coreOk({ op: "entry_bundles", start, end, size: latestSize }).bundles) {
        bundles.push(await fetchTileHex(b.path, b.full));
      }
      a = core({ op: "bundle_entries", origin, start, end, bundles });
    } catch (e) {
      $("entries-range").textContent = `entries not available here: ${apiError.message}; ${e.message}`;
      return;
    }
  }
  if (a.error) {
    $("entries-range").textContent = `failed: ${a.error}`;
    return;
  }
  for (const e of a.ok.entries.reverse()) {
    const tr = document.createElement("tr");
    const td = (text, cls) => {
      const c = document.createElement("td");
      c.textContent = text;
      if (cls) c.className = cls;
      tr.append(c);
      return c;
    };
    td(String(e.index));
    if (e.error) {
      td(`undecodable: ${e.error}`, "bad");
    } else {
      td(e.outcome);
      const link = document.createElement("a");
      link.textContent = e.tid;
      link.addEventListener("click", () => { $("tid").value = e.tid; lookup(e.tid); });
      td("", "mono").append(link);
      td(short(e.merchant), "mono");
      td(time(e.timestamp_ms));
      td(time(e.expiration_ms));
      td(e.signature_ok ? "valid" : "INVALID", e.signature_ok ? "ok" : "bad");
    }
    body.append(tr);
  }
}

function wire() {
  $("refresh").addEventListener("click", refresh);
  $("lookup-form").addEventListener("submit", (ev) => { ev.preventDefault(); lookup($("tid").value.trim()); });
  $("check-bundle").addEventListener("click", () => checkBundle($("bundle").value));
  $("pin").addEventListener("click", () => {
    trust = readTrust();
    localStorage.setItem(TRUST_KEY, JSON.stringify(trust));
    pinned = true;
    showTrust();
    refresh();
  });
  $("forget").addEventListener("click", () => {
    localStorage.clear();
    location.reload();
  });
  $("newer").addEventListener("click", () => { pageEnd = Math.min(latestSize, (pageEnd ?? 0) + PAGE); showEntries(); });
  $("older").addEventListener("click", () => { pageEnd = Math.max(Math.min(PAGE, latestSize), (pageEnd ?? 0) - PAGE); showEntries(); });
  const drop = $("drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const file = ev.dataTransfer.files[0];
    if (!file) return;
    const text = await file.text();
    $("bundle").value = text;
    checkBundle(text);
  });
}

async function main() {
  wire();
  try {
    await loadCore();
    await loadTrust();
  } catch (e) {
    setStatus("checkpoint-status", "failed", `failed: ${e.message}`);
    return;
  }
  const tid = new URLSearchParams(location.search).get("tid");
  await refresh();
  if (tid) {
    $("tid").value = tid;
    await lookup(tid);
  }
  document.body.dataset.ready = "yes";
}

main();
