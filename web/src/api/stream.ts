// The live inbox: Server-Sent Events from /api/notifications/stream. The
// browser's EventSource reconnects by itself after a dropped connection and
// sends Last-Event-ID, so the gateway replays what was missed. When the
// connection is refused outright (a restart, a 503), EventSource gives up: we
// open a new one after a growing pause and name the last notification seen
// (?last_event_id=) so the replay still happens. A replay may repeat what
// already arrived: each notification is delivered to the app once.
import type { Schemas } from './client'

export type Notification = Schemas['Notification']

export interface EventSourceLike {
  readonly readyState: number
  onopen: ((ev: Event) => unknown) | null
  onerror: ((ev: Event) => unknown) | null
  addEventListener(type: string, listener: (ev: MessageEvent) => void): void
  close(): void
}

export interface StreamOptions {
  /** The stream's URL, with the token and the id to resume after. */
  url: (lastEventId: string | null) => string
  onNotification: (n: Notification) => void
  /** The server ended the stream because the token expired. */
  onExpired?: () => void
  /** The server ended the stream because the session was revoked (the
   * account disabled, a new password): the code says which. */
  onRevoked?: (code: string) => void
  /** Connected (again): the first time with `reconnected` false. */
  onOpen?: (reconnected: boolean) => void
  open?: (url: string) => EventSourceLike
  /** pause before the n-th reconnect (1, 2, ...) */
  backoff?: (attempt: number) => number
  /** how many ids to remember for de-duplication */
  remember?: number
}

const CLOSED = 2

export class NotificationStream {
  private source: EventSourceLike | null = null
  private lastEventId: string | null = null
  private seen = new Set<string>()
  private attempts = 0
  private opened = false
  private timer: ReturnType<typeof setTimeout> | null = null
  private stopped = true

  constructor(private readonly opts: StreamOptions) {}

  start(lastEventId: string | null = null) {
    this.stopped = false
    if (lastEventId) this.lastEventId = lastEventId
    this.connect()
  }

  stop() {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.source?.close()
    this.source = null
  }

  get lastId(): string | null {
    return this.lastEventId
  }

  private connect() {
    if (this.stopped) return
    const open = this.opts.open ?? ((url: string) => new EventSource(url) as EventSourceLike)
    const source = open(this.opts.url(this.lastEventId))
    this.source = source
    source.onopen = () => {
      this.attempts = 0
      this.opts.onOpen?.(this.opened)
      this.opened = true
    }
    source.addEventListener('notification', (ev: MessageEvent) => {
      let item: Notification
      try {
        item = JSON.parse(ev.data) as Notification
      } catch {
        return
      }
      const id = ev.lastEventId || item.id
      if (id) this.lastEventId = id
      if (this.seen.has(item.id)) return
      this.remember(item.id)
      this.opts.onNotification(item)
    })
    source.addEventListener('expired', () => {
      this.stop()
      this.opts.onExpired?.()
    })
    source.addEventListener('revoked', (ev: MessageEvent) => {
      this.stop()
      let code = 'session_revoked'
      try {
        code = String((JSON.parse(ev.data) as { error?: string }).error ?? code)
      } catch {
        /* the default */
      }
      this.opts.onRevoked?.(code)
    })
    source.onerror = () => {
      // CONNECTING: the browser retries on its own, with Last-Event-ID.
      if (this.stopped || source.readyState !== CLOSED) return
      source.close()
      this.retry()
    }
  }

  private retry() {
    this.attempts += 1
    const pause = (this.opts.backoff ?? defaultBackoff)(this.attempts)
    this.timer = setTimeout(() => {
      this.timer = null
      this.connect()
    }, pause)
  }

  private remember(id: string) {
    this.seen.add(id)
    const limit = this.opts.remember ?? 500
    if (this.seen.size > limit) {
      const oldest = this.seen.values().next().value
      if (oldest !== undefined) this.seen.delete(oldest)
    }
  }
}

export function defaultBackoff(attempt: number): number {
  return Math.min(30000, 1000 * 2 ** (attempt - 1))
}
