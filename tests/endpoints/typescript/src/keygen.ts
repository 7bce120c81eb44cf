// Prints a fresh Ed25519 request-identity key pair as JSON: {"publicKey": "publickeyv1_<base58>",
// "privateKeyPem": "..."}; the public key is what withIdentityV1 (and restate-sdk's identity_keys) take.
import * as crypto from "node:crypto";

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function base58(bytes: Uint8Array): string {
  let value = BigInt("0x" + (Buffer.from(bytes).toString("hex") || "0"));
  let out = "";
  while (value > 0n) {
    out = ALPHABET[Number(value % 58n)] + out;
    value /= 58n;
  }
  for (const byte of bytes) {
    if (byte !== 0) break;
    out = "1" + out;
  }
  return out;
}

const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
const raw = Buffer.from(publicKey.export({ format: "jwk" }).x as string, "base64url");
console.log(JSON.stringify({
  publicKey: "publickeyv1_" + base58(raw),
  privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
}));
