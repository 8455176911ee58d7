// Test workers use the same polyfill as the local runner (aws-local-stepfunctions needs Promise.withResolvers).
import '../../functions/local-runner/polyfills.ts';
