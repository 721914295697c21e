// The wallet key's passphrase in the page: set, change, unlock (per session), lock, the
// encrypted export, and a copy of the current key offered before an import replaces it.
// The cryptography is in keystore.js; the node stores only the sealed blob (keyguard.rs).

import { KeystoreError, MIN_PASSPHRASE, exportText, hexToBytes, open, seal } from './keystore.js';

const $ = (id) => document.getElementById(id);

/**
 * Wires the key-protection UI. `log(level, text)` writes the activity log; `onChange()` asks
 * the page to redraw the wallet. Returns `{attach(node), importKey(hex), render()}`.
 */
export function setupKeyLock({ log = () => {}, onChange = () => {} } = {}) {
  let node = null;
  /** The passphrase of this session while unlocked (import seals the new key with it). */
  let session = null;
  let busy = false;
  let backupUrl = null;

  const result = (kind, text) => {
    const out = $('keylock-result');
    out.dataset.kind = kind;
    out.textContent = text;
  };
  const errText = (e) => (e instanceof KeystoreError ? e.message : e?.message || String(e));

  function state() {
    if (!node) return null;
    const w = node.wallet();
    return { locked: !!w.locked, protected: !!w.protected };
  }

  function render() {
    const st = state();
    const box = $('keylock');
    if (!st) return;
    const name = st.locked ? 'locked' : st.protected ? 'unlocked' : 'plain';
    box.dataset.state = name;
    const status = $('keylock-status');
    status.dataset.kind = name === 'plain' ? 'warn' : 'ok';
    status.textContent = {
      plain: 'No passphrase: the key is stored unencrypted in this browser, so anyone with access to this browser profile can take it. Set a passphrase to encrypt it.',
      unlocked: 'Protected by a passphrase (stored encrypted) · unlocked for this session.',
      locked: 'Locked: the key is stored encrypted. Enter the passphrase to send, post or export the key. Mining still pays to this address.',
    }[name];
    $('keylock-unlock-form').hidden = name !== 'locked';
    $('keylock-set-form').hidden = name === 'locked';
    $('keylock-current-field').hidden = name !== 'unlocked';
    $('keylock-set-submit').textContent = name === 'unlocked' ? 'Change passphrase' : 'Set passphrase';
    $('keylock-lock').hidden = name !== 'unlocked';
    $('keylock-export').hidden = name === 'plain';
    if (name === 'plain') $('keylock-export-box').hidden = true;
  }

  async function run(what, fn) {
    if (busy || !node) return;
    busy = true;
    for (const b of document.querySelectorAll('#keylock button')) b.disabled = true;
    try {
      await fn();
    } catch (e) {
      result('error', `${what}: ${errText(e)}`);
    } finally {
      busy = false;
      for (const b of document.querySelectorAll('#keylock button')) b.disabled = false;
      render();
      onChange();
    }
  }

  $('keylock-unlock-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('keylock-unlock-pass');
    run('Unlock failed', async () => {
      const seed = await open(node.sealedKey(), input.value);
      node.unlock(seed);
      seed.fill(0);
      session = input.value;
      input.value = '';
      result('ok', 'Wallet unlocked for this session.');
      log('ok', 'Wallet unlocked');
    });
  });

  $('keylock-set-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const st = state();
    const next = $('keylock-new').value;
    const change = st?.protected;
    run(change ? 'Passphrase not changed' : 'Passphrase not set', async () => {
      if (next !== $('keylock-repeat').value) throw new Error('the two new passphrases differ');
      if ([...next].length < MIN_PASSPHRASE) throw new Error(`the passphrase needs at least ${MIN_PASSPHRASE} characters`);
      if (change) await open(node.sealedKey(), $('keylock-current').value); // throws "wrong passphrase"
      const seed = hexToBytes(node.exportKey());
      const blob = await seal(seed, next);
      seed.fill(0);
      await node.protect(blob);
      session = next;
      for (const id of ['keylock-current', 'keylock-new', 'keylock-repeat']) $(id).value = '';
      result('ok', change ? 'Passphrase changed.' : 'Passphrase set: the key is now stored encrypted. You will need the passphrase after every reload.');
      log('ok', change ? 'Wallet passphrase changed' : 'Wallet key encrypted with a passphrase');
    });
  });

  $('keylock-lock').addEventListener('click', () =>
    run('Lock failed', async () => {
      node.lock();
      session = null;
      $('key-box').hidden = true;
      $('key-output').textContent = '';
      result('ok', 'Wallet locked.');
      log('info', 'Wallet locked');
    }),
  );

  $('keylock-export').addEventListener('click', () =>
    run('Export failed', async () => {
      $('keylock-export-out').textContent = exportText(node.sealedKey());
      $('keylock-export-box').hidden = false;
      result('info', 'The encrypted key opens only with its passphrase; keep both, separately.');
    }),
  );

  // Before an import replaces the key, offer a copy of the current one (encrypted if it has a
  // passphrase; the raw key otherwise), next to the confirmation.
  $('import-form').addEventListener('submit', () => {
    const p = $('import-backup');
    if (!node) return;
    let text;
    let kind;
    try {
      const sealed = node.sealedKey();
      if (sealed) {
        text = exportText(sealed);
        kind = '(encrypted with your passphrase)';
      } else {
        text = node.exportKey();
        kind = '(unencrypted: keep it private)';
      }
    } catch (e) {
      p.hidden = true;
      return;
    }
    if (backupUrl) URL.revokeObjectURL(backupUrl);
    backupUrl = URL.createObjectURL(new Blob([`${text}\n`], { type: 'text/plain' }));
    const a = $('import-backup-link');
    a.href = backupUrl;
    a.download = `tabcoin-key-${node.wallet().address.slice(0, 16)}.txt`;
    $('import-backup-kind').textContent = kind;
    p.hidden = false;
  });

  return {
    attach(n) {
      node = n;
      render();
      setInterval(render, 2_000);
    },
    render,
    /** Imports `hex` as the new key, sealed with this session's passphrase if it has one. */
    async importKey(hex) {
      const st = state();
      if (st.protected && !session) throw new Error('unlock the wallet first: the new key will be encrypted with its passphrase');
      const blob = st.protected ? await seal(hexToBytes(hex), session) : undefined;
      const address = await node.importKey(hex, blob);
      render();
      return address;
    },
  };
}
