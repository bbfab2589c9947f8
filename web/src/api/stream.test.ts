import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type EventSourceLike, type Notification, NotificationStream } from './stream'

class FakeSource implements EventSourceLike {
  readyState = 0
  onopen: ((ev: Event) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  listeners: Record<string, ((ev: MessageEvent) => void)[]> = {}
  closed = false
  constructor(readonly url: string) {}
  addEventListener(type: string, fn: (ev: MessageEvent) => void) {
    ;(this.listeners[type] ??= []).push(fn)
  }
  close() {
    this.closed = true
    this.readyState = 2
  }
  // what the server does
  open() {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }
  send(item: Partial<Notification> & { id: string }, type = 'notification') {
    const ev = new MessageEvent(type, { data: JSON.stringify(item), lastEventId: item.id })
    for (const fn of this.listeners[type] ?? []) fn(ev)
  }
  drop(closed: boolean) {
    this.readyState = closed ? 2 : 0
    this.onerror?.(new Event('error'))
  }
}

const note = (id: string) => ({ id, title: `提醒 ${id}`, body: '', kind: 'reminder' })

describe('the live notification stream', () => {
  let sources: FakeSource[]
  let got: string[]
  let opens: boolean[]
  let stream: NotificationStream

  beforeEach(() => {
    vi.useFakeTimers()
    sources = []
    got = []
    opens = []
    stream = new NotificationStream({
      url: (last) => `/api/notifications/stream?access_token=t${last ? `&last_event_id=${last}` : ''}`,
      open: (url) => {
        const s = new FakeSource(url)
        sources.push(s)
        return s
      },
      onNotification: (n) => got.push(n.id),
      onOpen: (again) => opens.push(again),
      backoff: (n) => n * 1000,
    })
  })
  afterEach(() => {
    stream.stop()
    vi.useRealTimers()
  })

  it('delivers each notification as it arrives', () => {
    stream.start()
    sources[0].open()
    sources[0].send(note('n1'))
    sources[0].send(note('n2'))
    expect(got).toEqual(['n1', 'n2'])
    expect(stream.lastId).toBe('n2')
  })

  it('leaves a dropped connection to the browser, which resumes by itself', () => {
    stream.start()
    sources[0].open()
    sources[0].drop(false)
    expect(sources).toHaveLength(1)
    expect(sources[0].closed).toBe(false)
  })

  it('reconnects after a refused connection, resuming after the last one seen', async () => {
    stream.start()
    sources[0].open()
    sources[0].send(note('n1'))
    sources[0].drop(true)
    await vi.advanceTimersByTimeAsync(999)
    expect(sources).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(sources[1].url).toContain('last_event_id=n1')
    // refused again: a longer pause
    sources[1].drop(true)
    await vi.advanceTimersByTimeAsync(1999)
    expect(sources).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1)
    sources[2].open()
    expect(opens).toEqual([false, true])
  })

  it('delivers a replayed notification once', async () => {
    stream.start()
    sources[0].open()
    sources[0].send(note('n1'))
    sources[0].send(note('n2'))
    sources[0].drop(true)
    await vi.advanceTimersByTimeAsync(1000)
    sources[1].open()
    // the replay overlaps what arrived before the drop
    sources[1].send(note('n2'))
    sources[1].send(note('n3'))
    expect(got).toEqual(['n1', 'n2', 'n3'])
  })

  it('stops for good when the token expires, and when stopped', async () => {
    let expired = 0
    const s2 = new NotificationStream({
      url: () => '/x',
      open: (url) => {
        const s = new FakeSource(url)
        sources.push(s)
        return s
      },
      onNotification: () => {},
      onExpired: () => expired++,
    })
    s2.start()
    sources[0].open()
    sources[0].send({ id: '' } as never, 'expired')
    expect(expired).toBe(1)
    expect(sources[0].closed).toBe(true)
    await vi.advanceTimersByTimeAsync(60000)
    expect(sources).toHaveLength(1)

    stream.start()
    sources[1].drop(true)
    stream.stop()
    await vi.advanceTimersByTimeAsync(60000)
    expect(sources).toHaveLength(2)
  })
})
