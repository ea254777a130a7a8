// The log explorer in a real browser: Debian's Chromium, driven by
// playwright-core. Run by tests/tests/explorer.rs, one phase at a time, with
// one browser profile kept across phases (the page's stored checkpoint lives
// in it), so that a log replaced by a fork between two phases is seen by the
// same browser.
//
// Environment: ACD_TEST_CHROMIUM (the browser), EXPLORER_URL (the page),
// EXPLORER_PROFILE (profile directory), EXPLORER_PHASE ("honest",
// "mirror", "mirror-grown" or "forked"), and as the phases need them:
// EXPLORER_SIZE (the tree size to show), EXPLORER_PREVIOUS_SIZE (the size
// seen before), EXPLORER_TID (a committed TID), EXPLORER_BUNDLE (a proof
// bundle file), EXPLORER_LOG_KEY and EXPLORER_WITNESS_KEY (the keys to pin),
// EXPLORER_SCREENSHOT (optional PNG).
// Exits non-zero, naming the first check that failed.

import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

async function status(page, id) {
  await page.waitForFunction(
    (sel) => {
      const s = document.querySelector(sel)?.dataset.state;
      return s && s !== "pending" && s !== "idle";
    },
    `#${id}`,
    { timeout: 20000 },
  );
  return {
    state: await page.getAttribute(`#${id}`, "data-state"),
    text: await page.textContent(`#${id}`),
  };
}

async function open(context, url) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector("body[data-ready='yes']", { timeout: 20000 }).catch(async (e) => {
    throw new Error(`the page did not get ready: ${e.message}; page errors: ${errors.join("; ")}; status: ${await page.textContent("#checkpoint-status")}`);
  });
  return { page, errors };
}

async function honest(context, url) {
  const { page, errors } = await open(context, url);
  const cp = await status(page, "checkpoint-status");
  check(cp.state === "verified", `the checkpoint verifies (${cp.text})`);
  check((await page.textContent("#size")) === env("EXPLORER_SIZE"), `the page shows the tree size ${env("EXPLORER_SIZE")}`);
  const sigs = await page.$$eval("#signatures tbody tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  check(sigs.some((r) => r[2] === "log" && r[5] === "yes"), "the log's signature is shown verified");
  check(sigs.some((r) => r[2] === "witness" && r[3] === "ml-dsa-44" && r[5] === "yes"), "the witness's ML-DSA-44 cosignature is shown verified");
  check((await page.$$("#entries tbody tr")).length > 0, "entries are listed");

  // Pin the log's key, as a user who knows it would.
  await page.fill("#log-key", env("EXPLORER_LOG_KEY"));
  await page.click("#pin");
  await page.waitForFunction(() => document.querySelector("#trust-status").textContent.includes("pinned"));
  check((await status(page, "checkpoint-status")).state === "verified", "the checkpoint verifies under the pinned key");

  // A TID lookup: outcome, inclusion proof and checkpoint verified here.
  const tid = env("EXPLORER_TID");
  await page.fill("#tid", tid);
  await page.click("#lookup-form button");
  let look = await status(page, "lookup-status");
  check(look.state === "verified" && look.text.includes("commit"), `the TID lookup says verified (${look.text})`);

  // The same lookup with one hash of the inclusion proof flipped on the way.
  await page.route("**/tx/*", async (route) => {
    const response = await route.fetch();
    const proof = await response.json();
    const h = proof.inclusion[0];
    proof.inclusion[0] = (h[0] === "0" ? "1" : "0") + h.slice(1);
    await route.fulfill({ response, json: proof });
  });
  await page.evaluate(() => { document.querySelector("#lookup-status").dataset.state = "pending"; });
  await page.click("#lookup-form button");
  look = await status(page, "lookup-status");
  check(look.state === "failed" && look.text.includes("inclusion"), `a tampered inclusion proof is shown failed (${look.text})`);
  await page.unroute("**/tx/*");

  // A proof bundle dropped onto the page, then a tampered copy pasted.
  const bundle = readFileSync(env("EXPLORER_BUNDLE"), "utf8");
  const dt = await page.evaluateHandle((text) => {
    const d = new DataTransfer();
    d.items.add(new File([text], "bundle.json", { type: "application/json" }));
    return d;
  }, bundle);
  await page.dispatchEvent("#drop", "drop", { dataTransfer: dt });
  let b = await status(page, "bundle-status");
  check(b.state === "verified", `a dropped proof bundle verifies (${b.text})`);
  const tampered = JSON.parse(bundle);
  tampered.offer.offer.price += 1;
  await page.evaluate(() => { document.querySelector("#bundle-status").dataset.state = "pending"; });
  await page.fill("#bundle", JSON.stringify(tampered));
  await page.click("#check-bundle");
  b = await status(page, "bundle-status");
  check(b.state === "failed" && b.text.includes("offer"), `a tampered bundle is shown failed (${b.text})`);

  if (process.env.EXPLORER_SCREENSHOT) {
    await page.fill("#bundle", bundle);
    await page.click("#check-bundle");
    await page.fill("#tid", tid);
    await page.click("#lookup-form button");
    await status(page, "lookup-status");
    await page.screenshot({ path: process.env.EXPLORER_SCREENSHOT, fullPage: true });
  }
  check(errors.length === 0, `no script errors (${errors.join("; ")})`);
}

// The same page from a static server that mirrors only the read path: no
// key is stated, so the user pastes the keys; the checkpoint, its
// cosignature and the entries (from the entry bundles) verify.
async function mirror(context, url) {
  const { page, errors } = await open(context, url);
  check((await page.textContent("#trust-status")).includes("does not state the log's key"), "the mirror states no key and the page says so");
  await page.fill("#log-key", env("EXPLORER_LOG_KEY"));
  await page.fill("#witness-keys", env("EXPLORER_WITNESS_KEY"));
  await page.fill("#threshold", "1");
  await page.evaluate(() => { document.querySelector("#checkpoint-status").dataset.state = "pending"; });
  await page.click("#pin");
  const cp = await status(page, "checkpoint-status");
  check(cp.state === "verified", `the mirror's checkpoint verifies under the pasted keys (${cp.text})`);
  check((await page.textContent("#size")) === env("EXPLORER_SIZE"), `the mirror shows the tree size ${env("EXPLORER_SIZE")}`);
  const sigs = await page.$$eval("#signatures tbody tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  check(sigs.some((r) => r[2] === "witness" && r[5] === "yes"), "the witness's cosignature is shown verified on the mirror");
  await entriesListed(page);
  check(errors.length === 0, `no script errors (${errors.join("; ")})`);
}

// The mirror after the log grew: the page proves the new checkpoint
// consistent with the one it kept, from the hash tiles alone.
async function mirrorGrown(context, url) {
  const { page, errors } = await open(context, url);
  const cp = await status(page, "checkpoint-status");
  check(cp.state === "verified", `the grown mirror's checkpoint verifies (${cp.text})`);
  check((await page.textContent("#size")) === env("EXPLORER_SIZE"), `the mirror shows the tree size ${env("EXPLORER_SIZE")}`);
  const consistency = await page.textContent("#consistency");
  check(consistency.includes(`consistent with the checkpoint of size ${env("EXPLORER_PREVIOUS_SIZE")}`) && consistency.includes("proof verified"),
    `consistency with the kept checkpoint is proved from the tiles (${consistency})`);
  await entriesListed(page);
  // The TID lookup needs the log's API, and says so.
  await page.fill("#tid", env("EXPLORER_TID"));
  await page.click("#lookup-form button");
  const look = await status(page, "lookup-status");
  check(look.state === "failed" && look.text.includes("404"), `a TID lookup on the mirror says it is not served (${look.text})`);
  check(errors.length === 0, `no script errors (${errors.join("; ")})`);
}

async function entriesListed(page) {
  await page.waitForFunction(() => document.querySelectorAll("#entries tbody tr").length > 0
    || document.querySelector("#entries-range").textContent.includes("not available"), null, { timeout: 20000 });
  const rows = await page.$$eval("#entries tbody tr", (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  check(rows.length === 20 && rows.every((r) => r[r.length - 1] === "valid"),
    `20 entries are listed from the entry bundles, each signature valid (${await page.textContent("#entries-range")})`);
}

async function forked(context, url) {
  const { page } = await open(context, url);
  const cp = await status(page, "checkpoint-status");
  check(cp.state === "failed" && cp.text.includes("split view"), `the forked checkpoint is shown failed (${cp.text})`);
  check(await page.isVisible("#split"), "the split view is shown");
  const previous = await page.textContent("#split-previous");
  const current = await page.textContent("#split-current");
  check(previous !== current && previous.includes("\n\u2014 ") && current.includes("\n\u2014 "), "both signed notes are shown");
  check((await page.textContent("#split-reason")).includes("prove the log forked"), "two roots for one size are called a fork");
}

const context = await chromium.launchPersistentContext(env("EXPLORER_PROFILE"), {
  executablePath: env("ACD_TEST_CHROMIUM"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const phase = env("EXPLORER_PHASE");
  if (phase === "honest") await honest(context, env("EXPLORER_URL"));
  else if (phase === "forked") await forked(context, env("EXPLORER_URL"));
  else if (phase === "mirror") await mirror(context, env("EXPLORER_URL"));
  else if (phase === "mirror-grown") await mirrorGrown(context, env("EXPLORER_URL"));
  else throw new Error(`unknown phase ${phase}`);
} catch (e) {
  console.error(e.message);
  process.exitCode = 1;
} finally {
  await context.close();
}
