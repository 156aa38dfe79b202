import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { errorCode, register, startGateway, startUpstream, unique } from './helpers.js';

const LIMIT = 1024;

/** A gateway with a 1 KiB body limit in front of an upstream that acts like a JSON service. */
async function setup() {
  const service = unique('posts');
  const upstream = await startUpstream((request, response) => {
    // Like a real service: the upstream, not the gateway, decides a JSON body is malformed.
    if (request.headers['content-type'] === 'application/json') {
      try {
        JSON.parse(request.body.toString('utf8'));
      } catch {
        response.writeHead(400, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'invalid_json', message: 'the request body is not valid JSON' } }));
        return;
      }
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ bytes: request.body.length }));
  });
  const gw = await startGateway({ routes: [{ methods: ['POST', 'PUT'], path: '/v1/posts', service, auth: 'none' }], bodyLimitBytes: LIMIT });
  await register(gw.registry, service, upstream.url);
  return { gw, upstream };
}

describe('gateway request bodies', () => {
  it('refuses a body over the limit with 413 payload_too_large and never forwards it', async () => {
    const { gw, upstream } = await setup();

    const declared = await fetch(`${gw.url}/v1/posts`, {
      method: 'POST',
      body: JSON.stringify({ text: 'x'.repeat(LIMIT * 2) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(declared.status).toBe(413);
    expect(await errorCode(declared)).toBe('payload_too_large');

    // Without Content-Length the limit is enforced on the bytes as they arrive.
    const chunks = [randomBytes(LIMIT), randomBytes(LIMIT)];
    const streamed = await fetch(`${gw.url}/v1/posts`, {
      method: 'PUT',
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = chunks.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(next);
        },
      }),
      duplex: 'half',
      headers: { 'content-type': 'application/octet-stream' },
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await errorCode(streamed)).toBe('payload_too_large');

    expect(upstream.received).toHaveLength(0);
  });

  it('forwards bodies up to the limit byte for byte, whatever their content type', async () => {
    const { gw, upstream } = await setup();
    const bodies: Array<[string, Buffer]> = [
      ['application/octet-stream', randomBytes(LIMIT)],
      ['text/plain; charset=utf-8', Buffer.from('plain text, not JSON: ünïcödé\r\n', 'utf8')],
      ['application/x-www-form-urlencoded', Buffer.from('handle=ada&bio=a%20b', 'utf8')],
      ['application/json', Buffer.from('{ "text" : "spaces and order kept",\n  "a": 1 }', 'utf8')],
      ['image/png', randomBytes(300)],
    ];

    for (const [contentType, body] of bodies) {
      const res = await fetch(`${gw.url}/v1/posts`, { method: 'POST', body, headers: { 'content-type': contentType } });
      expect(res.status, contentType).toBe(200);
      expect(await res.json()).toEqual({ bytes: body.length });
    }

    expect(upstream.received).toHaveLength(bodies.length);
    bodies.forEach(([contentType, body], i) => {
      const received = upstream.received[i];
      expect(received?.headers['content-type']).toBe(contentType);
      expect(received?.headers['content-length']).toBe(String(body.length));
      expect(received?.body.equals(body), contentType).toBe(true);
    });
  });

  it('passes malformed JSON to the service unchanged and returns its invalid_json answer', async () => {
    const { gw, upstream } = await setup();
    const malformed = '{"text": "unterminated';

    const res = await fetch(`${gw.url}/v1/posts`, { method: 'POST', body: malformed, headers: { 'content-type': 'application/json' } });

    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('invalid_json');
    expect(upstream.received.map((r) => r.body.toString('utf8'))).toEqual([malformed]);
  });

  it('forwards a body sent with Expect: 100-continue', async () => {
    const { gw, upstream } = await setup();
    const body = Buffer.from(JSON.stringify({ text: 'sent after 100 Continue' }));
    const { hostname, port } = new URL(gw.url);

    // curl sends this header for bodies over 1 KiB; fetch never does, hence node:http.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: hostname, port, method: 'POST', path: '/v1/posts', headers: { expect: '100-continue', 'content-type': 'application/json', 'content-length': body.length } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.on('continue', () => req.end(body));
    });

    expect(status).toBe(200);
    expect(upstream.received[0]?.body.equals(body)).toBe(true);
    expect(upstream.received[0]?.headers.expect).toBeUndefined();
  });
});
