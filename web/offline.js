// The page as an installable app that outlives the relay that served it: registers the
// service worker (sw.js), shows which version of the page runs and whether it is kept for
// offline use, and offers a new version when one has been installed in the background.
//
// The update is never half-applied: the new version waits in its own cache until the user
// accepts it here; then the worker switches and every page of the origin reloads.

const UPDATE_CHECK_MS = 30 * 60_000;

/**
 * Starts the offline support. `log(level, text)` writes to the page's activity log. Returns
 * `{ready, checkForUpdate, applyUpdate, state}`: `ready` resolves to the running version once a
 * service worker controls the page (or to null where there is none).
 */
export function setupOffline({ log = () => {} } = {}) {
  const state = { version: null, controlled: false, updateReady: false, unsupported: false, error: null };
  const banner = document.getElementById('update-banner');
  const applyBtn = document.getElementById('update-apply');
  const versionEl = document.getElementById('app-version');
  let registration = null;
  let accepted = false;

  const render = () => {
    if (versionEl) {
      let text;
      if (state.unsupported) text = 'not kept for offline use (no service worker here)';
      else if (state.error) text = `not kept for offline use: ${state.error}`;
      else if (state.version) text = `version ${state.version} · kept for offline use`;
      else text = 'preparing the offline copy…';
      versionEl.textContent = text;
      versionEl.dataset.version = state.version || '';
    }
    if (banner) banner.hidden = !state.updateReady;
  };

  const askVersion = (worker) =>
    new Promise((resolve) => {
      const ch = new MessageChannel();
      const t = setTimeout(() => resolve(null), 5_000);
      ch.port1.onmessage = (e) => {
        clearTimeout(t);
        resolve(e.data?.version ?? null);
      };
      worker.postMessage({ type: 'version' }, [ch.port2]);
    });

  const offerUpdate = async (worker) => {
    if (!navigator.serviceWorker.controller) return; // the first install: nothing older runs
    const next = await askVersion(worker);
    if (next && next === state.version) return;
    state.updateReady = true;
    const label = document.getElementById('update-version');
    if (label) label.textContent = next || 'new';
    log('info', `A new version of the page (${next || 'unknown'}) is ready; reload to use it`);
    render();
  };

  const watchInstalling = (worker) => {
    if (!worker) return;
    worker.addEventListener('statechange', () => {
      if (worker.state === 'installed') offerUpdate(worker);
      if (worker.state === 'redundant' && !state.updateReady) log('warn', 'A new version of the page could not be installed completely; keeping this one');
    });
  };

  const applyUpdate = () => {
    const waiting = registration?.waiting;
    if (!waiting) return false;
    accepted = true;
    applyBtn && (applyBtn.disabled = true);
    waiting.postMessage({ type: 'skip-waiting' });
    return true;
  };

  const checkForUpdate = async () => {
    if (!registration) return false;
    await registration.update();
    return true;
  };

  let ready;
  if (!('serviceWorker' in navigator)) {
    state.unsupported = true;
    render();
    ready = Promise.resolve(null);
  } else {
    render();
    applyBtn?.addEventListener('click', applyUpdate);
    let hadController = !!navigator.serviceWorker.controller;
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      // A first install claiming this page changes nothing it runs. Any later switch means
      // another version took over the origin: reload so no page runs old code on new files.
      if (!hadController && !accepted) {
        hadController = true;
        return;
      }
      location.reload();
    });
    ready = (async () => {
      try {
        registration = await navigator.serviceWorker.register(new URL('sw.js', import.meta.url), { updateViaCache: 'none' });
      } catch (e) {
        // Registering again checks for an update, which fails while the origin is down: the
        // installed version keeps serving the page.
        registration = (await navigator.serviceWorker.getRegistration().catch(() => null)) || null;
        if (!registration?.active) {
          registration = null;
          state.error = e?.message || String(e);
          log('warn', `The page cannot be kept for offline use: ${state.error}`);
          render();
          return null;
        }
        log('info', 'Running from the offline copy of the page: the relay that served it does not answer');
      }
      registration.addEventListener('updatefound', () => watchInstalling(registration.installing));
      watchInstalling(registration.installing);
      if (registration.waiting) offerUpdate(registration.waiting);
      const active = await navigator.serviceWorker.ready;
      state.version = await askVersion(active.active);
      state.controlled = !!navigator.serviceWorker.controller;
      render();
      if (registration.waiting) offerUpdate(registration.waiting);
      setInterval(() => registration.update().catch(() => {}), UPDATE_CHECK_MS);
      addEventListener('online', () => registration.update().catch(() => {}));
      return state.version;
    })();
  }
  return { ready, checkForUpdate, applyUpdate, state };
}
