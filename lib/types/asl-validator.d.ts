/** asl-validator 4 ships no types; this covers the one function it exports (CommonJS `module.exports`). */
declare module 'asl-validator' {
  namespace aslValidator {
    interface ValidationOptions {
      /** Check JSONPath syntax in InputPath/OutputPath/ResultPath/Parameters. */
      readonly checkPaths: boolean;
      /** Check that task `Resource` values are ARNs. */
      readonly checkArn: boolean;
    }
    interface StateMachineError {
      readonly 'Error code': string;
      readonly Message: string;
      readonly schemaError?: { readonly instancePath: string; readonly schemaPath: string };
    }
    interface ValidationResult {
      readonly isValid: boolean;
      readonly errors: readonly StateMachineError[];
      errorsText(separator?: string): string;
    }
  }
  /** Validates an ASL definition. Note: it mutates the definition (sets `QueryLanguage` on states). */
  function aslValidator(
    definition: object,
    options?: aslValidator.ValidationOptions,
  ): aslValidator.ValidationResult;
  export = aslValidator;
}
