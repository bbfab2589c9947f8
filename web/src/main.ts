import 'element-plus/theme-chalk/base.css'
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/notification/style/css'
import 'element-plus/es/components/message-box/style/css'
import './styles.css'
import { createPinia } from 'pinia'
import { createApp } from 'vue'
import { handleUnauthorized } from './api/client'
import App from './App.vue'
import { i18n } from './i18n'
import { router } from './router'
import { reasonOf, useAuth } from './stores/auth'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia).use(i18n).use(router)

const auth = useAuth(pinia)
auth.restore()
// A token the server refuses anywhere (expired, revoked) ends the session:
// back to the login page, which says why, never a blank screen.
handleUnauthorized((code) => {
  if (!auth.signedIn) return
  auth.logout(reasonOf(code))
  const here = router.currentRoute.value
  void router.replace({ name: 'login', query: here.meta.public ? {} : { redirect: here.fullPath } })
})

app.mount('#app')
