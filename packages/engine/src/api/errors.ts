import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { InputError } from '@longattn/tensor';

/** CLI flag → the API's field name, for engine errors raised by the shared validation. */
const FIELDS: Record<string, string> = {
  '--q': 'q',
  '--k': 'k',
  '--v': 'v',
  '--layout': 'options.layout',
  '--window': 'options.window',
  '--scale': 'options.scale',
  '--backend': 'options.backend',
  '--block-q': 'options.blockQ',
  '--block-k': 'options.blockK',
  '--allow-nonfinite': 'options.allowNonfinite',
  '--rows': 'options.rows',
  '--top-k': 'options.topK',
  '--sinks-stat': 'options.sinksStat',
  '--local-stat': 'options.localStat',
  '--weights-out': 'options.weightsOut',
  '--map-size': 'options.mapSize',
  '--x': 'x',
  '--x-kv': 'x-kv',
  '--weights': 'weights',
  '--heads': 'options.heads',
  '--kv-heads': 'options.kvHeads',
  '--rope-theta': 'options.ropeTheta',
  '--sinks': 'options.sinks',
  '--global': 'options.global',
  '--stride': 'options.stride',
  '--block-mask': 'mask',
  '--mask-block': 'options.maskBlock',
  '--linear': 'options.linear',
};

/** An error body: `{statusCode, error, message, field?}`; message is one line naming the field. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  field?: string;
}

/** Our temp paths never reach a client: `"/tmp/longattn-upload-x/q.npy"` → `the q part`. */
function scrub(text: string): string {
  return text.replace(
    /"?[^"\s]*longattn-(?:upload|result)-[^/"\s]*\/(q|k|v|x|x-kv|weights|out|lse)\.[a-z]+(?:#[^"\s]*)?"?/g,
    'the $1 part',
  );
}

/** InputError → 400 naming the field; fastify's schema errors → 400; 413/404/409 as thrown; the rest 500 (logged, message kept). */
export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  let body: ErrorBody;
  if (error instanceof InputError) {
    const field = FIELDS[error.argument] ?? error.argument;
    const detail = scrub(error.message.slice(error.argument.length + 2));
    body = { statusCode: 400, error: 'Bad Request', message: `${field}: ${detail}`, field };
  } else {
    const status = (error as FastifyError).statusCode ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    const names: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large' };
    body = {
      statusCode: status,
      error: names[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error'),
      message: scrub(error.message.split('\n')[0]!),
    };
  }
  // Past the cap the rest of the body is never read: close the connection rather than reuse it.
  if (body.statusCode === 413) void reply.header('connection', 'close');
  void reply.code(body.statusCode).send(body);
}

/** An HTTP error to throw from a handler. */
export function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}
