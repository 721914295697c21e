// The wallet key sealed with a passphrase, with WebCrypto only.
//
// Key derivation: PBKDF2-HMAC-SHA-256, ITERATIONS rounds (OWASP's 2023 figure), a random
// 16-byte salt per sealing. Encryption: AES-256-GCM, a random 12-byte IV, the header as
// additional data (so the iteration count and salt cannot be swapped without detection).
//
// Blob layout (bytes): "TKS1" | iterations u32 big-endian | salt[16] | iv[12] | ciphertext+tag
// The encrypted export is the same blob as text: "tabcoin-sealed-key-v1:" + base64.

export const ITERATIONS = 600_000;
const MAGIC = [0x54, 0x4b, 0x53, 0x31]; // "TKS1"
const HEADER = 4 + 4 + 16 + 12;
const EXPORT_PREFIX = 'tabcoin-sealed-key-v1:';
/** Passphrases shorter than this are refused (a sealed key is only as strong as it). */
export const MIN_PASSPHRASE = 8;

export class KeystoreError extends Error {}

async function deriveKey(passphrase, salt, iterations) {
  const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}

/** Seals `seed` (32 bytes) with `passphrase`; returns the blob. */
export async function seal(seed, passphrase, { iterations = ITERATIONS } = {}) {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new KeystoreError('a wallet key has 32 bytes');
  if (typeof passphrase !== 'string' || [...passphrase].length < MIN_PASSPHRASE) {
    throw new KeystoreError(`the passphrase needs at least ${MIN_PASSPHRASE} characters`);
  }
  const header = new Uint8Array(HEADER);
  header.set(MAGIC, 0);
  new DataView(header.buffer).setUint32(4, iterations);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  header.set(salt, 8);
  header.set(iv, 24);
  const key = await deriveKey(passphrase, salt, iterations);
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: header }, key, seed));
  const blob = new Uint8Array(HEADER + ct.length);
  blob.set(header, 0);
  blob.set(ct, HEADER);
  return blob;
}

/** Opens a blob with `passphrase`; returns the 32-byte seed or throws a KeystoreError. */
export async function open(blob, passphrase) {
  if (!(blob instanceof Uint8Array) || blob.length !== HEADER + 32 + 16 || MAGIC.some((b, i) => blob[i] !== b)) {
    throw new KeystoreError('not a sealed Tabcoin key');
  }
  const iterations = new DataView(blob.buffer, blob.byteOffset).getUint32(4);
  if (iterations < 100_000 || iterations > 10_000_000) throw new KeystoreError('not a sealed Tabcoin key (iteration count out of range)');
  const header = blob.slice(0, HEADER);
  const key = await deriveKey(String(passphrase), blob.slice(8, 24), iterations);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: blob.slice(24, 36), additionalData: header }, key, blob.slice(HEADER)));
  } catch {
    throw new KeystoreError('wrong passphrase');
  }
}

/** The encrypted export: the blob as one line of text. */
export function exportText(blob) {
  let bin = '';
  for (const b of blob) bin += String.fromCharCode(b);
  return EXPORT_PREFIX + btoa(bin);
}

/** Parses an encrypted export; null when `text` is not one. */
export function parseExport(text) {
  const t = String(text).trim();
  if (!t.startsWith(EXPORT_PREFIX)) return null;
  try {
    const bin = atob(t.slice(EXPORT_PREFIX.length));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export const hexToBytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (b) => parseInt(b, 16));
export const bytesToHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
