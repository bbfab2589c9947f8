// The customers a list of approvals refers to, read once each: the diff
// needs the record's current values, a dispute the owner's contacts.
import { reactive } from 'vue'
import { api, call, type Schemas } from '../../api/client'

export function useCustomers() {
  const byId = reactive<Record<string, Schemas['Customer'] | null>>({})

  async function fetch(ids: string[]) {
    const wanted = [...new Set(ids)].filter((id) => !(id in byId))
    await Promise.all(wanted.map(async (id) => {
      try {
        byId[id] = await call(api.GET('/api/customers/{id}', { params: { path: { id } } }))
      } catch {
        byId[id] = null // gone from view (moved to another team): the item still shows
      }
    }))
  }

  function forget(id: string) {
    delete byId[id]
  }

  return { byId, fetch, forget }
}
