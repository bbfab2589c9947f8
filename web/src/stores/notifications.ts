// The inbox and its live stream: the bell's unread count, the list, and a
// toast for each new one. Acknowledging (知道了) stops the SMS escalation.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, call, getToken } from '../api/client'
import { type Notification, NotificationStream } from '../api/stream'

const PAGE = 30

export const useNotifications = defineStore('notifications', () => {
  const items = ref<Notification[]>([])
  const unread = ref(0)
  const connected = ref(false)
  const loading = ref(false)
  const listeners = new Set<(n: Notification) => void>()
  let stream: NotificationStream | null = null

  const unreadCount = computed(() => unread.value)

  async function load() {
    loading.value = true
    try {
      const [all, fresh] = await Promise.all([
        call(api.GET('/api/notifications', { params: { query: { page_size: PAGE } } })),
        call(api.GET('/api/notifications', { params: { query: { unread: true, page_size: 1 } } })),
      ])
      items.value = all.items
      unread.value = fresh.total
    } finally {
      loading.value = false
    }
  }

  function arrived(n: Notification) {
    if (items.value.some((x) => x.id === n.id)) return
    items.value = [n, ...items.value].slice(0, 200)
    if (!n.read) unread.value += 1
    for (const fn of listeners) fn(n)
  }

  function onArrival(fn: (n: Notification) => void) {
    listeners.add(fn)
    return () => listeners.delete(fn)
  }

  function replace(updated: Notification) {
    const before = items.value.find((x) => x.id === updated.id)
    if (before && !before.read && updated.read) unread.value = Math.max(0, unread.value - 1)
    items.value = items.value.map((x) => (x.id === updated.id ? updated : x))
  }

  async function acknowledge(id: string) {
    replace(await call(api.POST('/api/notifications/{id}/ack', { params: { path: { id } } })))
  }

  async function markRead(id: string) {
    replace(await call(api.POST('/api/notifications/{id}/read', { params: { path: { id } } })))
  }

  function connect(onExpired: () => void, onRevoked?: (code: string) => void) {
    disconnect()
    stream = new NotificationStream({
      url: (last) => {
        const q = new URLSearchParams({ access_token: getToken() ?? '' })
        if (last) q.set('last_event_id', last)
        return `/api/notifications/stream?${q}`
      },
      onNotification: arrived,
      onExpired,
      onRevoked,
      onOpen: (again) => {
        connected.value = true
        // After a gap the replay brings the missed ones; the count is
        // re-read so it is exact even beyond the replay's window.
        if (again) void load().catch(() => {})
      },
    })
    stream.start(items.value[0]?.id ?? null)
    window.addEventListener('offline', markOffline)
  }

  function markOffline() {
    connected.value = false
  }

  function disconnect() {
    stream?.stop()
    stream = null
    connected.value = false
    window.removeEventListener('offline', markOffline)
  }

  function reset() {
    disconnect()
    items.value = []
    unread.value = 0
  }

  return {
    items, unreadCount, connected, loading,
    load, acknowledge, markRead, connect, disconnect, reset, onArrival,
  }
})
