// A socket agent for the SNAT66 namespace tests: `ip netns exec NS node nat66-agent.ts`, one JSON
// command per stdin line, one JSON answer per stdout line ({ seq, ok, … } or { seq, error }).
// It plays a machine's or an internet server's sockets with exact control over ports and timing:
//   {op:'udp', addr?, port?, who?}           bind a UDP socket → {id, port}; `who`: answer each
//                                            datagram with "ADDR PORT" of its sender
//   {op:'udpSend', id, to, port, data}       send from socket id
//   {op:'udpRecv', id, timeoutMs}            → {from, port, data} or {timeout: true}
//   {op:'udpDrain', id}                      → {got: [{from, port, data}…]}, and forget them
//   {op:'tcpListen', addr?, port, who?}      listen; accepted connections are kept (ids a1, a2…);
//                                            `who`: write "ADDR PORT\n" to each at once
//   {op:'tcpAccepted', port}                 → {got: [{id, from, port}…]}, every connection so far
//   {op:'tcpConnect', id, to, port, lport?, timeoutMs}  → {lport} or {error: 'ECONNREFUSED' | 'ETIMEDOUT' | …}
//   {op:'tcpRead', id, timeoutMs, until?}    → {data, closed, error}: what arrived (waits for `until`
//                                            text or the timeout)
//   {op:'tcpWrite', id, data} / {op:'tcpClose', id}
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

interface Datagram {
  from: string;
  port: number;
  data: string;
}

interface Conn {
  sock: Socket;
  data: string;
  closed: boolean;
  error: string | null;
  waiters: Array<() => void>;
}

const udp = new Map<number, { sock: UdpSocket; queue: Datagram[]; waiters: Array<() => void> }>();
const conns = new Map<string, Conn>();
const servers = new Map<number, { server: Server; accepted: Array<{ id: string; from: string; port: number }> }>();
let nextId = 1;

function track(id: string, sock: Socket): Conn {
  const c: Conn = { sock, data: '', closed: false, error: null, waiters: [] };
  const wake = (): void => {
    for (const w of c.waiters.splice(0)) w();
  };
  sock.on('data', (d) => {
    c.data += d.toString();
    wake();
  });
  sock.on('error', (e: NodeJS.ErrnoException) => {
    c.error = e.code ?? e.message;
    wake();
  });
  sock.on('close', () => {
    c.closed = true;
    wake();
  });
  conns.set(id, c);
  return c;
}

function wait(waiters: Array<() => void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    waiters.push(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

type Cmd = Record<string, unknown> & { op: string; seq: number };

async function handle(cmd: Cmd): Promise<Record<string, unknown>> {
  switch (cmd.op) {
    case 'udp': {
      const sock = createSocket({ type: 'udp6', ipv6Only: true });
      const entry = { sock, queue: [] as Datagram[], waiters: [] as Array<() => void> };
      const id = nextId++;
      sock.on('message', (msg, rinfo) => {
        if (cmd.who === true) sock.send(`${rinfo.address} ${rinfo.port}`, rinfo.port, rinfo.address);
        entry.queue.push({ from: rinfo.address, port: rinfo.port, data: msg.toString() });
        for (const w of entry.waiters.splice(0)) w();
      });
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind({ address: (cmd.addr as string | undefined) ?? '::', port: (cmd.port as number | undefined) ?? 0 }, resolve);
      });
      udp.set(id, entry);
      return { id, port: sock.address().port };
    }
    case 'udpSend': {
      const u = udp.get(cmd.id as number)!;
      await new Promise<void>((resolve, reject) =>
        u.sock.send(String(cmd.data ?? 'x'), cmd.port as number, cmd.to as string, (err) => (err ? reject(err) : resolve())),
      );
      return {};
    }
    case 'udpRecv': {
      const u = udp.get(cmd.id as number)!;
      if (u.queue.length === 0) await wait(u.waiters, (cmd.timeoutMs as number | undefined) ?? 2000);
      const d = u.queue.shift();
      return d === undefined ? { timeout: true } : { ...d };
    }
    case 'udpDrain': {
      const u = udp.get(cmd.id as number)!;
      return { got: u.queue.splice(0) };
    }
    case 'tcpListen': {
      const port = cmd.port as number;
      const accepted: Array<{ id: string; from: string; port: number }> = [];
      const server = createServer((s) => {
        const id = `a${nextId++}`;
        track(id, s);
        accepted.push({ id, from: s.remoteAddress ?? '', port: s.remotePort ?? 0 });
        if (cmd.who === true) s.write(`${s.remoteAddress} ${s.remotePort}\n`);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: (cmd.addr as string | undefined) ?? '::', port, ipv6Only: true }, resolve);
      });
      servers.set(port, { server, accepted });
      return {};
    }
    case 'tcpAccepted':
      return { got: servers.get(cmd.port as number)?.accepted.slice() ?? [] };
    case 'tcpConnect': {
      const id = cmd.id as string;
      const sock = connect({
        host: cmd.to as string, port: cmd.port as number, family: 6,
        ...(cmd.lport !== undefined ? { localPort: cmd.lport as number } : {}),
      });
      const c = track(id, sock);
      const ms = (cmd.timeoutMs as number | undefined) ?? 3000;
      const result = await new Promise<Record<string, unknown>>((resolve) => {
        const t = setTimeout(() => {
          sock.destroy();
          resolve({ error: 'ETIMEDOUT' });
        }, ms);
        sock.once('connect', () => {
          clearTimeout(t);
          resolve({ lport: sock.localPort });
        });
        sock.once('error', (e: NodeJS.ErrnoException) => {
          clearTimeout(t);
          resolve({ error: e.code ?? e.message });
        });
      });
      if (result.error !== undefined) c.error = result.error as string;
      return result;
    }
    case 'tcpRead': {
      const c = conns.get(cmd.id as string)!;
      const until = cmd.until as string | undefined;
      const end = Date.now() + ((cmd.timeoutMs as number | undefined) ?? 2000);
      while (!c.closed && c.error === null && (until === undefined || !c.data.includes(until)) && Date.now() < end) {
        await wait(c.waiters, end - Date.now());
      }
      const data = c.data;
      c.data = '';
      return { data, closed: c.closed, error: c.error };
    }
    case 'tcpWrite': {
      const c = conns.get(cmd.id as string)!;
      c.sock.write(String(cmd.data));
      return {};
    }
    case 'tcpClose': {
      conns.get(cmd.id as string)?.sock.destroy();
      conns.delete(cmd.id as string);
      return {};
    }
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let cmd: Cmd;
  try {
    cmd = JSON.parse(line) as Cmd;
  } catch {
    return;
  }
  handle(cmd).then(
    (r) => process.stdout.write(JSON.stringify({ seq: cmd.seq, ok: true, ...r }) + '\n'),
    (e: Error) => process.stdout.write(JSON.stringify({ seq: cmd.seq, fail: e.message }) + '\n'),
  );
});
rl.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
