/**
 * Child process for the cross-process layout test: pushes COUNT artifacts (each with its own
 * layer) into the layout DIR and tags each `w<ID>-<i>`, as a separate `aibox` process would.
 * Usage: node --import tsx test/helpers/layout-writer-child.ts DIR ID COUNT
 */
import {EMPTY_DESCRIPTOR, EMPTY_JSON, LayoutDirStore, MT, descriptorFor, packManifest} from '../../src/oci/index.js'

const [dir, id, count] = process.argv.slice(2)
const store = await LayoutDirStore.open(dir, {create: true})
await store.push(EMPTY_DESCRIPTOR, EMPTY_JSON)
for (let i = 0; i < Number(count); i++) {
  const layer = Buffer.from(`worker ${id} artifact ${i}`)
  const ld = descriptorFor(MT.policyBundle, layer)
  const m = packManifest({artifactType: MT.policyBundle, layers: [ld]})
  await store.push(ld, layer)
  await store.push(m.descriptor, m.bytes)
  await store.tag(m.descriptor, `w${id}-${i}`)
}
