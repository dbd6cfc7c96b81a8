/** src/report: the audit report (`aibox audit report --html`), a self-contained HTML page built from the audit log. */
export * from './html.js'
export * from './model.js'
export * from './report.js'
