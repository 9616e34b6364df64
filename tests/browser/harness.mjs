// What the browser tests share: the real `chatwire` binary (CHATWIRE_BIN, default
// target/debug/chatwire) serving on a free port with a temporary SQLite database, its Twilio
// emulator (`chatwire twilio-emulator`) as Twilio, the management API, and Debian's Chromium
// (/usr/bin/chromium, or CHATWIRE_CHROMIUM) driven by playwright-core.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BIN = process.env.CHATWIRE_BIN || join(ROOT, 'target/debug/chatwire')
export const TOKEN = 'browser-test-token'
export const NUMBER = '+15005550006'
export const ACCOUNT_SID = 'AC00000000000000000000000000000001'
export const AUTH_TOKEN = 'emulator0auth0token0000000000001'

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it returns a truthy value, or fails with `what` after `ms`. */
export async function until(what, check, ms = 15_000) {
  const deadline = Date.now() + ms
  let last
  while (Date.now() < deadline) {
    last = await check()
    if (last) return last
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`)
}

function run(args, env, logs) {
  const child = spawn(BIN, args, { env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.on('data', (d) => logs.push(d.toString()))
  child.stderr.on('data', (d) => logs.push(d.toString()))
  return child
}

async function healthy(url, child, logs) {
  await until(`${url} to answer`, async () => {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${logs.join('')}`)
    try {
      return (await fetch(url)).ok
    } catch {
      return false
    }
  }, 30_000)
}

/** Chatwire, the emulator and a browser. `stop()` ends them all. */
export async function start(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'chatwire-browser-'))
  const logs = []
  const twilioPort = await freePort()
  const twilio = `http://127.0.0.1:${twilioPort}`
  const emulator = run(['twilio-emulator', '--listen', `127.0.0.1:${twilioPort}`, '--status-delay-ms', '50'], {}, logs)
  await healthy(`${twilio}/_emulator/messages`, emulator, logs)
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const database = `sqlite://${join(dir, 'chatwire.db')}`
  const server = run(['serve'], {
    CHATWIRE_LISTEN: `127.0.0.1:${port}`,
    CHATWIRE_DATABASE_URL: database,
    CHATWIRE_API_TOKEN: TOKEN,
    CHATWIRE_TWILIO_API_URL: twilio,
    CHATWIRE_ALLOW_PRIVATE_HTTP: 'true',
    ...extraEnv,
  }, logs)
  await healthy(`${base}/readyz`, server, logs)
  const browser = await chromium.launch({
    executablePath: process.env.CHATWIRE_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  })

  async function api(path, body) {
    const res = await fetch(`${base}/v1${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const data = await res.json().catch(() => ({}))
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(data)}`)
    return data
  }

  /** A person texts our number through the emulator (a signed webhook to Chatwire). */
  async function text(from, body) {
    const res = await fetch(`${twilio}/_emulator/inbound`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from, to: NUMBER, body }),
    })
    if (!res.ok) throw new Error(`inbound: ${res.status} ${await res.text()}`)
  }

  /** What the emulator was asked to send to `to`, oldest first. */
  async function received(to) {
    const data = await (await fetch(`${twilio}/_emulator/messages`)).json()
    return data.messages.filter((m) => m.to === to).map((m) => m.body)
  }

  /** Waits until `to` has received `n` messages; returns them. */
  function receivedAtLeast(to, n) {
    return until(`${n} messages to ${to}`, async () => {
      const got = await received(to)
      return got.length >= n ? got : false
    })
  }

  /** `chatwire agent create`, as an operator would run it. */
  function createAgent(email, name, integrations, password = 'correct horse battery') {
    const out = spawnSync(BIN, ['agent', 'create', '--email', email, '--name', name,
      ...integrations.flatMap((i) => ['--integration', i])], {
      env: { ...process.env, CHATWIRE_DATABASE_URL: database, CHATWIRE_AGENT_PASSWORD: password, RUST_LOG: 'warn' },
      encoding: 'utf8',
    })
    if (out.status !== 0) throw new Error(`agent create: ${out.stderr}`)
    return out.stdout.trim()
  }

  async function stop() {
    await browser.close().catch(() => {})
    for (const child of [server, emulator]) child.kill('SIGTERM')
    await sleep(200)
    rmSync(dir, { recursive: true, force: true })
  }

  return { base, twilio, browser, api, text, received, receivedAtLeast, createAgent, stop, logs }
}

/** Signs `email` in on a new page of `size`; returns the page. */
export async function signIn(rig, email, size = { width: 1280, height: 800 }, password = 'correct horse battery') {
  const context = await rig.browser.newContext({ viewport: size })
  const page = await context.newPage()
  await page.goto(`${rig.base}/console`)
  await page.getByTestId('email').fill(email)
  await page.getByTestId('password').fill(password)
  await page.getByTestId('login').click()
  await page.getByTestId('logout').waitFor()
  return page
}
