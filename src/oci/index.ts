export * from './content.js'
export * from './errors.js'
export * from './media.js'
export * from './target.js'
