// The client and server of `npm run bench:services` (bench/services.ts), run inside machine
// namespaces: no ncat, no iperf3.
//   server PORT_CPS PORT_BULK      answers each connection on PORT_CPS with one byte and closes;
//                                  reads and drops everything on PORT_BULK
//   cps ADDR PORT SECONDS CONC     opens connections (CONC at a time) for SECONDS, each read to
//                                  its end; prints {"cps": …, "errors": …}
//   bulk ADDR PORT SECONDS         writes 64 KB chunks for SECONDS; prints {"gbps": …}
import { connect, createServer } from 'node:net';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'server') {
  const [cpsPort, bulkPort] = args.map(Number);
  createServer((s) => {
    s.on('error', () => {});
    s.end('x');
  }).listen(cpsPort, '::');
  createServer((s) => {
    s.on('error', () => {});
    s.on('data', () => {});
  }).listen(bulkPort, '::');
} else if (mode === 'cps') {
  const [addr, portText, secondsText, concText] = args;
  const port = Number(portText);
  const end = performance.now() + Number(secondsText) * 1000;
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = connect({ host: addr, port });
    s.on('data', () => {});
    s.on('end', () => {
      done++;
      s.destroy();
      resolve();
    });
    s.on('error', () => {
      errors++;
      resolve();
    });
  });
  const worker = async () => {
    while (performance.now() < end) await one();
  };
  await Promise.all(Array.from({ length: Number(concText) }, worker));
  console.log(JSON.stringify({ cps: done / ((performance.now() - t0) / 1000), errors }));
} else if (mode === 'bulk') {
  const [addr, portText, secondsText] = args;
  const chunk = Buffer.alloc(65536, 0x61);
  const s = connect({ host: addr, port: Number(portText) });
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    s.on('error', reject);
    s.on('connect', () => {
      const t0 = performance.now();
      const end = t0 + Number(secondsText) * 1000;
      const pump = () => {
        while (performance.now() < end) {
          bytes += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end(() => {
          console.log(JSON.stringify({ gbps: (bytes * 8) / ((performance.now() - t0) / 1000) / 1e9 }));
          resolve();
        });
      };
      pump();
    });
  });
  s.destroy();
} else {
  console.error('usage: services-peer.ts server P1 P2 | cps ADDR PORT SECONDS CONC | bulk ADDR PORT SECONDS');
  process.exit(2);
}
