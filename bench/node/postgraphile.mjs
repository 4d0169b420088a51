// PostGraphile 5 over dsar's analytics database, for scenario 5 of the benchmarks.
//   DATABASE_URL=postgresql://... PORT=5678 node postgraphile.mjs
// Amber preset (the recommended one), schema `public`, no GraphiQL, no explain, no watch: the
// production shape. Listens on 127.0.0.1 only.
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: 10 },
    }),
  ],
  grafserv: { graphiql: false, watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
await serv.addTo(server);
server.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 5678) });
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    server.close();
    await pgl.release();
    process.exit(0);
  });
}
