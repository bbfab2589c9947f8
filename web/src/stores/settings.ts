// The signed-in user's own settings (SMS escalation, birthday lead, time
// zone). The time zone decides how every date in the app is shown.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api, call, type Schemas } from '../api/client'
import { useAuth } from './auth'

export type Settings = Schemas['Settings']

export const useSettings = defineStore('settings', () => {
  const settings = ref<Settings | null>(null)
  const auth = useAuth()

  const timezone = computed(
    () => settings.value?.timezone ?? auth.user?.timezone ?? 'Asia/Shanghai',
  )

  async function load() {
    settings.value = await call(api.GET('/api/settings/me'))
    return settings.value
  }

  async function save(changes: Schemas['SettingsIn']) {
    settings.value = await call(api.PUT('/api/settings/me', { body: changes }))
    return settings.value
  }

  function reset() {
    settings.value = null
  }

  return { settings, timezone, load, save, reset }
})
