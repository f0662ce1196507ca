// A small QEMU VM running Debian's packaged kernel, for tests against the kernel's own
// WireGuard (this machine's kernel has no wireguard module). scripts/kernel-vm.sh builds the
// kernel + initramfs once per machine (cached under /var/cache/sixpn-test-vm); here a VM is
// booted inside a test namespace with a virtio NIC on a tap device there, and driven over its
// serial console: one shell command per line, answered by "@@RC <id> <exit status>".
// TCG only: KVM does not work on this machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, sh, type Lab } from './netns.ts';

export const QEMU = '/usr/bin/qemu-system-x86_64';
const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/kernel-vm.sh', import.meta.url));

/** Why a kernel-VM test cannot run here, or null when it can. */
export function vmPrerequisiteMissing(tools: string[] = []): string | null {
  if (!isRoot()) return 'needs root (network namespaces, tap devices)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is absent (no TUN/TAP support)';
  for (const p of [QEMU, '/usr/bin/busybox', '/usr/bin/cpio', '/usr/bin/apt-get', '/usr/bin/flock', ...tools]) {
    if (!existsSync(p)) return `${p} is missing (scripts/setup.sh installs qemu-system-x86, busybox-static, cpio)`;
  }
  return null;
}

export interface VmImage {
  dir: string;
  kernel: string;
  initrd: string;
  release: string;
}

let imagePromise: Promise<VmImage> | null = null;

/** Builds (or finds in the cache) the VM's kernel and initramfs. */
export function vmImage(): Promise<VmImage> {
  imagePromise ??= (async () => {
    const out = await sh('/bin/bash', [BUILD_SCRIPT], { timeout: 600_000 });
    const dir = out.trim().split('\n').pop()!;
    return {
      dir,
      kernel: join(dir, 'vmlinuz'),
      initrd: join(dir, 'initrd.gz'),
      release: readFileSync(join(dir, 'kernel-release'), 'utf8').trim(),
    };
  })();
  return imagePromise;
}

export interface VmResult {
  code: number;
  out: string;
}

let macCounter = 0;

export class KernelVm {
  readonly proc: ChildProcess;
  readonly tap: string;
  /** Everything the console printed (CR stripped). */
  transcript = '';
  bootMs = 0;
  private consumed = 0;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private waiter: { re: RegExp; resolve: (m: RegExpExecArray) => void; reject: (e: Error) => void } | null = null;
  private exited: Error | null = null;

  private constructor(proc: ChildProcess, tap: string) {
    this.proc = proc;
    this.tap = tap;
    const onData = (chunk: Buffer) => {
      this.transcript += chunk.toString('latin1').replace(/\r/g, '');
      this.check();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code, signal) => {
      this.exited = new Error(`qemu exited (${signal ?? code}); console tail:\n${this.tail()}`);
      this.waiter?.reject(this.exited);
      this.waiter = null;
    });
  }

  /**
   * Creates a tap device in `ns` (addresses go on it afterwards) and boots the VM with a
   * virtio-net NIC on it; resolves once /init reports ready (eth0 up, modules loaded).
   */
  static async boot(lab: Lab, ns: string, image: VmImage, opts: { bootTimeoutMs?: number; memMb?: number } = {}): Promise<KernelVm> {
    const tap = lab.name('tap');
    await sh('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await sh('ip', ['-n', ns, 'link', 'set', tap, 'up']);
    const n = (process.pid * 16 + macCounter++) & 0xffffff;
    const mac = `52:54:00:${[n >> 16, (n >> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    // prettier-ignore
    const args = [
      'netns', 'exec', ns, QEMU,
      '-accel', 'tcg', '-cpu', 'max', '-m', String(opts.memMb ?? 256), '-smp', '1',
      '-nodefaults', '-no-user-config', '-display', 'none', '-monitor', 'none', '-serial', 'stdio',
      '-kernel', image.kernel, '-initrd', image.initrd,
      '-append', 'console=ttyS0 quiet panic=-1',
      '-no-reboot',
      '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=`,
    ];
    const started = Date.now();
    const proc = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    lab.children.push(proc);
    const vm = new KernelVm(proc, tap);
    const m = await vm.expect(/@@(READY|MODFAIL|NOETH0)([^\n]*)\n/, opts.bootTimeoutMs ?? 150_000, 'boot');
    if (m[1] !== 'READY') throw new Error(`VM boot: @@${m[1]}${m[2]}; console tail:\n${vm.tail()}`);
    vm.bootMs = Date.now() - started;
    return vm;
  }

  /** Runs a shell command (one line) in the VM; resolves with its exit status and output. */
  status(cmd: string, timeoutMs = 60_000): Promise<VmResult> {
    if (/[\n\r]/.test(cmd)) throw new Error('VM commands are single lines');
    const run = async (): Promise<VmResult> => {
      const id = this.nextId++;
      const start = this.consumed;
      this.proc.stdin!.write(`${id} ${cmd}\n`);
      const m = await this.expect(new RegExp(`@@RC ${id} (\\d+)\\n`), timeoutMs, cmd);
      return { code: Number(m[1]), out: this.transcript.slice(start, m.index) };
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Runs a command in the VM; rejects unless it exits 0. */
  async run(cmd: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.status(cmd, timeoutMs);
    if (r.code !== 0) throw new Error(`VM: \`${cmd}\` exited ${r.code}:\n${r.out}`);
    return r.out;
  }

  tail(chars = 4000): string {
    return this.transcript.slice(-chars);
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }

  private expect(re: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`VM: no answer to \`${what}\` within ${timeoutMs} ms; console tail:\n${this.tail()}`));
      }, timeoutMs);
      this.waiter = {
        re,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.check();
    });
  }

  private check(): void {
    if (!this.waiter) return;
    const rest = this.transcript.slice(this.consumed);
    const m = this.waiter.re.exec(rest);
    if (!m) return;
    m.index += this.consumed;
    this.consumed = m.index + m[0].length;
    const w = this.waiter;
    this.waiter = null;
    w.resolve(m);
  }
}
