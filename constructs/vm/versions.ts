/** Node.js LTS installed on VMs, with the SHA-256 of its linux-x64 tarball as published in SHASUMS256.txt. */
export const NODE_VERSION = "22.12.0";
export const NODE_LINUX_X64_SHA256 = "22982235e1b71fa8850f82edd09cdae7e3f32df1764a9ec298c72d25ef2c164f";
/** The same PM2 the local target runs from node_modules, so local and VM behave alike. */
export const PM2_VERSION: string = (require("pm2/package.json") as { version: string }).version;
