// Who is signed in. The token lives in localStorage so a reload or a deep
// link keeps the session; it is dropped (and the login page says why) when
// it expires or when the server refuses it.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, call, type Schemas, setToken } from '../api/client'
import { type Locale, LOCALES, setLocale } from '../i18n'

export type User = Schemas['User']
export type LogoutReason = 'expired' | 'refused' | 'disabled' | 'revoked' | 'loggedOut'

/** Why the server refused a token, as the login page says it. */
export function reasonOf(code: string): LogoutReason {
  if (code === 'token_expired') return 'expired'
  if (code === 'account_disabled') return 'disabled'
  if (code === 'session_revoked') return 'revoked'
  return 'refused'
}

const TOKEN_KEY = 'crm.token'
const USER_KEY = 'crm.user'
// The login page speaks the language last used on this browser.
const DEVICE_LOCALE = 'crm.locale'
const PENDING_LOCALE = 'crm.locale.pending'
const localeKey = (userId: string) => `crm.locale.${userId}`

/** The token's expiry (seconds since the epoch), read without verifying it:
 * the server verifies; the page only needs to know when to stop. */
export function tokenExpiry(token: string): number | null {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const json = JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), '=')))
    return typeof json.exp === 'number' ? json.exp : null
  } catch {
    return null
  }
}

function storedLocale(key: string): Locale | null {
  const value = localStorage.getItem(key)
  return LOCALES.includes(value as Locale) ? (value as Locale) : null
}

export const useAuth = defineStore('auth', () => {
  const token = ref<string | null>(null)
  const user = ref<User | null>(null)
  const notice = ref<LogoutReason | null>(null)
  let timer: ReturnType<typeof setTimeout> | null = null

  const role = computed(() => user.value?.role ?? null)
  const signedIn = computed(() => !!token.value && !!user.value)
  // A reset password must be replaced before anything else (the server
  // refuses every other call with 403 password_change_required).
  const mustChangePassword = computed(() => !!user.value?.must_change_password)

  function arm(value: string) {
    if (timer) clearTimeout(timer)
    const exp = tokenExpiry(value)
    if (exp === null) return
    const left = exp * 1000 - Date.now()
    timer = setTimeout(() => logout('expired'), Math.max(0, Math.min(left, 2 ** 31 - 1)))
  }

  function adopt(value: string, who: User) {
    token.value = value
    user.value = who
    setToken(value)
    localStorage.setItem(TOKEN_KEY, value)
    localStorage.setItem(USER_KEY, JSON.stringify(who))
    // His own choice; else the one he made on the login page just now; else
    // Chinese. Another user's choice on this browser is not his.
    const pending = storedLocale(PENDING_LOCALE)
    localStorage.removeItem(PENDING_LOCALE)
    const mine = storedLocale(localeKey(who.id)) ?? pending
    if (pending && !storedLocale(localeKey(who.id))) localStorage.setItem(localeKey(who.id), pending)
    setLocale(mine ?? 'zh-CN')
    localStorage.setItem(DEVICE_LOCALE, mine ?? 'zh-CN')
    arm(value)
  }

  /** A session kept from an earlier visit, unless its token has expired. */
  function restore(): boolean {
    setLocale(storedLocale(DEVICE_LOCALE) ?? 'zh-CN')
    const saved = localStorage.getItem(TOKEN_KEY)
    const who = localStorage.getItem(USER_KEY)
    if (!saved || !who) return false
    const exp = tokenExpiry(saved)
    if (exp !== null && exp * 1000 <= Date.now()) {
      clear()
      notice.value = 'expired'
      return false
    }
    try {
      adopt(saved, JSON.parse(who) as User)
    } catch {
      clear()
      return false
    }
    return true
  }

  async function login(username: string, password: string) {
    const out = await call(api.POST('/api/auth/login', { body: { username, password } }))
    notice.value = null
    adopt(out.token, out.user)
  }

  /** Fresh user data (name, role) from the server: the stored copy may be old. */
  async function refresh() {
    if (!token.value) return
    const who = await call(api.GET('/api/users/me'))
    user.value = who
    localStorage.setItem(USER_KEY, JSON.stringify(who))
  }

  function clear() {
    if (timer) clearTimeout(timer)
    timer = null
    token.value = null
    user.value = null
    setToken(null)
    localStorage.removeItem(TOKEN_KEY)
    localStorage.removeItem(USER_KEY)
  }

  function logout(reason: LogoutReason = 'loggedOut') {
    const wasSignedIn = !!token.value
    clear()
    if (wasSignedIn || reason !== 'loggedOut') notice.value = reason
  }

  function chooseLocale(locale: Locale) {
    setLocale(locale)
    localStorage.setItem(DEVICE_LOCALE, locale)
    if (user.value) localStorage.setItem(localeKey(user.value.id), locale)
    else localStorage.setItem(PENDING_LOCALE, locale)
  }

  /** After a password change: the server's fresh token (the old ones are revoked). */
  function renew(value: string, who: User) {
    adopt(value, who)
  }

  return {
    token, user, role, signedIn, mustChangePassword, notice, restore, login, refresh, logout, renew,
    chooseLocale,
  }
})
