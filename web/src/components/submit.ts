// How every form sends itself: busy while the server answers; its 422
// reasons land beside the fields (by the form's own names); any other
// refusal is shown as a message in the user's language. The form's success
// path stays its own.
import { ElMessage } from 'element-plus'
import { ref } from 'vue'
import { errorText, fieldErrors } from '../i18n/errors'

export function useSubmit(rename: Record<string, string> = {}) {
  const busy = ref(false)
  const errors = ref<Record<string, string>>({})

  /** Runs `action`; on failure returns undefined, the errors shown. */
  async function submit<T>(action: () => Promise<T>, onError?: (exc: unknown) => boolean): Promise<T | undefined> {
    busy.value = true
    errors.value = {}
    try {
      return await action()
    } catch (exc) {
      if (onError?.(exc)) return undefined
      errors.value = fieldErrors(exc, rename)
      if (!Object.keys(errors.value).length) ElMessage.error(errorText(exc))
      return undefined
    } finally {
      busy.value = false
    }
  }

  return { busy, errors, submit }
}
