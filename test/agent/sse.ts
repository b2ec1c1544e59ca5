/** Reads an OpenAI-style SSE response: every `data:` event, and a promise for the first one. */
export interface SseRead {
  first: Promise<unknown>;
  done: Promise<{ events: unknown[]; sawDone: boolean }>;
}

export function readSse(res: Response): SseRead {
  let onFirst: (v: unknown) => void = () => {};
  const first = new Promise<unknown>((r) => (onFirst = r));
  const done = (async () => {
    const events: unknown[] = [];
    let sawDone = false;
    let buf = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!block.startsWith('data: ')) continue;
        const data = block.slice(6);
        if (data === '[DONE]') sawDone = true;
        else {
          const ev = JSON.parse(data) as unknown;
          events.push(ev);
          if (events.length === 1) onFirst(ev);
        }
      }
    }
    onFirst(undefined);
    return { events, sawDone };
  })();
  return { first, done };
}
