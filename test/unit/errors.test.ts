import {expect} from 'chai'

import {AiboxError, EXIT, InputError, NotFoundError, TransientError, ValidationError, VerificationError, formatProblem, isTransient} from '../../src/errors.js'

describe('errors', () => {
  describe('AiboxError subclasses', () => {
    it('carry the exit code of their class in both places oclif reads', () => {
      const cases: Array<[AiboxError, number]> = [
        [new InputError('X', 'm'), EXIT.USAGE],
        [new VerificationError('X', 'm'), EXIT.VERIFY],
        [new NotFoundError('X', 'm'), EXIT.NOT_FOUND],
        [new TransientError('X', 'm'), EXIT.TRANSIENT],
      ]
      for (const [err, exit] of cases) {
        expect(err.exit).to.equal(exit)
        expect(err.oclif.exit).to.equal(exit)
        expect(err.exitCode).to.equal(exit)
      }
    })
    it('lets an explicit exit override the class default', () => {
      expect(new InputError('X', 'm', {exit: EXIT.GOVERNANCE}).exit).to.equal(EXIT.GOVERNANCE)
    })
  })

  describe('ValidationError', () => {
    it('lists every problem in the message and the details', () => {
      const err = new ValidationError('SCHEMA', 'policy.yaml is invalid', [
        {file: 'policy.yaml', line: 3, col: 5, pointer: '/metadata/name', message: 'is required'},
        {file: 'policy.yaml', line: 9, pointer: '/rules/0/verdict', message: 'must be allow or deny'},
      ])
      expect(err.message).to.contain('policy.yaml:3:5 /metadata/name: is required')
      expect(err.message).to.contain('policy.yaml:9 /rules/0/verdict: must be allow or deny')
      expect((err.details?.problems as unknown[]).length).to.equal(2)
    })
  })

  describe('formatProblem', () => {
    it('prints the root pointer as /', () => {
      expect(formatProblem({file: 'a.json', line: 1, col: 1, pointer: '', message: 'bad'})).to.equal('a.json:1:1 /: bad')
    })
  })

  describe('isTransient', () => {
    it('is true only for transient errors, following causes', () => {
      expect(isTransient(new TransientError('NET', 'down'))).to.equal(true)
      expect(isTransient(new VerificationError('SIG', 'bad'))).to.equal(false)
      expect(isTransient(new Error('x', {cause: new TransientError('NET', 'down')}))).to.equal(true)
      expect(isTransient(new Error('plain'))).to.equal(false)
    })
  })
})
