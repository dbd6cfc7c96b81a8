export * from './errors.js'
export * from './target.js'
