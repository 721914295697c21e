// A TCP forwarder on 127.0.0.1 that a test controls: it stands in front of one relay, whose
// --public-url names the proxy, so every node reaches that relay through it (a relay signs
// handshakes for its own URL only) and a test can partition the network at its proxies.
//
// Each proxy belongs to a side ('A' or 'B'). Each connection through it is given a side too:
// plain HTTP (the page, API requests) is the proxy's own; a WebSocket from a page is the side of
// the page's origin (`Origin` header); a relay's WebSocket (no `Origin`) is the side named by
// the first frame it sends — its `hello`, which holds its own signed URL — via `sideOfHello`.
// While the partition is on, connections across sides are dropped, and new ones are held
// (nothing forwarded) when their side is known before anything reached the relay (pages, and
// relays dialing the side-A proxy) or closed once their `hello` shows it. `heal()` forwards
// what was held, so a dial in flight at the heal completes at once. Nothing but the one target
// on loopback is ever dialed.

import net from 'node:net';

const HEAD_LIMIT = 16 * 1024;

/** The unmasked payload of the first WebSocket frame in `buf`, or null while incomplete. */
function firstFrame(buf) {
  if (buf.length < 2) return null;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const masked = (buf[1] & 0x80) !== 0;
  const mask = masked ? buf.subarray(off, off + 4) : null;
  if (masked) off += 4;
  if (buf.length < off + len) return null;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  return payload;
}

/**
 * Forwards 127.0.0.1:<port> to 127.0.0.1:`targetPort` (from `sourceNet`.N, e.g. '127.0.1', if
 * given). `side` is this proxy's side;
 * `sideOfOrigin(origin)` and `sideOfHello(payload)` classify connections (see above).
 * Returns { port, url, wsUrl, cut(), heal(), close(), stats }.
 */
export async function startProxy(targetPort, { name = 'proxy', side = 'A', sideOfOrigin = () => side, sideOfHello = () => null, sourceNet = null } = {}) {
  let nextSource = 0;
  const live = new Set(); // { client, upstream, side }
  const held = new Set(); // { client, head }
  const stats = { accepted: 0, piped: 0, dropped: 0, held: 0, refused: 0 };
  let isCut = false;

  function drop(e) {
    live.delete(e);
    e.client.destroy();
    e.upstream.destroy();
  }

  /** Pipes `client` to the relay; with `connSide` null, reads the first frame to learn it. */
  function pipe(client, head, connSide) {
    // Each connection from its own address (`sourceNet`.1–250): the relay sees distinct peers,
    // as it would without the proxy, and a ban hits one of them, not everyone behind the proxy.
    const localAddress = sourceNet ? `${sourceNet}.${(nextSource++ % 250) + 1}` : undefined;
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1', localAddress });
    const entry = { client, upstream, side: connSide };
    live.add(entry);
    stats.piped++;
    const end = () => drop(entry);
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    upstream.write(head);
    upstream.pipe(client);
    if (connSide !== null) {
      client.pipe(upstream);
      client.resume();
      return;
    }
    let frame = Buffer.alloc(0);
    const onData = (chunk) => {
      upstream.write(chunk);
      frame = Buffer.concat([frame, chunk]);
      const payload = firstFrame(frame);
      if (!payload && frame.length < HEAD_LIMIT) return;
      client.off('data', onData);
      entry.side = (payload && sideOfHello(payload)) || side;
      if (isCut && entry.side !== side) {
        stats.refused++;
        drop(entry);
        return;
      }
      client.pipe(upstream);
    };
    client.on('data', onData);
    client.resume();
  }

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    stats.accepted++;
    client.setNoDelay(true);
    let head = Buffer.alloc(0);
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk]);
      if (!head.includes('\r\n\r\n') && head.length < HEAD_LIMIT) return;
      client.off('data', onHead);
      client.pause();
      const text = head.toString('latin1');
      const lines = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
      const header = (n) => lines.find((l) => l.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim() ?? null;
      const upgrade = /websocket/i.test(header('upgrade') ?? '');
      const origin = header('origin');
      // Known now: plain HTTP, a page's WebSocket. A relay's: from its hello, unless only one
      // side can be dialing this proxy (sideOfHello says so by returning a side for null).
      let connSide = !upgrade ? side : origin ? sideOfOrigin(origin) : sideOfHello(null);
      if (isCut && connSide !== null && connSide !== side) {
        stats.held++;
        const h = { client, head, side: connSide };
        held.add(h);
        const forget = () => held.delete(h);
        client.on('error', forget);
        client.on('close', forget);
        return;
      }
      pipe(client, head, connSide);
    };
    client.on('data', onHead);
    client.on('error', () => client.destroy());
    client.resume();
  });
  await new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    name,
    side,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    stats,
    /** Drops every connection from the other side and holds or refuses new ones until `heal()`. */
    cut() {
      isCut = true;
      for (const e of [...live]) {
        if (e.side !== null && e.side !== side) {
          stats.dropped++;
          drop(e);
        }
      }
    },
    /** Forwards the held connections (and every new one) again. */
    heal() {
      isCut = false;
      for (const h of held) {
        if (!h.client.destroyed) pipe(h.client, h.head, h.side);
      }
      held.clear();
    },
    async close() {
      for (const e of [...live]) drop(e);
      for (const { client } of held) client.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
