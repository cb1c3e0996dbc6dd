import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A new ed25519 key pair without a passphrase at `file` (and `file.pub`). */
export function keygen(file: string): void {
  const run = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", file], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`ssh-keygen failed: ${run.stderr}`);
}

/**
 * sshd on 127.0.0.1:`port` with its config, pid file and host key in `dir`, letting in only the keys of
 * `authorizedKeys`, each through its forced command (as the deploy user on a Droplet). The caller kills it.
 */
export function startSshd(dir: string, port: number, authorizedKeys: string, hostKey = join(dir, "host_key")): ChildProcess {
  if (!existsSync("/usr/sbin/sshd")) throw new Error("sshd is needed for this test (apt-get install -y openssh-server)");
  if (!existsSync(hostKey)) keygen(hostKey);
  const config = join(dir, `sshd-${port}.conf`);
  writeFileSync(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      `PidFile ${join(dir, `sshd-${port}.pid`)}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      // The rendered line's `command=` is the only way in, as for the deploy user on a Droplet.
      "PermitRootLogin forced-commands-only",
      "",
    ].join("\n"),
  );
  mkdirSync("/run/sshd", { recursive: true });
  return spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
}
