// The agents' inbox in headless Chromium, against the real binary and its Twilio emulator:
// a person asks for a human by SMS, hears their place in the queue, the agent signs in, sees
// the conversation appear without reloading, takes it, replies (the emulator receives the
// reply) and closes it, and the next message goes to the bot again. Then the same for each
// other trigger (Studio send-to-flex, FAQ escalation after a negative rating, the LLM's tool)
// and the no-agent path where the person leaves a message an agent answers later.
// Screenshots for the README are written to docs/screenshots/.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { ROOT, NUMBER, ACCOUNT_SID, AUTH_TOKEN, freePort, signIn, start, until } from './harness.mjs'

const SHOTS = join(ROOT, 'docs/screenshots')

/** An OpenAI-compatible stand-in: answers from `script`, then echoes. */
async function llmStandIn(script) {
  const port = await freePort()
  const seen = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d) => { body += d })
    req.on('end', () => {
      seen.push(JSON.parse(body || '{}'))
      const next = script.shift() || { choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'OK.' } }] }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(next))
    })
  })
  await new Promise((r) => server.listen(port, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${port}/v1`, seen, close: () => server.close() }
}

const say = (content) => ({ choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content } }] })
const handoffTool = {
  choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null,
    tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'handoff_to_human', arguments: '{"reason":"refund request"}' } }] } }],
}

let rig
let llm
let integration
let bot

before(async () => {
  llm = await llmStandIn([handoffTool, say('A colleague will take over your refund.')])
  rig = await start({ CHATWIRE_LLM_URL: llm.url })
  bot = (await rig.api('/bot/create', { name: 'Echo', model: 'echo' })).id
  integration = (await rig.api('/integration/twilio/create', {
    name: 'SMS', botId: bot, accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, phoneNumber: NUMBER,
  })).id
  await rig.api(`/integration/twilio/${integration}/setup`, {})
  rig.createAgent('ana@example.com', 'Ana', [integration])
  mkdirSync(SHOTS, { recursive: true })
})

after(async () => {
  await rig?.stop()
  llm?.close()
})

/** Waits until the element's text satisfies `ok`. */
async function textOf(page, testId, ok, what) {
  return until(what || `${testId} text`, async () => {
    const t = await page.getByTestId(testId).first().textContent()
    return ok(t || '') ? t : false
  })
}

/** The list item of `person` in a list (`queue`, `mine`, `tickets`). */
function itemOf(page, list, person) {
  return page.getByTestId(list).getByRole('button', { name: new RegExp(person.replace('+', '\\+')) })
}

/** Takes the person's conversation from the queue and waits for the agent_joined text. */
async function take(page, person, countBefore) {
  await itemOf(page, 'queue', person).click()
  await page.getByTestId('take').click()
  await rig.receivedAtLeast(person, countBefore + 1)
  const got = await rig.received(person)
  assert.equal(got.at(-1), 'Agent Ana has joined the conversation.')
  await page.getByTestId('reply-text').waitFor()
}

async function reply(page, person, text) {
  const before = (await rig.received(person)).length
  await page.getByTestId('reply-text').fill(text)
  await page.getByTestId('send').click()
  const got = await rig.receivedAtLeast(person, before + 1)
  assert.equal(got.at(-1), text)
}

test('an SMS asking for a human reaches the agent live, who takes it, replies and closes it', async () => {
  const page = await signIn(rig, 'ana@example.com')
  const [first, second] = ['+15551110001', '+15551110002']
  await rig.text(first, 'agent')
  assert.deepEqual(await rig.receivedAtLeast(first, 1), ['I will try to connect you with an agent. Please wait.'])
  await rig.text(second, 'I want to talk to a human')
  await rig.text(second, 'human')
  const heard = await rig.receivedAtLeast(second, 3)
  assert.equal(heard[2], 'There is one person ahead of you.', 'the person hears their place in the queue')

  // Both appear in the open page without a reload.
  await textOf(page, 'queue-count', (t) => t === '2', 'two people queued')
  await take(page, first, 1)
  assert.equal((await rig.receivedAtLeast(second, 4))[3], 'You are next in line.')
  await textOf(page, 'mine-count', (t) => t === '1')

  await reply(page, first, 'Hi, I am Ana. How can I help?')
  await rig.text(first, 'My parcel is late')
  await until('the person\'s new message in the open conversation', async () =>
    (await page.getByTestId('messages').textContent()).includes('My parcel is late'))
  await until('the delivery status of the agent\'s reply', async () =>
    (await page.getByTestId('delivery').allTextContents()).includes('delivered'))
  await reply(page, first, 'It leaves our warehouse today.')
  await page.screenshot({ path: join(SHOTS, 'inbox-desktop.png') })

  await page.getByTestId('close').click()
  await until('the closing text', async () => (await rig.received(first)).at(-1) === 'Chat closed')
  await rig.text(first, 'thanks, bye')
  await until('the bot answering again', async () => (await rig.received(first)).at(-1) === 'thanks, bye')
  await page.context().close()
})

test('on a phone-sized screen the lists and the conversation take turns', async () => {
  const page = await signIn(rig, 'ana@example.com', { width: 390, height: 844 })
  const person = '+15551110002'
  await itemOf(page, 'queue', person).waitFor()
  await page.screenshot({ path: join(SHOTS, 'inbox-phone-list.png') })
  const before = (await rig.received(person)).length
  await take(page, person, before)
  assert.equal(await page.getByTestId('queue').isVisible(), false, 'the list gives way to the conversation')
  await reply(page, person, 'Hello from my phone')
  await page.screenshot({ path: join(SHOTS, 'inbox-phone.png') })
  await page.getByTestId('close').click()
  await until('closed', async () => (await rig.received(person)).at(-1) === 'Chat closed')
  await page.context().close()
})

test('a Studio flow\'s send-to-flex hands over with what the flow collected', async () => {
  const flow = {
    description: 'to flex', initial_state: 'Trigger', flags: { allow_concurrent_calls: true },
    states: [
      { name: 'Trigger', type: 'trigger', transitions: [{ event: 'incomingMessage', next: 'ask' }], properties: {} },
      { name: 'ask', type: 'send-and-wait-for-reply', properties: { body: 'Your order number?', timeout: '3600' },
        transitions: [{ event: 'incomingMessage', next: 'flex' }, { event: 'timeout' }, { event: 'deliveryFailure' }] },
      { name: 'flex', type: 'send-to-flex', transitions: [{ event: 'callComplete' }, { event: 'failedToEnqueue' }, { event: 'callFailure' }],
        properties: { workflow: 'WW1', channel: 'TC1', attributes: '{"order": "{{widgets.ask.inbound.Body}}"}' } },
    ],
  }
  const flowBot = (await rig.api('/bot/create', { name: 'Flow', model: 'flow', flow })).id
  await rig.api(`/integration/twilio/${integration}/update`, { botId: flowBot })
  const page = await signIn(rig, 'ana@example.com')
  const person = '+15551110003'
  await rig.text(person, 'hi')
  await rig.receivedAtLeast(person, 1)
  await rig.text(person, 'A-77')
  await itemOf(page, 'queue', person).waitFor()
  await itemOf(page, 'queue', person).click()
  await textOf(page, 'collected', (t) => t.includes('"order": "A-77"'), 'the flow\'s attributes')
  assert.equal((await rig.receivedAtLeast(person, 2))[1], 'I will try to connect you with an agent. Please wait.')
  await take(page, person, 2)
  await reply(page, person, 'I found order A-77.')
  await page.getByTestId('close').click()
  await page.context().close()
})

test('a FAQ bot hands over after a negative rating', async () => {
  const dataset = (await rig.api('/dataset/create', { name: 'FAQ' })).id
  await rig.api(`/dataset/${dataset}/record/create`, { text: 'Q: What are your opening hours?\nA: 9am to 5pm.' })
  const faqBot = (await rig.api('/bot/create', { name: 'FAQ', model: 'faq', datasetId: dataset, faq: { negativeRatingsBeforeEscalation: 1 } })).id
  await rig.api(`/integration/twilio/${integration}/update`, { botId: faqBot })
  const page = await signIn(rig, 'ana@example.com')
  const person = '+15551110004'
  await rig.text(person, 'opening hours?')
  assert.equal((await rig.receivedAtLeast(person, 2))[0], '9am to 5pm.')
  await rig.text(person, '2')
  await rig.receivedAtLeast(person, 3)
  await rig.text(person, 'it did not help')
  await itemOf(page, 'queue', person).waitFor()
  await take(page, person, (await rig.receivedAtLeast(person, 5)).length)
  await reply(page, person, 'We open at 9am on weekdays.')
  await page.getByTestId('close').click()
  await page.context().close()
})

test('the LLM\'s handoff_to_human tool hands over', async () => {
  const llmBot = (await rig.api('/bot/create', { name: 'LLM', model: 'gpt-4o-mini', backstory: 'Be kind.' })).id
  await rig.api(`/integration/twilio/${integration}/update`, { botId: llmBot })
  const page = await signIn(rig, 'ana@example.com')
  const person = '+15551110005'
  await rig.text(person, 'I want my money back')
  assert.equal((await rig.receivedAtLeast(person, 1))[0], 'A colleague will take over your refund.')
  await itemOf(page, 'queue', person).waitFor()
  assert.match(await itemOf(page, 'queue', person).textContent(), /refund request/)
  await take(page, person, 1)
  await reply(page, person, 'Your refund is on its way.')
  await page.getByTestId('close').click()
  await page.context().close()
})

test('with nobody online the person leaves a message that the agent answers later', async () => {
  await rig.api(`/integration/twilio/${integration}/update`, { botId: bot })
  const page = await signIn(rig, 'ana@example.com')
  await page.getByTestId('status').selectOption('away')
  await until('away', async () => (await rig.api('/agent/list')).items[0].status === 'away')
  const person = '+15551110006'
  await rig.text(person, 'agent')
  const heard = await rig.receivedAtLeast(person, 2)
  assert.equal(heard[0], 'No agents available')
  await rig.text(person, 'My order never came')
  assert.match((await rig.receivedAtLeast(person, 3))[2], /^Thanks, your message has been passed on/)
  await textOf(page, 'tickets-count', (t) => t === '1', 'the message left for the team')
  await page.getByTestId('status').selectOption('online')
  await itemOf(page, 'tickets', person).click()
  await page.getByTestId('reply-text').fill('It was re-sent this morning.')
  await page.getByTestId('send').click()
  const got = await rig.receivedAtLeast(person, 6)
  assert.match(got[3], /^Hi, I'm the agent that you spoke to/)
  assert.equal(got[4], 'It was re-sent this morning.')
  assert.match(got[5], /^You can now continue chatting with the chatbot/)
  await page.context().close()
})
