// The completion API through ChatBotKit's official SDK against the real `chatwire serve`
// binary, with a small OpenAI-compatible stand-in (started here) behind an LLM bot: the SDK's
// own JSON and JSONL parsing must accept what Chatwire sends, streamed tokens included.
import { ChatBotKit } from '@chatbotkit/sdk'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'

const SECRET = 'sdk-completion-token'
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = process.env.CHATWIRE_BIN || join(ROOT, 'target/debug/chatwire')

/** Starts `handler` on a free local port; resolves to [server, port]. */
function listen(handler) {
  return new Promise((resolve, reject) => {
    const server = createServer(handler)
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => resolve([server, server.address().port]))
  })
}

/** An OpenAI-compatible stand-in: answers `Echo: <last message>`, streamed when asked. */
async function llmStandIn() {
  return listen((req, res) => {
    let raw = ''
    req.on('data', (d) => (raw += d))
    req.on('end', () => {
      const body = JSON.parse(raw)
      const text = `Echo: ${body.messages.at(-1).content}`
      const usage = { prompt_tokens: 20, completion_tokens: 4 }
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: text } }], usage }))
        return
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      for (const piece of text.split(/(?<= )/)) {
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: piece } }] })}\n\n`)
      }
      res.write(`data: ${JSON.stringify({ choices: [], usage })}\n\n`)
      res.end('data: [DONE]\n\n')
    })
  })
}

async function waitHealthy(baseUrl, child, logs) {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`chatwire exited with ${child.exitCode}:\n${logs.join('')}`)
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`chatwire did not become healthy:\n${logs.join('')}`)
}

async function collect(stream) {
  const events = []
  for await (const event of stream) events.push(event)
  return events
}

let server
let llm
let dir
let client
const logs = []

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chatwire-sdk-completion-'))
  const [llmServer, llmPort] = await llmStandIn()
  llm = llmServer
  // Chatwire's own port: take a free one from the OS, then hand it over.
  const [probe, port] = await listen(() => {})
  await new Promise((r) => probe.close(r))
  const baseUrl = `http://127.0.0.1:${port}`
  server = spawn(BIN, ['serve'], {
    env: {
      ...process.env,
      CHATWIRE_LISTEN: `127.0.0.1:${port}`,
      CHATWIRE_DATABASE_URL: `sqlite://${join(dir, 'chatwire.db')}`,
      CHATWIRE_API_TOKEN: SECRET,
      CHATWIRE_TWILIO_API_URL: 'http://127.0.0.1:9',
      CHATWIRE_LLM_URL: `http://127.0.0.1:${llmPort}/v1`,
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
  if (llm) await new Promise((r) => llm.close(r))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('the completion API through the SDK', () => {
  test('send, receive and complete on a stored conversation', async () => {
    const bot = await client.bot.create({ name: 'Helper', model: 'stand-in', backstory: 'Be brief.' })
    const conversation = await client.conversation.create({ botId: bot.id })
    const sent = await client.conversation.send(conversation.id, { text: 'Hello' })
    assert.equal(typeof sent.id, 'string')
    assert.deepEqual(sent.entities, [])
    const received = await client.conversation.receive(conversation.id, {})
    assert.equal(received.text, 'Echo: Hello')
    assert.deepEqual(received.usage, { token: 24 })
    const done = await client.conversation.complete(conversation.id, { text: 'Again' })
    assert.equal(done.text, 'Echo: Again')
    assert.deepEqual(done.end, { reason: 'stop' })
    const messages = await client.conversation.message.list(conversation.id)
    assert.deepEqual(messages.items.map((m) => [m.type, m.text]), [
      ['user', 'Hello'],
      ['bot', 'Echo: Hello'],
      ['user', 'Again'],
      ['bot', 'Echo: Again'],
    ])
  })

  test('stateless complete, as JSON and as a stream of events', async () => {
    const request = { model: 'stand-in', backstory: 'Be brief.', messages: [{ type: 'user', text: 'stream this please' }] }
    const answer = await client.conversation.complete(null, request)
    assert.deepEqual(answer, { text: 'Echo: stream this please', usage: { token: 24 }, end: { reason: 'stop' } })

    const events = await collect(client.conversation.complete(null, request).stream())
    const types = events.map((e) => e.type)
    const tokens = events.filter((e) => e.type === 'token').map((e) => e.data.token)
    assert.ok(tokens.length >= 3, types.join(','))
    assert.equal(tokens.join(''), 'Echo: stream this please')
    assert.deepEqual(types.slice(tokens.length), ['message', 'usage', 'result'])
    assert.deepEqual(events.at(-1).data, answer)
  })
})
