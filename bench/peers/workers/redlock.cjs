// node-redlock (v4, over ioredis) as a `make bench-peers` worker, with the protocol of
// bench/peers/workers/lockbench.py:
//
//   node redlock.cjs uncontended|contend|fanin|waiters URL SECONDS [ARGS...]
//
// Waiting is the library's default: 10 retries 200 ms apart (+-100 ms jitter), then a
// LockError; a waiter that gets one asks again. "fanin" runs its loops as concurrent async
// tasks on one client (Node has one thread), after one second of warm-up for the JIT, as do
// the uncontended cycles. URL may be several URLs separated by spaces: independent masters,
// one ioredis client each, of which redlock wants its default quorum (N/2+1). Found through
// NODE_PATH (bench/.peers/node/node_modules).
'use strict';

const Redis = require('ioredis');
const Redlock = require('redlock');

const TTL_MS = 10000;
const WARM_UP_SECONDS = 1;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now() / 1000;

function newClient(urls) {
  const masters = urls.split(/\s+/).filter(Boolean).map((url) => new Redis(url));
  return { masters, redlock: new Redlock(masters) };
}

function disconnect(client) {
  for (const redis of client.masters) redis.disconnect();
}

async function lock(client, name) {
  for (;;) {
    try {
      return await client.redlock.lock(name, TTL_MS);
    } catch (error) {
      if (!(error instanceof Redlock.LockError)) throw error;
    }
  }
}

// Lock a free name (the first attempt takes it) and unlock it.
async function cycle(client, name) {
  await (await client.redlock.lock(name, TTL_MS)).unlock();
}

async function cycles(client, name, seconds) {
  let count = 0;
  for (const end = now() + seconds; now() < end; count++) await cycle(client, name);
  return count;
}

// Every loop runs for the warm-up first, then is counted for `seconds`.
async function cyclesPerSec(url, seconds, loops) {
  const client = newClient(url);
  const names = Array.from({ length: loops }, (_, i) => `bench:redlock:${process.pid}:${i}`);
  await Promise.all(names.map((name) => cycles(client, name, WARM_UP_SECONDS)));
  const start = now();
  const counts = await Promise.all(names.map((name) => cycles(client, name, seconds)));
  console.log(`cycles_per_sec ${(counts.reduce((a, b) => a + b) / (now() - start)).toFixed(1)}`);
  disconnect(client);
}

async function contend(url, seconds, holdMs, pauseMs) {
  const client = newClient(url);
  const lines = [];
  for (const end = now() + seconds; now() < end; ) {
    const asked = process.hrtime.bigint(); // CLOCK_MONOTONIC, like the other workers
    const held = await lock(client, 'bench:contended');
    const acquired = process.hrtime.bigint();
    await sleep(holdMs);
    const released = process.hrtime.bigint();
    await held.unlock();
    lines.push(`cs ${asked} ${acquired} ${released}`);
    await sleep(pauseMs);
  }
  console.log(lines.join('\n'));
  disconnect(client);
}

async function waiters(url, seconds, count) {
  const name = 'bench:held';
  const holder = newClient(url);
  const clients = Array.from({ length: count }, () => newClient(url));
  // connected and warm before the count starts
  await Promise.all(clients.map((client, i) => cycle(client, `bench:redlock:warm:${i}`)));
  const held = await lock(holder, name);
  console.log('held');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
  const waiting = clients.map(async (client) => (await lock(client, name)).unlock());
  await sleep(seconds * 1000);
  await held.unlock();
  await Promise.all(waiting);
  console.log(`acquisitions ${count}`);
  for (const client of [holder, ...clients]) disconnect(client);
}

async function main() {
  const [scenario, url, seconds, ...rest] = process.argv.slice(2);
  const args = [url, Number(seconds), ...rest.map(Number)];
  const run = {
    uncontended: () => cyclesPerSec(url, Number(seconds), 1),
    contend: () => contend(...args),
    fanin: () => cyclesPerSec(...args),
    waiters: () => waiters(...args),
  }[scenario];
  if (!run || !url || Number.isNaN(Number(seconds))) {
    console.error('usage: redlock.cjs uncontended|contend|fanin|waiters URL SECONDS [ARGS...]');
    process.exit(2);
  }
  await run();
}

main().catch((error) => {
  console.error(`redlock worker: ${error.stack || error}`);
  process.exit(1);
});
