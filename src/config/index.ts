export * from './paths.js'
