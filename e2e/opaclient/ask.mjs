// ask.mjs: Styra's OPA SDK (@styra/opa) asking pdp, as its users write it.
// Usage: node ask.mjs <pdp URL> <cases JSON>, where cases is an array of
// {"name", "input"}. Prints one JSON object: for each case, the allow
// result, the decision result, and a batch of every input (evaluateBatch,
// which falls back to one request per input on a server without OPA's
// batch API).
import { OPAClient } from "@styra/opa";

const [url, casesJSON] = process.argv.slice(2);
const cases = JSON.parse(casesJSON);
const opa = new OPAClient(url);

const out = { allow: {}, decision: {}, reasons: {}, batch: {}, noInput: null };
for (const c of cases) {
  out.allow[c.name] = await opa.evaluate("metalsoft/authz/allow", c.input);
  const d = await opa.evaluate("metalsoft/authz/decision", c.input);
  out.decision[c.name] = d.allow;
  out.reasons[c.name] = d.reasons;
}
const inputs = Object.fromEntries(cases.map((c) => [c.name, c.input]));
out.batch = await opa.evaluateBatch("metalsoft/authz/allow", inputs, { fallback: true });
// No input: OPA's answer is no result, which the SDK gives as undefined.
out.noInput = (await opa.evaluate("metalsoft/authz/allow")) ?? "undefined";
console.log(JSON.stringify(out));
