/**
 * The one place a step parses what the state machine hands it: a payload that does not match its schema is
 * an InvalidPayloadError naming every field at fault (a hand-made execution input, a drifted definition).
 */
import type { z } from 'zod';
import {
  type ExecutionInput,
  ExecutionInputSchema,
  type RunState,
  RunStateSchema,
} from '../../lib/contracts/payloads.ts';
import { InvalidPayloadError } from '../core/errors.ts';

function parsePayload<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidPayloadError(
      `invalid ${what}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

export function parseExecutionInput(input: unknown): ExecutionInput {
  return parsePayload(ExecutionInputSchema, input, 'execution input');
}

export function parseRunState(input: unknown): RunState {
  return parsePayload(RunStateSchema, input, 'run state');
}
