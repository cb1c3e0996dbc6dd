import { invalidProp } from "../service/errors";
import { renderTemplate, safeToken } from "../template";

/** The ACME directory Let's Encrypt issues production certificates from. */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

/**
 * A certificate is taken over from a replaced machine (and served instead of asking the CA) only while it has at
 * least this much validity left: 30 days, when certbot itself would renew.
 */
export const CERTIFICATE_TAKEOVER_MIN_SECONDS = 30 * 24 * 3600;

/** Where HTTPS for a machine's own domain lives on a VM. */
export const MACHINE_TLS = {
  /** HTTP-01 challenge files Nginx's workers serve (outside the app user's 0750 home, which they cannot enter). */
  webroot: "/var/www/nodescale-acme",
  /** Symlink Nginx reads the certificate through: the placeholder, then certbot's live folder. */
  link: "/etc/nodescale/tls/live",
  /** A certificate taken over from the machine this one replaced (Droplets: over the SSH release channel; EC2: from the release bucket, verified). */
  imported: "/etc/nodescale/tls/imported",
  /** A short-lived self-signed pair, so Nginx can start before the CA's certificate exists. */
  placeholder: "/etc/nodescale/tls/placeholder",
  letsencryptDir: "/etc/letsencrypt",
} as const;

export interface CertificateScriptOptions {
  /** The DNS name the certificate is for. */
  readonly domain: string;
  /**
   * ACME directory URL (Let's Encrypt, its staging directory, or a team's own ACME CA).
   * @default LETS_ENCRYPT_DIRECTORY
   */
  readonly acmeServer?: string;
  /**
   * E-mail for the ACME account (the CA's notices); none registers without one.
   * @default - no e-mail
   */
  readonly email?: string;
  /**
   * Base URL the machine probes itself through before asking the CA: its domain over plain HTTP.
   * @default `http://${domain}`
   */
  readonly probeBase?: string;
  /** @default MACHINE_TLS.webroot */
  readonly webroot?: string;
  /** @default MACHINE_TLS.link */
  readonly tlsLink?: string;
  /** @default MACHINE_TLS.placeholder */
  readonly placeholder?: string;
  /** @default MACHINE_TLS.imported */
  readonly imported?: string;
  /** certbot's configuration folder (account, certificates, renewal settings). @default MACHINE_TLS.letsencryptDir */
  readonly letsencryptDir?: string;
  /** @default "/var/lib/letsencrypt" */
  readonly workDir?: string;
  /** @default "/var/log/letsencrypt" */
  readonly logsDir?: string;
  /** Where this script is installed (certbot calls it back after each issuance and renewal). */
  readonly self: string;
  /**
   * Shell lines that check and reload Nginx (when it runs: a certificate may arrive before the first release).
   * @default ["nginx -t -q", "if systemctl is-active --quiet nginx.service; then systemctl reload nginx.service; fi"]
   */
  readonly reloadNginx?: readonly string[];
  /**
   * Shell lines run after each issuance and renewal that keep the certificate for a replacement machine (`LIVE`: its folder).
   * @default - none
   */
  readonly saveState?: readonly string[];
}

/** The script that obtains the certificate once the domain reaches the machine, and installs each renewal. Pure. */
export function renderCertificateScript(options: CertificateScriptOptions): string {
  const domain = safeToken("domain", options.domain);
  const indent = (lines: readonly string[]) => lines.map((l) => `  ${l}\n`).join("");
  return renderTemplate("vm/certificate.sh", {
    domain,
    acmeServer: safeToken("acmeServer", options.acmeServer ?? LETS_ENCRYPT_DIRECTORY),
    account: options.email === undefined ? "--register-unsafely-without-email" : `--email ${safeToken("email", options.email)}`,
    probeBase: safeToken("probeBase", options.probeBase ?? `http://${domain}`),
    webroot: safeToken("webroot", options.webroot ?? MACHINE_TLS.webroot),
    tlsLink: safeToken("tlsLink", options.tlsLink ?? MACHINE_TLS.link),
    placeholder: safeToken("placeholder", options.placeholder ?? MACHINE_TLS.placeholder),
    imported: safeToken("imported", options.imported ?? MACHINE_TLS.imported),
    takeoverMinSeconds: CERTIFICATE_TAKEOVER_MIN_SECONDS,
    letsencryptDir: safeToken("letsencryptDir", options.letsencryptDir ?? MACHINE_TLS.letsencryptDir),
    workDir: safeToken("workDir", options.workDir ?? "/var/lib/letsencrypt"),
    logsDir: safeToken("logsDir", options.logsDir ?? "/var/log/letsencrypt"),
    self: safeToken("self", options.self),
    reloadNginx: indent(
      options.reloadNginx ?? ["nginx -t -q", "if systemctl is-active --quiet nginx.service; then systemctl reload nginx.service; fi"],
    ).trim(),
    saveState: indent(options.saveState ?? []),
  });
}

/** The oneshot service and the timer that run the certificate script. Pure. */
export function renderCertificateUnits(domain: string, script: string): { service: string; timer: string } {
  const values = { domain: safeToken("domain", domain) };
  return {
    service: renderTemplate("systemd/nodescale-certificate.service", { ...values, script: safeToken("script", script) }),
    timer: renderTemplate("systemd/nodescale-certificate.timer", values),
  };
}

/** An ACME directory must be an https URL (the account key and orders travel to it). */
export function assertAcmeServer(owner: string, url: string): void {
  if (!/^https:\/\/[A-Za-z0-9.:-]+(\/[A-Za-z0-9._~/-]*)?$/.test(url))
    invalidProp(owner, "acmeServer", url, "must be an https URL of an ACME directory");
}
