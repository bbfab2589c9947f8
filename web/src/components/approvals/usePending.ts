// What the three approvals lists share: the open items of one kind, their
// count for the tab, the customers they refer to (read after the list
// shows), and the item whose decision dialog is open.
import { type Ref, ref } from 'vue'
import { errorText } from '../../i18n/errors'
import { useCustomers } from './useCustomers'

export function usePending<T extends { customer_id: string }>(
  fetch: () => Promise<{ items: T[]; total: number }>,
  onCount: (n: number) => void,
) {
  const customers = useCustomers()
  const items = ref([]) as Ref<T[]>
  const loading = ref(false)
  const error = ref('')
  const current = ref(null) as Ref<T | null>
  const open = ref(false)

  async function load() {
    loading.value = true
    error.value = ''
    try {
      const out = await fetch()
      items.value = out.items
      onCount(out.total)
      loading.value = false
      await customers.fetch(out.items.map((x) => x.customer_id))
    } catch (exc) {
      error.value = errorText(exc)
    } finally {
      loading.value = false
    }
  }

  function handle(item: T) {
    current.value = item
    open.value = true
  }

  /** After a decision: its customer has changed; the list has one less. */
  function decided(item: T | null = current.value) {
    if (item) customers.forget(item.customer_id)
    void load()
  }

  return { customers, items, loading, error, current, open, load, handle, decided }
}
