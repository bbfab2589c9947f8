import { onBeforeUnmount, ref } from 'vue'

/** true at a phone's width: layouts with two columns fall back to one. */
export function useNarrow(query = '(max-width: 768px)') {
  const media = window.matchMedia(query)
  const narrow = ref(media.matches)
  const update = () => {
    narrow.value = media.matches
  }
  media.addEventListener('change', update)
  onBeforeUnmount(() => media.removeEventListener('change', update))
  return narrow
}
