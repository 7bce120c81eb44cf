// Prints a request-identity JWT (the `x-restate-jwt-v1` header Restate sends with
// `x-restate-signature-scheme: v1`) for a request to PATH, signed with the PKCS#8 PEM private key
// in $RESTATE_TEST_SIGNING_KEY: EdDSA, audience PATH, valid from a minute ago for an hour.
//   node build/sign.js /discover
import * as crypto from "node:crypto";

const path = process.argv[2];
const pem = process.env.RESTATE_TEST_SIGNING_KEY;
if (!path || !pem) {
  console.error("usage: RESTATE_TEST_SIGNING_KEY=<pem> sign.js PATH");
  process.exit(2);
}
const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const signed = `${encode({ typ: "JWT", alg: "EdDSA" })}.${encode({ aud: path, iat: now, nbf: now - 60, exp: now + 3600 })}`;
const signature = crypto.sign(null, Buffer.from(signed), crypto.createPrivateKey(pem)).toString("base64url");
console.log(`${signed}.${signature}`);
