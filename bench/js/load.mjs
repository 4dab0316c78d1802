// Load generator for `scripts/bench live`: many simulated editors in one process,
// speaking the raw y-websocket protocol over node `ws` (no WebsocketProvider).
//
//   node load.mjs '<json config>'       (see bench/live.py for the fields)
//
// stdout, one JSON object a line:
//   {"event": "ready", "connected": n}          every editor joined and synced
//   {"event": "result", ...}                     after the run and the drain
// stdin: one line "go <start_ns>" (CLOCK_MONOTONIC, the same clock as Python's
// time.monotonic_ns and node's process.hrtime) starts the run.
//
// Each editor inserts " " + a 5-letter stamp at a random position once a second. The
// stamp is the send time in units of 0.1 ms since the run's epoch, written in base 26
// (so the insert looks like a short word): every receiver reads the sender (the
// item's client id) and the send time from the update itself, with no shared table.
// Every received update frame is decoded (Y.decodeUpdate, memoised per process since
// the server sends the same bytes to every socket) and counted for every receiving
// editor except the sender. One Y.Doc per process (its client id switched to the
// editor's before each edit) applies every update once, so that edits land at real
// positions of the real, growing text.
import readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const cfg = JSON.parse(process.argv[2])
// cfg: {url, token, editors, first, epochNs, seconds, drainSeconds, awarenessSeconds,
//       concurrency, seed: string|null (seed mode: insert this text, then exit)}

const UNIT_NS = 100_000n // 0.1 ms
const now = () => process.hrtime.bigint()
const sinceEpoch = () => Number((now() - BigInt(cfg.epochNs)) / UNIT_NS)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const MSG_SYNC = 0
const MSG_AWARENESS = 1
const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2

function stamp (units) {
  let s = ''
  for (let i = 0; i < 5; i++) {
    s = String.fromCharCode(97 + (units % 26)) + s
    units = Math.floor(units / 26)
  }
  return s
}
function unstamp (s) {
  let v = 0
  for (let i = 0; i < 5; i++) v = v * 26 + (s.charCodeAt(i) - 97)
  return v
}

function frame (type, sub, payload) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, type)
  if (sub !== null) encoding.writeVarUint(e, sub)
  encoding.writeVarUint8Array(e, payload)
  return encoding.toUint8Array(e)
}

const doc = new Y.Doc()
const text = doc.getText('content')
let docSynced = false
let lastUpdate = null
doc.on('update', (update, origin) => { if (origin === 'bench') lastUpdate = update })

// Decoded update payloads, shared by every editor of this process: key -> [[client, units]...]
const memo = new Map()
let memoBorn = Date.now()
function editsIn (payload) {
  const key = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1')
  let edits = memo.get(key)
  if (edits === undefined) {
    edits = []
    const { structs } = Y.decodeUpdate(payload)
    for (const s of structs) {
      const str = s.content && s.content.str
      if (typeof str !== 'string') continue
      const found = str.match(/[a-z]{5}/g)
      if (found) for (const f of found) edits.push([s.id.client, unstamp(f)])
    }
    Y.applyUpdate(doc, payload, 'remote') // once per process
    if (Date.now() - memoBorn > 5000) { memo.clear(); memoBorn = Date.now() }
    memo.set(key, edits)
  }
  return edits
}

// Latency histogram in 0.1 ms units (index = units), sparse at the end.
const hist = new Map()
let received = 0
let measuring = false
let accepting = true
let framesIn = 0
let bytesIn = 0
let awarenessIn = 0

const names = ['Ada', 'Bob', 'Cyd', 'Dee', 'Eve', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jon']
const colors = ['#30bced', '#6eeb83', '#ffbc42', '#ecd444', '#ee6352', '#9ac2c9', '#8acb88', '#1be7ff']

class Editor {
  constructor (index) {
    this.index = index
    this.clientID = 1 + Math.floor(Math.random() * 0x7ffffff0)
    this.awarenessClock = 0
    this.synced = false
    this.closed = null
    this.sent = 0
    this.name = `${names[index % names.length]} ${index}`
    this.color = colors[index % colors.length]
  }

  connect () {
    return new Promise((resolve) => {
      const headers = cfg.token ? { Authorization: `Bearer ${cfg.token}` } : {}
      // perMessageDeflate: offered, as every browser does (Quire refuses it, ws's server
      // does not enable it by default).
      const ws = new WebSocket(cfg.url, { headers, perMessageDeflate: true })
      ws.binaryType = 'nodebuffer'
      this.ws = ws
      this.onSynced = resolve
      ws.on('open', () => {
        ws.send(frame(MSG_SYNC, SYNC_STEP1, Y.encodeStateVector(new Y.Doc())))
        this.sendAwareness(null)
      })
      ws.on('message', (data) => this.receive(data))
      ws.on('close', (code, reason) => {
        this.closed = { code, reason: String(reason) || this.error || '' }
        if (!this.synced) resolve()
      })
      ws.on('error', (err) => {
        this.error = String(err.message)
        if (!this.closed) this.closed = { code: -1, reason: this.error }
        if (!this.synced) resolve() // a failed upgrade may never emit 'close'
      })
    })
  }

  receive (data) {
    if (!accepting) return
    framesIn++
    bytesIn += data.length
    const d = decoding.createDecoder(data)
    const type = decoding.readVarUint(d)
    if (type === MSG_AWARENESS) { awarenessIn++; return }
    if (type !== MSG_SYNC) return
    const sub = decoding.readVarUint(d)
    const payload = decoding.readVarUint8Array(d)
    if (sub === SYNC_STEP1) {
      // The server's state vector: answer with what we have (nothing of our own yet).
      this.ws.send(frame(MSG_SYNC, SYNC_STEP2, Y.encodeStateAsUpdate(new Y.Doc())))
    } else if (sub === SYNC_STEP2) {
      if (!docSynced) { Y.applyUpdate(doc, payload, 'remote'); docSynced = true }
      if (!this.synced) { this.synced = true; this.onSynced() }
    } else if (sub === SYNC_UPDATE) {
      const edits = editsIn(payload)
      if (!measuring) return
      const t = sinceEpoch()
      for (const [client, sentAt] of edits) {
        if (client === this.clientID) continue // Quire echoes to the sender
        const lat = t - sentAt
        hist.set(lat, (hist.get(lat) || 0) + 1)
        received++
      }
    }
  }

  edit () {
    if (this.closed || !this.synced) return
    const units = sinceEpoch()
    doc.clientID = this.clientID
    const pos = Math.floor(Math.random() * (text.length + 1))
    lastUpdate = null
    doc.transact(() => text.insert(pos, ' ' + stamp(units)), 'bench')
    this.ws.send(frame(MSG_SYNC, SYNC_UPDATE, lastUpdate))
    this.sent++
    this.cursor = pos + 6
  }

  sendAwareness (cursor) {
    if (this.closed) return
    const state = { user: { name: this.name, color: this.color, colorLight: this.color + '33' } }
    if (cursor !== null) {
      // What y-codemirror.next publishes: relative positions of anchor and head.
      const rel = { type: null, tname: 'content', item: { client: this.clientID, clock: cursor }, assoc: 0 }
      state.cursor = { anchor: rel, head: rel }
    }
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 1)
    encoding.writeVarUint(e, this.clientID)
    encoding.writeVarUint(e, ++this.awarenessClock)
    encoding.writeVarString(e, JSON.stringify(state))
    this.ws.send(frame(MSG_AWARENESS, null, encoding.toUint8Array(e)))
  }
}

async function seed () {
  const ed = new Editor(0)
  await ed.connect()
  doc.clientID = ed.clientID
  lastUpdate = null
  doc.transact(() => text.insert(text.length, cfg.seed), 'bench')
  ed.ws.send(frame(MSG_SYNC, SYNC_UPDATE, lastUpdate))
  await sleep(500)
  ed.ws.close()
  await sleep(100)
  out({ event: 'seeded', length: text.length })
  process.exit(0)
}

async function main () {
  const editors = []
  for (let i = 0; i < cfg.editors; i++) editors.push(new Editor(cfg.first + i))
  // Join with bounded concurrency, as a crowd arriving would.
  let next = 0
  const workers = []
  for (let w = 0; w < cfg.concurrency; w++) {
    workers.push((async () => {
      while (next < editors.length) await editors[next++].connect()
    })())
  }
  await Promise.all(workers)
  const connected = editors.filter((e) => e.synced && !e.closed).length
  const closes = editors.filter((e) => e.closed).map((e) => e.closed)
  out({ event: 'ready', connected, closes: closes.slice(0, 5) })

  const rl = readline.createInterface({ input: process.stdin })
  const startNs = await new Promise((resolve) => rl.once('line', (line) => resolve(BigInt(line.split(' ')[1]))))
  const startMs = Number(startNs - now()) / 1e6
  await sleep(Math.max(0, startMs))
  measuring = true
  const cpu0 = process.cpuUsage()
  const t0 = now()
  const timers = []
  for (const ed of editors) {
    // 1 edit/s from a random phase; a cursor update every few seconds, also dephased.
    const phase = Math.random() * 1000
    timers.push(setTimeout(() => {
      ed.edit()
      timers.push(setInterval(() => ed.edit(), 1000))
    }, phase))
    const aphase = Math.random() * cfg.awarenessSeconds * 1000
    timers.push(setTimeout(() => {
      ed.sendAwareness(ed.cursor ?? 0)
      timers.push(setInterval(() => ed.sendAwareness(ed.cursor ?? 0), cfg.awarenessSeconds * 1000))
    }, aphase))
  }
  await sleep(cfg.seconds * 1000)
  for (const t of timers) { clearTimeout(t); clearInterval(t) }
  const sendCpu = process.cpuUsage(cpu0)
  const sendWall = Number(now() - t0) / 1e9
  await sleep(cfg.drainSeconds * 1000)
  accepting = false
  measuring = false
  const cpu = process.cpuUsage(cpu0)
  const wall = Number(now() - t0) / 1e9
  const sent = editors.reduce((a, e) => a + e.sent, 0)
  const stillOpen = editors.filter((e) => !e.closed).length
  const closedDuring = editors.filter((e) => e.closed).map((e) => e.closed)
  out({
    event: 'result',
    editors: editors.length,
    sent,
    received,
    framesIn,
    bytesIn,
    awarenessIn,
    stillOpen,
    closes: closedDuring.slice(0, 10),
    closedCount: closedDuring.length,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds: wall,
    sendCpuSeconds: (sendCpu.user + sendCpu.system) / 1e6,
    sendWallSeconds: sendWall,
    textLength: text.length,
    hist: [...hist.entries()]
  })
  for (const ed of editors) if (!ed.closed) ed.ws.close()
  await sleep(300)
  process.exit(0)
}

if (cfg.seed !== null && cfg.seed !== undefined) seed()
else main()
