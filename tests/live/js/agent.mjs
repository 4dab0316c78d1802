// A stock Yjs client (npm yjs + y-websocket's WebsocketProvider over node `ws`),
// driven by the Python tests through JSON lines on stdin/stdout.
//
//   argv: <websocket base url> <room path> <bearer token or "-">
//   stdin:  {"id": 1, "op": "append" | "insert" | "text" | "wait" | "synced" | "server" |
//            "replace" |
//            "peers" | "notices" | "close", ...}
//   stdout: {"id": 1, "ok": true, "text": "...", ...}  and {"event": "status", ...}
import readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [base, room, token] = process.argv.slice(2)

// WebsocketProvider takes a WebSocket class; this one adds the Authorization header
// on the upgrade (a browser would send the session cookie instead).
class AuthedWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, token && token !== '-' ? { headers: { Authorization: `Bearer ${token}` } } : {})
  }
}

const doc = new Y.Doc()
const text = doc.getText('content')
const provider = new WebsocketProvider(base, room, doc, {
  WebSocketPolyfill: AuthedWebSocket,
  disableBc: true,
  maxBackoffTime: 500
})
provider.awareness.setLocalStateField('user', { name: process.env.AGENT_NAME || 'agent' })

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
let closes = []
provider.on('status', (e) => out({ event: 'status', status: e.status }))
provider.on('connection-close', (e) => { if (e) closes.push({ code: e.code, reason: String(e.reason || '') }) })

const peerNames = () => [...provider.awareness.getStates()]
  .filter(([id]) => id !== doc.clientID)
  .map(([, state]) => state.user?.name)
  .filter(Boolean)
  .sort()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function until (predicate, timeoutMs) {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (predicate()) return true
    await sleep(20)
  }
  return predicate()
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', async (line) => {
  const cmd = JSON.parse(line)
  const reply = (extra) => out({ id: cmd.id, text: text.toString(), synced: provider.synced, closes, ...extra })
  try {
    switch (cmd.op) {
      case 'synced':
        reply({ ok: await until(() => provider.synced, cmd.timeout ?? 10000) })
        break
      case 'append':
        text.insert(text.length, cmd.text)
        reply({ ok: true })
        break
      case 'insert':
        text.insert(cmd.index, cmd.text)
        reply({ ok: true })
        break
      case 'replace': { // replace the first occurrence of `from` with `to`, in one transaction
        const at = text.toString().indexOf(cmd.from)
        if (at >= 0) doc.transact(() => { text.delete(at, cmd.from.length); text.insert(at, cmd.to) })
        reply({ ok: at >= 0 })
        break
      }
      case 'raw': // send raw bytes (hex) on the socket: protocol-abuse tests
        provider.ws.send(Buffer.from(cmd.hex, 'hex'))
        reply({ ok: true })
        break
      case 'text':
        reply({ ok: true })
        break
      case 'server': // where to reconnect from now on (what a load balancer would decide)
        provider.serverUrl = cmd.url
        reply({ ok: true })
        break
      case 'peers': // names in awareness, other than our own
        reply({ ok: await until(() => peerNames().includes(cmd.name ?? ''), cmd.timeout ?? 0), peers: peerNames() })
        break
      case 'notices': // the server's Y.Map 'notices'
        reply({ ok: true, notices: doc.getMap('notices').toJSON() })
        break
      case 'wait':
        reply({ ok: await until(() => text.toString().includes(cmd.contains), cmd.timeout ?? 10000) })
        break
      case 'waitclose':
        reply({ ok: await until(() => closes.length > 0, cmd.timeout ?? 10000) })
        break
      case 'close':
        provider.destroy()
        reply({ ok: true })
        setTimeout(() => process.exit(0), 50)
        break
      default:
        reply({ ok: false, error: `unknown op ${cmd.op}` })
    }
  } catch (err) {
    reply({ ok: false, error: String(err) })
  }
})
