import dayjs from 'dayjs'
import 'dayjs/locale/zh-cn'
import { createI18n } from 'vue-i18n'
import en from './en'
import zhCN from './zh-CN'

export type Locale = 'zh-CN' | 'en'
export const LOCALES: Locale[] = ['zh-CN', 'en']

export const i18n = createI18n({
  legacy: false,
  locale: 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zhCN, en },
})

export function setLocale(locale: Locale) {
  i18n.global.locale.value = locale
  document.documentElement.lang = locale
  // Element Plus's calendar takes the first day of the week from dayjs's
  // global locale: Monday in Chinese.
  dayjs.locale(locale === 'en' ? 'en' : 'zh-cn')
}

export function currentLocale(): Locale {
  return i18n.global.locale.value as Locale
}
