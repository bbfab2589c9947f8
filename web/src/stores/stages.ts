// The pipeline's stages as the company defined them (labels, probabilities):
// read once per session, shown wherever a stage is.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { api, call, type Schemas } from '../api/client'

export type Stage = Schemas['Stage']

export const useStages = defineStore('stages', () => {
  const stages = ref<Stage[]>([])
  let pending: Promise<Stage[]> | null = null

  function load(force = false): Promise<Stage[]> {
    if (stages.value.length && !force) return Promise.resolve(stages.value)
    pending ??= call(api.GET('/api/stages'))
      .then((list) => {
        stages.value = [...list].sort((a, b) => a.stage - b.stage)
        return stages.value
      })
      .finally(() => {
        pending = null
      })
    return pending
  }

  /** "意向客户 (10%)", or "10%" for a stage no longer in the list. */
  function label(stage: number | null | undefined): string {
    if (stage === null || stage === undefined) return ''
    const found = stages.value.find((s) => s.stage === stage)
    return found ? `${found.label} (${stage}%)` : `${stage}%`
  }

  return { stages, load, label }
})
