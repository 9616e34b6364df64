// Issue 13 in headless Chromium against the real binary:
// - `chatwire dev`'s phone page: a person texts the echo bot from the browser and sees the
//   reply arrive, then its delivery status move to delivered, without reloading.
// - the console's operations page: a webhook refused because the integration's auth token was
//   wrong shows in the channel log with its reason; once the token is fixed, Replay gets the
//   message answered; the overview's charts show the traffic.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, test } from 'node:test'
import { chromium } from 'playwright-core'
import { ACCOUNT_SID, AUTH_TOKEN, BIN, NUMBER, freePort, signIn, start, until } from './harness.mjs'

const cleanups = []
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
})

test('the dev phone page answers a text and shows its delivery live', async () => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const logs = []
  const dev = spawn(BIN, ['dev', '--listen', `127.0.0.1:${port}`], {
    env: { ...process.env, RUST_LOG: 'warn', CHATWIRE_API_TOKEN: '', CHATWIRE_DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  dev.stdout.on('data', (d) => logs.push(d.toString()))
  dev.stderr.on('data', (d) => logs.push(d.toString()))
  cleanups.push(async () => dev.kill('SIGTERM'))
  await until('the demo to be ready', async () => {
    if (dev.exitCode !== null) throw new Error(`chatwire dev exited:\n${logs.join('')}`)
    try {
      return (await fetch(`${base}/dev/phone/bots`)).ok
    } catch {
      return false
    }
  }, 60_000)
  const browser = await chromium.launch({ executablePath: process.env.CHATWIRE_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] })
  cleanups.push(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`${base}/dev/phone`)
  await page.locator('nav#bots button[data-key="echo"][aria-pressed="true"]').waitFor()
  await page.fill('#text', 'hello from Chromium')
  await page.click('#send')
  const reply = page.locator('.msg.out', { hasText: 'hello from Chromium' })
  await reply.waitFor({ timeout: 20_000 })
  await page.locator('.msg.out[data-status="delivered"]', { hasText: 'hello from Chromium' }).waitFor({ timeout: 20_000 })
  await page.locator('.msg.in', { hasText: 'hello from Chromium' }).waitFor()
  // Another bot, another thread: the FAQ answers from its dataset.
  await page.click('nav#bots button[data-key="faq"]')
  await page.fill('#text', 'where can I park?')
  await page.click('#send')
  await page.locator('.msg.out', { hasText: 'Free parking behind the building.' }).waitFor({ timeout: 20_000 })
  assert.equal(await page.locator('.msg', { hasText: 'hello from Chromium' }).count(), 0, 'threads are per bot')
})

test('a refused webhook shows in the operations page and is answered after the fix and a replay', async () => {
  const rig = await start()
  cleanups.push(() => rig.stop())
  const bot = (await rig.api('/bot/create', { name: 'Echo', model: 'echo' })).id
  const integration = (await rig.api('/integration/twilio/create', {
    name: 'SMS', botId: bot, accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, phoneNumber: NUMBER,
  })).id
  await rig.api(`/integration/twilio/${integration}/setup`, {})
  // A token rotated in Twilio's console but not here: every webhook is refused.
  await rig.api(`/integration/twilio/${integration}/update`, { authToken: 'rotated0token000000000000000000' })
  const person = '+15551239876'
  await rig.text(person, 'is anyone there?').catch(() => {})
  rig.createAgent('ops@example.com', 'Olu', [integration])
  const page = await signIn(rig, 'ops@example.com')
  await page.getByTestId('operations-link').click()
  await page.getByTestId('overview').waitFor()
  await page.getByTestId('filter-outcome').selectOption('refused')
  const refused = page.locator('tr[data-outcome="refused"]')
  await refused.first().waitFor()
  assert.match(await refused.first().textContent(), /bad signature/)
  assert.match(await refused.first().textContent(), /CHATWIRE_PUBLIC_URL/)
  // Replaying before the fix says why it is still refused.
  await refused.first().getByTestId('replay').click()
  await until('the toast', async () => /refused/.test(await page.getByTestId('toast').textContent()))
  assert.deepEqual(await rig.received(person), [])
  // The fix, then the replay: the bot answers.
  await rig.api(`/integration/twilio/${integration}/update`, { authToken: AUTH_TOKEN })
  await page.locator('tr[data-outcome="refused"]').first().getByTestId('replay').click()
  await until('the replay toast', async () => /Replayed: accepted/.test(await page.getByTestId('toast').textContent()))
  assert.deepEqual(await rig.receivedAtLeast(person, 1), ['is anyone there?'])
  // The overview counts the message in and the reply out.
  await until('the overview to show the traffic', async () => {
    await page.getByTestId('refresh').click()
    const counts = await page.locator('#hours rect').evaluateAll((rects) => rects.map((r) => [r.getAttribute('class'), Number(r.dataset.count)]))
    const total = (kind) => counts.filter(([k]) => k === kind).reduce((a, [, n]) => a + n, 0)
    return total('in') >= 1 && total('out') >= 1
  })
  await page.getByTestId('filter-outcome').selectOption('sent')
  await page.locator('tr[data-outcome="sent"]').first().waitFor()
})
