import {expect} from 'chai'
import fs from 'node:fs'
import path from 'node:path'

import {ROOT, aibox} from '../helpers/cli.js'

interface ManifestCommand {
  id: string
  summary?: string
  description?: string
  examples?: Array<string | {command: string}>
  pluginName?: string
}

/** Our commands, from the manifest `make build` writes (oclif.manifest.json). */
function ourCommands(): ManifestCommand[] {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, ManifestCommand>}
  return Object.values(manifest.commands)
}

/** Command ids from the source files: commands/audit/report.ts → audit:report. */
function sourceCommandIds(dir = path.join(ROOT, 'commands'), prefix = ''): string[] {
  return fs.readdirSync(dir, {withFileTypes: true}).flatMap((e) => {
    if (e.isDirectory()) return sourceCommandIds(path.join(dir, e.name), `${prefix}${e.name}:`)
    return e.name.endsWith('.ts') ? [`${prefix}${e.name.slice(0, -3)}`] : []
  })
}

const exampleText = (x: string | {command: string}) => (typeof x === 'string' ? x : x.command)

/** An example as oclif prints it: the templates filled in (`<%= command.id %>` with spaces, the topic separator). */
const rendered = (c: ManifestCommand, x: string | {command: string}) =>
  exampleText(x).replaceAll('<%= config.bin %>', 'aibox').replaceAll('<%= command.id %>', c.id.replaceAll(':', ' '))

describe('every command', () => {
  const commands = ourCommands()

  it('is in the manifest (one per file under commands/)', () => {
    expect(commands.map((c) => c.id).sort()).to.deep.equal(sourceCommandIds().sort())
  })

  it('has a summary, a description and at least one example that runs that command', () => {
    const problems: string[] = []
    for (const c of commands) {
      if (!c.summary?.trim()) problems.push(`${c.id}: no summary`)
      if (!c.description?.trim()) problems.push(`${c.id}: no description`)
      if (!c.examples?.length) problems.push(`${c.id}: no examples`)
      for (const x of c.examples ?? []) {
        // After any environment assignments or a pipe, the example runs this very command.
        const words = `aibox ${c.id.replaceAll(':', ' ')}`
        if (!new RegExp(`(^|[|;&] *|^[A-Z_]+=\\S* )${words.replaceAll(' ', ' +')}( |$)`).test(rendered(c, x))) problems.push(`${c.id}: example "${rendered(c, x)}" does not run "${words}"`)
      }
    }
    expect(problems).to.deep.equal([])
  })

  it('has a --json output schema in schemas/output/', () => {
    const missing = commands.map((c) => `${c.id.replaceAll(':', '-')}.json`).filter((f) => !fs.existsSync(path.join(ROOT, 'schemas', 'output', f)))
    expect(missing).to.deep.equal([])
  })

  it('prints its summary and examples with --help', async function () {
    this.timeout(240_000)
    const queue = [...commands]
    const problems: string[] = []
    // Two at a time: the machine is shared.
    await Promise.all(
      [0, 1].map(async () => {
        for (let c = queue.shift(); c; c = queue.shift()) {
          const r = await aibox([...c.id.split(':'), '--help'])
          const first = rendered(c, c.examples![0]!)
          if (r.code !== 0) problems.push(`${c.id} --help exited ${r.code}: ${r.stderr}`)
          else if (!r.stdout.includes('EXAMPLES') || !r.stdout.includes(first)) problems.push(`${c.id} --help lacks its examples (${first})`)
          else if (!r.stdout.includes(c.summary!.split('\n')[0]!)) problems.push(`${c.id} --help lacks its summary`)
        }
      }),
    )
    expect(problems).to.deep.equal([])
  })
})
