// Every user the caller may list (a manager: his team; an admin: everyone),
// read a page of 100 at a time: a rep picker or a breakdown by rep needs
// all of them, not the first page.
import { api, call, type Schemas } from './client'

const PAGE = 100
const MAX_PAGES = 50

export async function allUsers(): Promise<Schemas['User'][]> {
  const out: Schemas['User'][] = []
  for (let page = 1; page <= MAX_PAGES; page++) {
    const got = await call(api.GET('/api/users', { params: { query: { page, page_size: PAGE } } }))
    out.push(...got.items)
    if (out.length >= got.total || got.items.length < PAGE) break
  }
  return out
}
