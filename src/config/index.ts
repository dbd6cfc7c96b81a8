export * from './paths.js'
export * from './start-config.js'
export {CONFIG_SCHEMA_ID, parseConfigText} from './load.js'
