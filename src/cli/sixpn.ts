// sixpn — the 6PN host router's command line. Each command's module is imported when it runs:
// `sixpn help`, `status`, `conntrack` and `capture` never load the native addon (only `up` and
// the demo need it; test/cli-no-addon.test.ts).
import { parseArgs } from 'node:util';
import { OPS_COMMANDS, OPS_USAGE, ops } from './ops.ts';

const USAGE = `usage: sixpn <command>

commands:
  up -c HOST_CONFIG [--host H] [--private-key F] [--listen-port N] [--topology F] …
            run this host's 6PN router (one per host)
  status [HOST…] [--json] [--watch[=SECONDS]]
            each running router: topology and store, machines, mesh and gateway peers
            (endpoint, last handshake, bytes), egress, counters that are not zero, metrics URL
  conntrack [HOST]
            the SNAT66 connection table, as conntrack -L prints it
  capture HOST (--machine ID | --peer [ORG/]NAME | --mesh)… -w FILE.pcapng [-c N] [--filter EXPR]
            the decrypted IPv6 packets HOST's router sees for a machine, a peer or the mesh,
            written live as pcapng (tcpdump -r, tshark -r); -w - for stdout; EXPR: tcp, udp,
            icmp6, [src|dst] host ADDR, [src|dst] port N, net ADDR/LEN, and, or, not, ( )
  demo [--keep]
            the live multi-host demo: 3 hosts, 2 orgs, 8 machines on this machine;
            prints what it checked (exit 1 if a check fails); --keep leaves it running
  demo --store etcd [--keep]
            the same on a 3-member etcd cluster in namespaces, every edit through the CLI,
            with etcd members killed and started again
  demo down
            removes the demo --keep left running: its processes, namespaces, interfaces, files
  demo-noise
            the WireGuard protocol core alone, over UDP on loopback
${OPS_USAGE}
  help      this text`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return (await import('./up.ts')).up(rest);
    case 'status':
      return (await import('./status.ts')).status(rest);
    case 'conntrack':
      return (await import('./status.ts')).conntrack(rest);
    case 'capture':
      return (await import('./capture.ts')).capture(rest);
    case 'demo':
      if (rest[0] === 'down' && rest.length === 1) return (await import('./demo-state.ts')).demoDown();
      const { store } = parseArgs({ args: rest, options: { keep: { type: 'boolean' }, store: { type: 'string' } }, allowPositionals: false }).values;
      if (store === 'etcd') return (await import('./demo-etcd.ts')).runEtcdDemo(rest);
      if (store !== undefined) throw new Error(`demo --store ${store}: the demo's stores are etcd and (without --store) a file`);
      return (await import('./demo.ts')).runDemo(rest);
    case 'org': case 'app': case 'host': case 'machine': case 'peer': case 'service': case 'topology':
      return ops(command, rest);
    case 'demo-noise':
      return (await import('./demo-noise.ts')).runNoiseDemo();
    case undefined:
    case 'help':
    case '-h':
    case '--help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`sixpn: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`sixpn: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
