import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useAuth } from './stores/auth'

// Every screen but the login page is its own chunk: the first load carries
// only the shell and the screen asked for.
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
  { path: '/', redirect: '/customers' },
  {
    path: '/customers',
    component: () => import('./views/CustomerListView.vue'),
    // The new-customer form opens over the list, as a side panel.
    children: [
      { path: '', name: 'customers', component: { render: () => null } },
      { path: 'new', name: 'customer-new', component: () => import('./views/CustomerNewView.vue') },
    ],
  },
  { path: '/customers/:id', name: 'customer', component: () => import('./views/CustomerView.vue'), props: true },
  { path: '/pool', name: 'pool', component: () => import('./views/PoolView.vue') },
  { path: '/schedule', name: 'schedule', component: () => import('./views/ScheduleView.vue') },
  { path: '/knowledge', name: 'knowledge', component: () => import('./views/KnowledgeView.vue') },
  { path: '/knowledge/questions/:id', name: 'question', component: () => import('./views/QuestionView.vue'), props: true },
  { path: '/knowledge/stories/:id', name: 'story', component: () => import('./views/StoryView.vue'), props: true },
  { path: '/forecast', name: 'forecast', component: () => import('./views/ForecastView.vue') },
  {
    path: '/approvals', name: 'approvals', component: () => import('./views/ApprovalsView.vue'),
    meta: { roles: ['manager', 'admin'] },
  },
  { path: '/team', name: 'team', component: () => import('./views/TeamView.vue'), meta: { roles: ['manager', 'admin'] } },
  { path: '/settings', name: 'settings', component: () => import('./views/SettingsView.vue'), meta: { roles: ['admin'] } },
  { path: '/password', name: 'password', component: () => import('./views/PasswordView.vue') },
  { path: '/forbidden', name: 'forbidden', component: () => import('./views/ForbiddenView.vue') },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue') },
]

export const router = createRouter({
  history: createWebHistory(),
  routes,
  scrollBehavior: (_to, _from, saved) => saved ?? { top: 0 },
})

router.beforeEach((to) => {
  const auth = useAuth()
  if (!to.meta.public && !auth.signedIn) {
    return { name: 'login', query: to.fullPath !== '/' ? { redirect: to.fullPath } : {} }
  }
  if (to.name === 'login' && auth.signedIn) return { path: '/customers' }
  if (auth.signedIn && auth.mustChangePassword && to.name !== 'password') {
    return { name: 'password', query: { redirect: to.fullPath } }
  }
  // Which screens a role opens is for the page to show; the server refuses
  // the calls behind them all the same.
  const roles = to.meta.roles as string[] | undefined
  if (roles && !roles.includes(auth.role ?? '')) {
    return { name: 'forbidden', query: { from: to.fullPath }, replace: true }
  }
  return true
})
