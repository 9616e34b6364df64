// ChatBotKit's official SDK (`@chatbotkit/sdk`, pinned in package.json) against the real
// `chatwire serve` binary: a ChatBotKit user points `baseUrl` at Chatwire and nothing else
// changes. The binary is `CHATWIRE_BIN` (default `target/debug/chatwire`, built by
// `cargo build`); it runs on a free port with a temporary SQLite database.
import { ChatBotKit } from '@chatbotkit/sdk'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'

const SECRET = 'sdk-test-token'
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = process.env.CHATWIRE_BIN || join(ROOT, 'target/debug/chatwire')

/** A port nobody listens on right now (the OS picks it, then we release it). */
function freePort() {
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

/** Polls `/healthz` until the server answers, failing early if the process dies. */
async function waitHealthy(baseUrl, child, logs) {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`chatwire exited with ${child.exitCode}:\n${logs.join('')}`)
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`)
      if (res.ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`chatwire did not become healthy:\n${logs.join('')}`)
}

/** Collects an SDK stream (`list().stream()`) into an array of its JSONL events. */
async function collect(stream) {
  const events = []
  for await (const event of stream) events.push(event)
  return events
}

let server
let dir
let baseUrl
let client
const logs = []

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chatwire-sdk-'))
  const port = await freePort()
  baseUrl = `http://127.0.0.1:${port}`
  server = spawn(BIN, ['serve'], {
    env: {
      ...process.env,
      CHATWIRE_LISTEN: `127.0.0.1:${port}`,
      CHATWIRE_DATABASE_URL: `sqlite://${join(dir, 'chatwire.db')}`,
      CHATWIRE_API_TOKEN: SECRET,
      // Nothing here may reach the real Twilio.
      CHATWIRE_TWILIO_API_URL: 'http://127.0.0.1:9',
      RUST_LOG: process.env.RUST_LOG || 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  server.stdout.on('data', (d) => logs.push(d.toString()))
  server.stderr.on('data', (d) => logs.push(d.toString()))
  await waitHealthy(baseUrl, server, logs)
  client = new ChatBotKit({ secret: SECRET, baseUrl })
})

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r))
    server.kill('SIGTERM')
    await exited
  }
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('the ChatBotKit SDK against chatwire serve', () => {
  test('rejects a wrong secret with NOT_AUTHENTICATED', async () => {
    const stranger = new ChatBotKit({ secret: 'wrong', baseUrl })
    await assert.rejects(stranger.bot.list(), (err) => err.code === 'NOT_AUTHENTICATED')
  })

  test('integration.twilio create/fetch/update/list/stream/delete, authToken never returned', async () => {
    const bot = await client.bot.create({ name: 'Echo', model: 'echo' })
    const created = await client.integration.twilio.create({
      name: 'Support SMS',
      botId: bot.id,
      accountSid: 'AC00000000000000000000000000000000',
      authToken: 'twilio-auth-secret',
      contactCollection: true,
      sessionDuration: 1_800_000,
      meta: { env: 'test' },
    })
    assert.equal(typeof created.id, 'string')

    const fetched = await client.integration.twilio.fetch(created.id)
    assert.equal(fetched.id, created.id)
    assert.equal(fetched.name, 'Support SMS')
    assert.equal(fetched.botId, bot.id)
    assert.equal(fetched.allowFrom, '*')
    assert.equal(fetched.blueprintId, null)
    assert.equal(fetched.description, '')
    assert.equal(fetched.sessionDuration, 1_800_000)
    assert.equal(typeof fetched.createdAt, 'number')
    assert.ok(!('authToken' in fetched), 'fetch must not return authToken')
    assert.ok(!JSON.stringify(fetched).includes('twilio-auth-secret'))

    const updated = await client.integration.twilio.update(created.id, { name: 'Renamed', allowFrom: '+15551230000' })
    assert.equal(updated.id, created.id)
    const refetched = await client.integration.twilio.fetch(created.id)
    assert.equal(refetched.name, 'Renamed')
    assert.equal(refetched.allowFrom, '+15551230000')
    assert.deepEqual(refetched.meta, { env: 'test' })

    const second = await client.integration.twilio.create({ name: 'Second', meta: { env: 'other' } })
    const listed = await client.integration.twilio.list()
    assert.deepEqual(listed.items.map((i) => i.id), [second.id, created.id])
    assert.equal(listed.cursor, created.id)
    assert.ok(listed.items.every((i) => !('authToken' in i)))
    const page = await client.integration.twilio.list({ take: 1, cursor: second.id })
    assert.deepEqual(page.items.map((i) => i.id), [created.id])
    const byMeta = await client.integration.twilio.list({ meta: { env: 'test' } })
    assert.deepEqual(byMeta.items.map((i) => i.id), [created.id])

    const events = await collect(client.integration.twilio.list().stream())
    assert.deepEqual(events.map((e) => e.type), ['item', 'item'])
    assert.deepEqual(events.map((e) => e.data.id), [second.id, created.id])
    assert.ok(events.every((e) => !('authToken' in e.data)))

    const deleted = await client.integration.twilio.delete(created.id)
    assert.equal(deleted.id, created.id)
    await assert.rejects(client.integration.twilio.fetch(created.id), (err) => err.code === 'NOT_FOUND')
    await client.integration.twilio.delete(second.id)
  })

  test('integration.widget create/fetch/update/setup/list/delete', async () => {
    const bot = await client.bot.create({ name: 'Widget bot', model: 'echo' })
    const created = await client.integration.widget.create({
      name: 'Site chat', botId: bot.id, title: 'Ask us', initial: 'Hi!', origin: 'https://shop.example',
      stream: true, poweredBy: false, sessionDuration: 600000,
    })
    assert.ok(created.id)
    const fetched = await client.integration.widget.fetch(created.id)
    assert.equal(fetched.title, 'Ask us')
    assert.equal(fetched.botId, bot.id)
    assert.equal(fetched.stream, true)
    assert.equal(fetched.poweredBy, false)
    assert.equal(fetched.sessionDuration, 600000)
    await client.integration.widget.update(created.id, { title: 'Ask Acme' })
    assert.equal((await client.integration.widget.fetch(created.id)).title, 'Ask Acme')
    assert.deepEqual(await client.integration.widget.setup(created.id), { id: created.id })
    const listed = await client.integration.widget.list()
    assert.ok(listed.items.some((w) => w.id === created.id))
    await client.integration.widget.delete(created.id)
    await assert.rejects(client.integration.widget.fetch(created.id))
  })

  test('bot create/fetch/update/list/delete', async () => {
    const { id } = await client.bot.create({ name: 'Helper', backstory: 'You help.', model: 'echo', meta: { team: 'a' } })
    const bot = await client.bot.fetch(id)
    assert.equal(bot.name, 'Helper')
    assert.equal(bot.backstory, 'You help.')
    assert.equal(bot.privacy, false)
    assert.equal(bot.datasetId, null)
    await client.bot.update(id, { description: 'Updated' })
    assert.equal((await client.bot.fetch(id)).description, 'Updated')
    const listed = await client.bot.list({ meta: { team: 'a' } })
    assert.deepEqual(listed.items.map((b) => b.id), [id])
    const streamed = await collect(client.bot.list({ meta: { team: 'a' } }).stream())
    assert.deepEqual(streamed.map((e) => e.data.id), [id])
    assert.equal((await client.bot.delete(id)).id, id)
    await assert.rejects(client.bot.fetch(id), (err) => err.code === 'NOT_FOUND')
  })

  test('contact.ensure is idempotent', async () => {
    const first = await client.contact.ensure({ fingerprint: 'sdk-user-fingerprint-1', name: 'Jane', email: 'jane@example.com' })
    const again = await client.contact.ensure({ fingerprint: 'sdk-user-fingerprint-1', name: 'Jane' })
    assert.equal(again.id, first.id)
    const guest = await client.contact.ensure({ email: 'guest@example.com', phone: '+1 415 555 0100' })
    const guestAgain = await client.contact.ensure({ email: 'guest@example.com', phone: '(415) 555-0100' })
    assert.equal(guestAgain.id, guest.id, 'the same attributes ensure the same contact')
    assert.notEqual(guest.id, first.id)
    const contact = await client.contact.fetch(first.id)
    assert.equal(contact.fingerprint, 'sdk-user-fingerprint-1')
    assert.equal(contact.email, 'jane@example.com')
    assert.equal((await client.contact.fetch(guest.id)).phone, '+14155550100')
  })

  test('conversation create/fetch/list/delete with messages', async () => {
    const bot = await client.bot.create({ name: 'Chat' })
    const contact = await client.contact.ensure({ fingerprint: 'sdk-conversation-contact' })
    const created = await client.conversation.create({
      botId: bot.id,
      contactId: contact.id,
      messages: [
        { type: 'user', text: 'Hello' },
        { type: 'bot', text: 'Hi! How can I help?' },
      ],
    })
    assert.equal(typeof created.id, 'string')
    const conversation = await client.conversation.fetch(created.id)
    assert.equal(conversation.botId, bot.id)
    assert.equal(conversation.contactId, contact.id)

    const message = await client.conversation.message.create(created.id, { type: 'user', text: 'Where is my order?' })
    assert.equal(typeof message.id, 'string')
    assert.deepEqual(message.entities, [])
    const messages = await client.conversation.message.list(created.id)
    assert.deepEqual(messages.items.map((m) => [m.type, m.text]), [
      ['user', 'Hello'],
      ['bot', 'Hi! How can I help?'],
      ['user', 'Where is my order?'],
    ])
    const fetchedMessage = await client.conversation.message.fetch(created.id, message.id)
    assert.equal(fetchedMessage.text, 'Where is my order?')

    const byBot = await client.conversation.list({ botId: bot.id })
    assert.deepEqual(byBot.items.map((c) => c.id), [created.id])
    const ofContact = await client.contact.conversation.list(contact.id)
    assert.deepEqual(ofContact.items.map((c) => c.id), [created.id])

    assert.equal((await client.conversation.delete(created.id)).id, created.id)
    await assert.rejects(client.conversation.fetch(created.id), (err) => err.code === 'NOT_FOUND')
    await assert.rejects(client.conversation.message.fetch(created.id, message.id), (err) => err.code === 'NOT_FOUND')
  })

  test('dataset create, records, search', async () => {
    const dataset = await client.dataset.create({ name: 'FAQ', searchMaxRecords: 3 })
    const reset = await client.dataset.record.create(dataset.id, {
      text: 'To reset your password open Settings, then choose Reset password.',
      source: 'faq/account',
    })
    await client.dataset.record.create(dataset.id, { text: 'Our office is open Monday to Friday.' })
    const rules = await client.dataset.record.create(dataset.id, { text: 'A password needs at least 12 characters.' })
    const records = await client.dataset.record.list(dataset.id)
    assert.equal(records.items.length, 3)

    const result = await client.dataset.search(dataset.id, 'How do I reset my password?')
    assert.equal(result.id, dataset.id)
    assert.deepEqual(result.records.map((r) => r.id), [reset.id, rules.id])
    assert.ok(result.records.every((r) => typeof r.score === 'number' && r.score > 0))
    assert.ok(result.records[0].score > result.records[1].score)
    assert.equal(result.records[0].source, 'faq/account')

    const nothing = await client.dataset.search(dataset.id, '"unbalanced AND (')
    assert.deepEqual(nothing.records, [])
    await client.dataset.delete(dataset.id)
    await assert.rejects(client.dataset.record.fetch(dataset.id, reset.id), (err) => err.code === 'NOT_FOUND')
  })

  test('blueprint resource list and delete with its resources', async () => {
    const blueprint = await client.blueprint.create({ name: 'Kit' })
    const bot = await client.bot.create({ name: 'Kit bot', blueprintId: blueprint.id })
    const listed = await client.blueprint.listResources(blueprint.id)
    assert.equal(listed.id, blueprint.id)
    assert.deepEqual(listed.resources.bot.map((b) => b.id), [bot.id])
    await client.blueprint.delete(blueprint.id, { deleteResources: true })
    await assert.rejects(client.bot.fetch(bot.id), (err) => err.code === 'NOT_FOUND')
  })

  test('client mistakes come back as FetchError with ChatBotKit codes', async () => {
    await assert.rejects(client.bot.create({ unknownField: 1 }), (err) => err.code === 'BAD_REQUEST' && /not allowed/.test(err.message))
    await assert.rejects(client.integration.twilio.create({ botId: 'missing' }), (err) => err.code === 'BAD_REQUEST' && /Bot not found/.test(err.message))
    await client.bot.create({ alias: 'sdk-dup' })
    await assert.rejects(client.bot.create({ alias: 'sdk-dup' }), (err) => err.code === 'CONFLICT')
  })
})
