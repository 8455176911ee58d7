/**
 * A Step Functions client whose HTTP layer answers from a function: the SDK serializes requests and parses
 * answers and errors for real; only the service (which cannot run here) is faked.
 */
import { Readable } from 'node:stream';
import { SFNClient } from '@aws-sdk/client-sfn';

/** An answer: a JSON body (status 200), or an error of the service (status 400, `__type`). */
export type FakeAnswer = Record<string, unknown> | { readonly error: string; readonly message?: string };

export function fakeSfn(respond: (target: string, body: Record<string, unknown>) => FakeAnswer) {
  const requests: Array<{ target: string; body: Record<string, unknown> }> = [];
  const client = new SFNClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: { headers: Record<string, string>; body: string | Uint8Array }) => {
        const target = (request.headers['x-amz-target'] ?? '').replace('AWSStepFunctions.', '');
        const text = typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body);
        const body = JSON.parse(text) as Record<string, unknown>;
        requests.push({ target, body });
        const answer = respond(target, body);
        const failed = typeof answer.error === 'string';
        const payload = failed
          ? {
              __type: `com.amazonaws.states#${answer.error}`,
              message: answer.message ?? String(answer.error),
            }
          : answer;
        return {
          response: {
            statusCode: failed ? 400 : 200,
            headers: { 'content-type': 'application/x-amz-json-1.0' },
            body: Readable.from([Buffer.from(JSON.stringify(payload))]),
          },
        };
      },
    } as never,
  });
  return { client, requests };
}
