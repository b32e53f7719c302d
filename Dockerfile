# presence-gateway image: docker build -t presence-gateway .
# Two stages on the same base image: `build` has the compilers, the dev dependencies and tsc;
# `runtime` has Node, the production dependencies and the compiled JavaScript only.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 is a native addon: compile it here, against this image's Node headers
# (/usr/local/include/node), so the runtime stage (same base) loads it as is.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local \
    npm_config_build_from_source=true \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-diagnostics-page.mjs ./scripts/
COPY src ./src
# what `npm run build` does: tsc, then the diagnostics page's script, markup and style into dist/
RUN npx tsc -p tsconfig.build.json \
 && node scripts/build-diagnostics-page.mjs \
 && npm prune --omit=dev

FROM ${NODE_IMAGE} AS runtime
# sqlite3: the online backup of the store (sqlite3 gateway.db ".backup copy.db") from inside the container.
RUN apt-get update \
 && apt-get install -y --no-install-recommends sqlite3 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/presence-gateway /var/lib/presence-gateway \
 && chown node:node /var/lib/presence-gateway
WORKDIR /app
# Code and dependencies stay owned by root: the gateway (user node) can read them, not change them.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY config ./config
ENV NODE_ENV=production \
    HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
USER node
# The SQLite store (gateway.db with its -wal and -shm files) and Graph subscription state.
VOLUME ["/var/lib/presence-gateway"]
# SIP UDP/TCP, SIP TLS, SIP WebSocket (ws, wss), the https side (webhook, admin API, diagnostics, metrics).
EXPOSE 5060/udp 5060/tcp 5061/tcp 5066/tcp 7443/tcp 8443/tcp
# Liveness: GET $HEALTHCHECK_URL (the http listener's /healthz) must answer 200. The probe goes to
# the gateway's own loopback listener, so it does not verify the certificate (which is issued for
# the public name, not 127.0.0.1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const u=new URL(process.env.HEALTHCHECK_URL||'http://127.0.0.1:8080/healthz');const q=require(u.protocol==='https:'?'https':'http').get(u,{rejectUnauthorized:false,timeout:4000},(r)=>{r.resume();process.exit(r.statusCode===200?0:1)});q.on('timeout',()=>q.destroy(new Error('timeout')));q.on('error',()=>process.exit(1))"]
# The same start command the tests run (test/helpers/gateway-process.ts, command 'dist').
# SIGTERM (docker stop) is a graceful stop: nothing that ends subscriptions is sent.
CMD ["node", "dist/src/main.js", "--config", "/etc/presence-gateway/gateway.yaml"]
