/** The same PM2 the local target runs from node_modules, so local and VM behave alike. */
export const PM2_VERSION: string = (require("pm2/package.json") as { version: string }).version;
