// Runs the graphql-http package's server audits (GraphQL over HTTP conformance) against a live
// dsar: `node audit.mjs URL` with the bearer token in DSAR_AUDIT_TOKEN. Prints one JSON line:
// every audit's id, name, status (ok, notice, warn, error) and, when not ok, the reason and the
// response's status and body.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const token = process.env.DSAR_AUDIT_TOKEN;
if (!url || !token) {
  console.error('usage: DSAR_AUDIT_TOKEN=... node audit.mjs URL');
  process.exit(2);
}

// Every audit request carries the caller's token, as a real client's would.
const fetchFn = (input, init = {}) =>
  fetch(input, {
    ...init,
    headers: { ...(init.headers || {}), authorization: `Bearer ${token}` },
  });

// One audit at a time (auditServer runs them all at once): a shared, busy test machine then
// judges the protocol, not how many requests one process takes at once.
const out = [];
for (const { fn } of serverAudits({ url, fetchFn })) {
  const r = await fn();
  const item = { id: r.id, name: r.name, status: r.status };
  if (r.status !== 'ok') {
    item.reason = r.reason;
    item.responseStatus = r.response.status;
    try {
      item.responseBody = (await r.response.text()).slice(0, 500);
    } catch {
      item.responseBody = '(read by the audit)';
    }
  }
  out.push(item);
}
console.log(JSON.stringify(out));
