/** Flags shared by the `aibox audit` commands. */
import {Flags} from '@oclif/core'

export const auditLogFlag = Flags.string({
  summary: 'audit log file',
  description:
    'Default: $AIBOX_AUDIT_LOG, else $XDG_STATE_HOME/aibox/audit.jsonl, else ~/.local/state/aibox/audit.jsonl. Its anchor is FILE.head.',
  helpValue: 'FILE',
})

export const auditFilterFlags = {
  since: Flags.string({
    summary: 'only entries at or after this time: a duration back from now (30m, 24h, 7d, 2w) or an RFC 3339 date (2025-06-01)',
    helpValue: 'WHEN',
  }),
  event: Flags.string({
    summary: 'only this event, or a prefix such as policy.* (repeatable)',
    multiple: true,
    helpValue: 'NAME',
  }),
  ref: Flags.string({summary: "only entries about this policy reference (including a loaded stack's tier references)", helpValue: 'REF'}),
}
