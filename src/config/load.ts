/**
 * Parsing and validating aibox.yaml (schemas/aibox-config.schema.json) with the strict parser of
 * src/bundle: duplicate keys, YAML anchors beyond the limits and non-JSON values are errors,
 * unknown keys get a "did you mean", and every problem is reported at once with
 * `file:line:col /json/pointer`. Semantic checks the schema cannot express (references that do
 * not parse, a file given for a signed tier, both trust and keys) are located the same way.
 *
 * This is the slow half of configuration loading (YAML + ajv); `start-config.ts` memoises its
 * result by the file's digest so that `aibox start` does not pay for it on every run.
 */
import {parseDocument} from '../bundle/parse.js'
import {SCHEMA_BASE, validateDocument} from '../bundle/schema.js'
import {type Problem, ValidationError, errorMessage} from '../errors.js'
import {parseReference} from '../oci/reference.js'
import {type RawStartConfig, classifyTierSource} from './start-config.js'

export const CONFIG_SCHEMA_ID = `${SCHEMA_BASE}aibox-config.schema.json`

/** Parses and validates configuration text; `file` names it in problems. Returns the validated document. */
export function parseConfigText(input: Uint8Array | string, file: string): RawStartConfig {
  const doc = parseDocument(input, file, {format: 'yaml'})
  const problems: Problem[] = [...doc.problems]
  if (problems.length === 0) problems.push(...validateDocument(doc, CONFIG_SCHEMA_ID))
  const at = (pointer: string, message: string): Problem => ({file, ...doc.locate(pointer), pointer, message})
  if (problems.length === 0) {
    const raw = doc.value as unknown as RawStartConfig
    for (const tier of ['org', 'team', 'project'] as const) {
      const v = raw.policy[tier]
      if (v === undefined) continue
      const ref = typeof v === 'string' ? v : v.ref
      const ptr = typeof v === 'string' ? `/policy/${tier}` : `/policy/${tier}/ref`
      const kind = classifyTierSource(ref)
      if (kind === 'file') {
        if (tier !== 'project') problems.push(at(ptr, `the ${tier} tier must be a signed policy reference (registry.example.com/policies/${tier}:stable or oci:DIR:tag), not a file: only the project tier may be a file in the repository`))
        if (typeof v !== 'string' && v.trustRef !== undefined) problems.push(at(`/policy/${tier}/trustRef`, 'trustRef applies to references, not to a project file'))
        continue
      }
      try {
        const parsed = parseReference(ref)
        if (parsed.kind === 'layout' && parsed.format === 'tar') problems.push(at(ptr, 'an oci-archive cannot be a policy source; import it into the cache (aibox import --cache) or extract it to an oci: layout'))
        else if (parsed.tag === undefined && parsed.digest === undefined) problems.push(at(ptr, `${ref} names no tag or digest: add one (e.g. ${ref}:stable)`))
      } catch (err) {
        problems.push(at(ptr, errorMessage(err)))
      }
      if (typeof v !== 'string' && v.trustRef !== undefined) {
        try {
          if (parseReference(v.trustRef).kind !== 'registry') problems.push(at(`/policy/${tier}/trustRef`, 'trustRef must be a registry reference (registry/repository)'))
        } catch (err) {
          problems.push(at(`/policy/${tier}/trustRef`, errorMessage(err)))
        }
      }
    }
    if (raw.trust !== undefined && raw.keys !== undefined) problems.push(at('/keys', "give either 'trust' (a trust policy) or 'keys' (public key files), not both"))
  }
  if (problems.length > 0) {
    throw new ValidationError('CONFIG_INVALID', `${file}: invalid aibox configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})`, problems, {
      suggestions: ['fix the fields shown; README "Starting a sandbox: aibox start" describes every field'],
    })
  }
  return doc.value as unknown as RawStartConfig
}
