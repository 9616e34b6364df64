// The web chat widget in headless Chromium: a page on another origin embeds it with one script
// tag, a visitor chats with a Studio flow bot, reloads and sees the conversation again (typing
// indicator while a turn runs), then asks for a human and an agent answers from the inbox.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { ROOT, freePort, signIn, start, until } from './harness.mjs'

let rig
let site
let siteUrl
let widget

before(async () => {
  rig = await start()
  const flow = {
    description: 'greeter', initial_state: 'Trigger', flags: { allow_concurrent_calls: true },
    states: [
      { name: 'Trigger', type: 'trigger', transitions: [{ event: 'incomingMessage', next: 'ask' }], properties: {} },
      { name: 'ask', type: 'send-and-wait-for-reply', properties: { body: 'Welcome! What is your name?', timeout: '3600' },
        transitions: [{ event: 'incomingMessage', next: 'hi' }, { event: 'timeout' }, { event: 'deliveryFailure' }] },
      { name: 'hi', type: 'send-message', properties: { body: 'Nice to meet you, {{widgets.ask.inbound.Body}}!' },
        transitions: [{ event: 'sent' }, { event: 'failed' }] },
    ],
  }
  const bot = (await rig.api('/bot/create', { name: 'Greeter', model: 'flow', flow })).id
  const port = await freePort()
  siteUrl = `http://127.0.0.1:${port}`
  widget = (await rig.api('/integration/widget/create', {
    name: 'Site chat', botId: bot, title: 'Acme help', intro: 'We answer in seconds',
    initial: 'Hi! Say anything to start.', placeholder: 'Type here', origin: siteUrl,
  })).id
  rig.createAgent('ana@example.com', 'Ana', [widget])
  // The embedding site: another origin than Chatwire's.
  site = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(`<!doctype html><html><head><title>Acme</title></head><body><h1>Acme</h1>
      <script src="${rig.base}/widget.js" data-widget="${widget}" async></script></body></html>`)
  })
  await new Promise((r) => site.listen(port, '127.0.0.1', r))
})

after(async () => {
  await rig?.stop()
  site?.close()
})

async function messages(page) {
  return page.getByTestId('chatwire-message').allTextContents()
}

test('a visitor chats with a flow bot, reloads, and is handed to an agent', async () => {
  const context = await rig.browser.newContext({ viewport: { width: 1000, height: 760 } })
  const page = await context.newPage()
  await page.goto(siteUrl)
  await page.getByTestId('chatwire-launcher').click()
  await until('the title', async () => (await page.getByTestId('chatwire-title').textContent()) === 'Acme help')
  await until('the initial message', async () => (await messages(page)).includes('Hi! Say anything to start.'))
  assert.equal(await page.getByTestId('chatwire-input').getAttribute('placeholder'), 'Type here')

  await page.getByTestId('chatwire-input').fill('hello')
  await page.getByTestId('chatwire-send').click()
  await until('the flow\'s question', async () => (await messages(page)).includes('Welcome! What is your name?'))
  await page.getByTestId('chatwire-input').fill('Grace')
  await page.getByTestId('chatwire-send').click()
  await until('the flow\'s answer', async () => (await messages(page)).includes('Nice to meet you, Grace!'))
  assert.equal(await page.getByTestId('chatwire-typing').isVisible(), false, 'no typing once answered')
  mkdirSync(join(ROOT, 'docs/screenshots'), { recursive: true })
  await page.screenshot({ path: join(ROOT, 'docs/screenshots/widget.png') })

  // A reload continues the same conversation.
  await page.reload()
  await page.getByTestId('chatwire-launcher').click()
  await until('the history after a reload', async () => {
    const shown = await messages(page)
    return shown.includes('hello') && shown.includes('Nice to meet you, Grace!')
  })

  // Asking for a human: the agent sees it in the inbox, takes it and answers in the widget.
  const inbox = await signIn(rig, 'ana@example.com')
  await page.getByTestId('chatwire-input').fill('agent')
  await page.getByTestId('chatwire-send').click()
  await until('the hand-off notice', async () =>
    (await messages(page)).includes('I will try to connect you with an agent. Please wait.'))
  const item = inbox.getByTestId('queue').getByRole('button', { name: /chat:a-/ })
  await item.waitFor()
  await item.click()
  await inbox.getByTestId('take').click()
  await until('the agent joining, in the widget', async () =>
    (await messages(page)).includes('Agent Ana has joined the conversation.'))
  await inbox.getByTestId('reply-text').fill('Hi Grace, Ana here.')
  await inbox.getByTestId('send').click()
  await until('the agent\'s reply, in the widget', async () =>
    (await messages(page)).some((m) => m.includes('Hi Grace, Ana here.')))
  await page.getByTestId('chatwire-input').fill('Thanks Ana')
  await page.getByTestId('chatwire-send').click()
  await until('the visitor\'s message, in the inbox', async () =>
    (await inbox.getByTestId('messages').textContent()).includes('Thanks Ana'))
  await inbox.context().close()
  await context.close()
})

test('a page on an origin the widget does not list cannot use it', async () => {
  const res = await fetch(`${rig.base}/widget/${widget}/session`, {
    method: 'POST', headers: { origin: 'http://evil.localhost', 'content-type': 'application/json' }, body: '{}',
  })
  assert.equal(res.status, 403)
})
