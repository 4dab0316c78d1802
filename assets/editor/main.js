// Quire's live editor: CodeMirror 6 bound to the room's Y.Text `content` over
// y-websocket, with a sanitized Markdown preview, presence and a connection
// indicator. Mounted on the element with [data-live-editor-root]; the page
// without JavaScript keeps its link to the form editor.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { EditorView, keymap, lineNumbers, drawSelection, highlightActiveLine } from '@codemirror/view'
import { EditorState, Compartment } from '@codemirror/state'
import { defaultKeymap } from '@codemirror/commands'
import { syntaxHighlighting, defaultHighlightStyle } from '@codemirror/language'
import { markdown } from '@codemirror/lang-markdown'
import MarkdownIt from 'markdown-it'
import DOMPurify from 'dompurify'

// Close codes sent by the server (app/live/connection.py CloseCode).
const ACCESS_REVOKED = 4403
const ROLE_CHANGED = 4409

const md = new MarkdownIt({ html: false, linkify: true })

function websocketBase (path) {
  const url = new URL(path, window.location.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return url.href.replace(/\/$/, '')
}

function plural (n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

export function mount (root) {
  const cfg = root.dataset
  const readOnly = cfg.readOnly === 'true'
  const editorHost = root.querySelector('[data-live-editor]')
  const previewHost = root.querySelector('[data-live-preview]')
  const statusEl = root.querySelector('[data-live-status]')
  const peopleEl = root.querySelector('[data-live-people]')
  const noticeEl = root.querySelector('[data-live-notice]')

  const doc = new Y.Doc()
  const ytext = doc.getText('content')
  const provider = new WebsocketProvider(websocketBase(cfg.wsUrl), cfg.room, doc, {
    disableBc: true, // every tab goes through the server, which enforces roles
    maxBackoffTime: 5000
  })
  const me = { name: cfg.userName, color: cfg.userColor, colorLight: cfg.userColorLight, viewer: readOnly }
  provider.awareness.setLocalStateField('user', me)

  // --- the editor ---------------------------------------------------------------
  const editable = new Compartment()
  const undoManager = readOnly ? false : new Y.UndoManager(ytext)
  const view = new EditorView({
    parent: editorHost,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        lineNumbers(),
        drawSelection(),
        highlightActiveLine(),
        EditorView.lineWrapping,
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        markdown(),
        keymap.of([...(readOnly ? [] : yUndoManagerKeymap), ...defaultKeymap]),
        yCollab(ytext, provider.awareness, { undoManager }),
        editable.of(EditorState.readOnly.of(readOnly)),
        EditorView.contentAttributes.of({
          'aria-label': readOnly ? 'Document text (read-only)' : 'Document text',
          'aria-multiline': 'true'
        })
      ]
    })
  })
  editorHost.querySelector('[data-live-fallback]')?.remove()

  // --- the preview ----------------------------------------------------------------
  let previewTimer = null
  const renderPreview = () => {
    previewTimer = null
    previewHost.innerHTML = DOMPurify.sanitize(md.render(ytext.toString()))
  }
  ytext.observe(() => {
    if (previewTimer === null) previewTimer = setTimeout(renderPreview, 120)
  })

  // --- connection indicator and unsent changes ----------------------------------------
  let status = 'connecting'
  let everConnected = false
  let unsent = 0
  let stopped = null // a reason when the server told us to stop
  const online = () => navigator.onLine !== false

  const showStatus = () => {
    let text
    let state
    if (stopped) {
      state = 'offline'
      text = stopped
    } else if (status === 'connected' && provider.synced) {
      state = 'connected'
      text = 'Connected'
    } else if (!online() || provider.wsUnsuccessfulReconnects >= 3) {
      state = 'offline'
      text = 'Offline'
    } else {
      state = 'reconnecting'
      text = everConnected ? 'Reconnecting…' : 'Connecting…'
    }
    if (unsent > 0 && state !== 'connected') text += ` · ${plural(unsent, 'unsent change')}`
    // Only on change: the element is a live region and must not repeat itself.
    if (statusEl.textContent !== text) statusEl.textContent = text
    root.dataset.connection = state
    root.dataset.unsent = String(unsent)
  }

  doc.on('update', (_update, origin) => {
    if (origin === provider) return // from the server
    if (!(provider.wsconnected && provider.synced)) {
      unsent += 1
      showStatus()
    }
  })
  provider.on('status', (event) => {
    status = event.status
    if (status === 'connected') everConnected = true
    showStatus()
  })
  provider.on('sync', (synced) => {
    // On (re)connection the client answers the server's sync step 1 with every local
    // change the server lacks before the server's step 2 marks us synced.
    if (synced) unsent = 0
    showStatus()
  })
  provider.on('connection-close', (event) => {
    if (!event) return
    if (event.code === ACCESS_REVOKED) {
      stopped = 'You no longer have access to this document.'
      provider.disconnect()
      setReadOnly()
    } else if (event.code === ROLE_CHANGED) {
      setReadOnly()
      noticeEl.hidden = false
      noticeEl.textContent = 'Your role on this document changed. Reload the page to continue.'
    }
    showStatus()
  })
  function setReadOnly () {
    view.dispatch({ effects: editable.reconfigure(EditorState.readOnly.of(true)) })
  }
  // The browser knows it is offline before the socket times out: stop trying, and
  // reconnect (merging what was typed meanwhile) as soon as it is back.
  window.addEventListener('offline', () => {
    if (!stopped) provider.disconnect()
    showStatus()
  })
  window.addEventListener('online', () => {
    if (!stopped) provider.connect()
    showStatus()
  })
  setInterval(showStatus, 1000)

  // --- presence ------------------------------------------------------------------------
  const renderPeople = () => {
    const seen = new Map()
    for (const [clientId, state] of provider.awareness.getStates()) {
      const user = state.user
      if (!user || !user.name) continue
      const key = `${user.name}`
      const mine = clientId === doc.clientID
      if (!seen.has(key) || mine) seen.set(key, { ...user, mine })
    }
    const people = [...seen.values()].sort((a, b) => (b.mine - a.mine) || a.name.localeCompare(b.name))
    peopleEl.replaceChildren(...people.map((user) => {
      const li = document.createElement('li')
      li.className = 'live-person'
      const dot = document.createElement('span')
      dot.className = 'live-dot'
      dot.setAttribute('aria-hidden', 'true')
      dot.style.backgroundColor = user.color || '#888'
      li.append(dot, document.createTextNode(user.name))
      const notes = [user.mine ? 'you' : null, user.viewer ? 'viewing' : null].filter(Boolean)
      if (notes.length) {
        const small = document.createElement('span')
        small.className = 'muted'
        small.textContent = ` (${notes.join(', ')})`
        li.append(small)
      }
      return li
    }))
  }
  provider.awareness.on('change', renderPeople)
  renderPeople()
  showStatus()

  // --- server notices --------------------------------------------------------------
  // The server writes notices into the Y.Map `notices` (app/live/room.py), e.g. when a
  // push or save changed the same words as the live text and both versions were kept.
  const notices = doc.getMap('notices')
  const NOTICE_MAX_AGE_MS = 10 * 60 * 1000
  const showNotices = () => {
    const recent = [...notices.values()]
      .filter((n) => n && n.message && Date.now() - (n.at || 0) < NOTICE_MAX_AGE_MS)
      .sort((a, b) => (b.at || 0) - (a.at || 0))
    if (!recent.length || stopped) return
    noticeEl.hidden = false
    noticeEl.textContent = recent[0].message
  }
  notices.observe(showNotices)

  const api = { doc, ytext, provider, view, undoManager }
  window.quireLive = api // for the console and the browser tests
  return api
}

const root = document.querySelector('[data-live-editor-root]')
if (root) mount(root)
