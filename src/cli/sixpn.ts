// sixpn — the 6PN host router's command line.
import { parseArgs } from 'node:util';
import { runNoiseDemo } from './demo-noise.ts';

const USAGE = `usage: sixpn <command>

commands:
  demo      run the live demo and print what it checked (exit 1 if a check fails)
  help      this text`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo': {
      parseArgs({ args: rest, options: {}, allowPositionals: false });
      return runNoiseDemo();
    }
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
