/**
 * src/profile: the org policy profiles of a configured stack (README "Profiles", seed 000): the
 * catalog (list), signed approvals of a change to a weaker profile, and the recorded change that
 * `aibox start` accepts (set). The start-time gate itself is src/start/profile-gate.ts; the
 * definition, checks and merge of profiles are src/bundle/profiles.ts.
 */
export * from './approval.js'
export * from './catalog.js'
export * from './change.js'
