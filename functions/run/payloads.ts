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
import { WorkerInputSchema } from '../../lib/contracts/work-range.ts';
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

/**
 * A RunState, or what the Workers map hands a worker of a parallel run (`{run, range}`, its ItemSelector): the
 * run's state with the worker's range, its iterations counted from 0 (the worker's loop has its own bound).
 */
export function parseRunState(input: unknown): RunState {
  const worker = WorkerInputSchema.safeParse(input);
  if (worker.success) {
    const { run, range } = worker.data;
    return parsePayload(RunStateSchema, { ...run, range, iterations: 0 }, 'worker input');
  }
  return parsePayload(RunStateSchema, input, 'run state');
}
