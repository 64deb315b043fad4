
// The ops console: vanilla JavaScript against the admin API, nothing fetched from elsewhere.
// Every string from the API (partner-supplied titles, ids, error texts) reaches the page as a
// text node (textContent, append of a string): never as HTML.
'use strict';
(() => {
  const API = '/api/v1/partner-integrations';
  const TOKEN_KEY = 'seyaha.console.adminToken';
  const CATALOG_PAGE = 10;
  // After an action, the open integration is re-read this often, for this long: a queued sync
  // runs in the background and its run should appear without a manual refresh.
  const WATCH_EVERY_MS = 1000;
  const WATCH_FOR_MS = 60000;

  const byId = (id) => document.getElementById(id);
  const view = {
    signIn: byId('sign-in'), signInForm: byId('sign-in-form'), token: byId('token'),
    sessionActions: byId('session-actions'),
    notice: byId('notice'), problem: byId('problem'), problemMessage: byId('problem-message'), problemErrors: byId('problem-errors'),
    integrations: byId('integrations'), rows: byId('integration-rows'), pageInfo: byId('page-info'),
    pagePrev: byId('page-prev'), pageNext: byId('page-next'),
    filterApproval: byId('filter-approval'), filterHealth: byId('filter-health'), filterLimit: byId('filter-limit'),
    detail: byId('detail'), detailId: byId('detail-id'), document: byId('document'),
    approval: byId('action-approval'), activity: byId('action-activity'), sync: byId('action-sync'), remove: byId('action-delete'),
    chart: byId('timeline-chart'), tip: byId('timeline-tip'), runsCaption: byId('runs-caption'),
    rejections: byId('rejection-rows'), rejectionsCaption: byId('rejections-caption'),
    tabActivities: byId('tab-activities'), tabSlots: byId('tab-slots'),
    activityTable: byId('activity-table'), activityRows: byId('activity-rows'),
    slotTable: byId('slot-table'), slotRows: byId('slot-rows'),
    catalogPrev: byId('catalog-prev'), catalogNext: byId('catalog-next'), catalogInfo: byId('catalog-info'),
    confirm: byId('confirm'), confirmText: byId('confirm-text'), confirmOk: byId('confirm-ok'), confirmCancel: byId('confirm-cancel'),
  };

  const state = {
    page: 1,
    totalPages: 1,
    selected: null, // the open integration's document
    runsSeen: null, // run ids last drawn, to notice new runs
    catalog: { kind: 'activities', cursors: [null], index: 0, next: null },
    watchUntil: 0,
    watchTimer: null,
  };

  // ---- API ----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, errors) {
      super(message);
      this.status = status;
      this.errors = errors;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json', Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}` };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (error) {
      throw new ApiError(0, 'The service could not be reached', [String(error && error.message ? error.message : error)]);
    }
    let envelope = null;
    try {
      envelope = await response.json();
    } catch (_) {
      envelope = null;
    }
    if (!response.ok || !envelope || envelope.success !== 1) {
      const message = envelope && typeof envelope.message === 'string' && envelope.message
        ? envelope.message
        : `The service answered ${response.status} ${response.statusText}`.trim();
      const errors = envelope && Array.isArray(envelope.error) ? envelope.error.map(String) : [];
      throw new ApiError(response.status, message, errors);
    }
    return envelope;
  }

  const idPath = (id) => encodeURIComponent(id);

  // ---- Building the page (text only) --------------------------------------------------

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    return node;
  }

  function badge(text, className) {
    return el('span', `badge ${className}`, text);
  }

  function when(timestamp) {
    if (!timestamp) return '—';
    const date = new Date(timestamp);
    return Number.isNaN(date.getTime()) ? String(timestamp) : date.toLocaleString();
  }

  function emptyRow(tbody, columns, text) {
    const cell = el('td', 'empty', text);
    cell.colSpan = columns;
    tbody.replaceChildren(el('tr', null, cell));
  }

  // ---- Messages -------------------------------------------------------------------------

  function showNotice(text) {
    view.notice.textContent = text;
    view.notice.hidden = false;
  }

  function clearMessages() {
    view.notice.hidden = true;
    view.problem.hidden = true;
  }

  function showProblem(error) {
    view.notice.hidden = true;
    const message = error instanceof ApiError ? error.message : 'Something went wrong in the console';
    const errors = error instanceof ApiError ? error.errors : [String(error)];
    view.problemMessage.textContent = error instanceof ApiError && error.status ? `${message} (${error.status})` : message;
    view.problemErrors.replaceChildren(...errors.map((entry) => el('li', null, entry)));
    view.problem.hidden = false;
    if (isTokenProblem(error)) signOut(false);
  }

  // The token itself was refused (missing, expired, invalid, or not an admin's): ask again.
  // Other 403s (an integration not approved, say) keep the session.
  function isTokenProblem(error) {
    if (!(error instanceof ApiError)) return false;
    return error.status === 401 || (error.status === 403 && error.errors.some((entry) => entry.startsWith('authorization:')));
  }

  // ---- Confirmation ---------------------------------------------------------------------

  function confirmAction(text, actionLabel) {
    view.confirmText.textContent = text;
    view.confirmOk.textContent = actionLabel;
    view.confirm.showModal();
    return new Promise((resolve) => {
      const finish = (answer) => {
        view.confirmOk.removeEventListener('click', ok);
        view.confirmCancel.removeEventListener('click', cancel);
        view.confirm.removeEventListener('cancel', cancel);
        if (view.confirm.open) view.confirm.close();
        resolve(answer);
      };
      const ok = () => finish(true);
      const cancel = (event) => {
        if (event) event.preventDefault();
        finish(false);
      };
      view.confirmOk.addEventListener('click', ok);
      view.confirmCancel.addEventListener('click', cancel);
      view.confirm.addEventListener('cancel', cancel);
    });
  }

  // ---- Session --------------------------------------------------------------------------

  function signedIn() {
    return Boolean(sessionStorage.getItem(TOKEN_KEY));
  }

  function showSignedIn(on) {
    view.signIn.hidden = on;
    view.sessionActions.hidden = !on;
    view.integrations.hidden = !on;
    if (!on) closeDetail();
  }

  function signOut(clearProblem) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (clearProblem) clearMessages();
    showSignedIn(false);
    view.token.value = '';
    view.token.focus();
  }

  view.signInForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = view.token.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    view.token.value = '';
    clearMessages();
    showSignedIn(true);
    await loadIntegrations();
  });

  byId('sign-out').addEventListener('click', () => signOut(true));

  // ---- The integrations table -------------------------------------------------------------

  async function loadIntegrations() {
    const query = new URLSearchParams({ page: String(state.page), limit: view.filterLimit.value });
    if (view.filterApproval.value) query.set('isApproved', view.filterApproval.value);
    if (view.filterHealth.value) query.set('health', view.filterHealth.value);
    try {
      const envelope = await api('GET', `/admin?${query}`);
      renderIntegrations(envelope.data, envelope.pagination);
    } catch (error) {
      showProblem(error);
    }
  }

  function renderIntegrations(items, pagination) {
    const total = pagination ? pagination.totalCount : items.length;
    const size = pagination ? pagination.pageSize : items.length || 1;
    state.totalPages = Math.max(1, Math.ceil(total / size));
    view.pageInfo.textContent = `Page ${state.page} of ${state.totalPages} · ${total} integration${total === 1 ? '' : 's'}`;
    view.pagePrev.disabled = state.page <= 1;
    view.pageNext.disabled = state.page >= state.totalPages;
    if (items.length === 0 && total > 0 && state.page > state.totalPages) {
      // The page emptied under us (the last one deleted elsewhere): show the new last page.
      state.page = state.totalPages;
      loadIntegrations();
      return;
    }
    if (items.length === 0) {
      emptyRow(view.rows, 8, 'No integrations match these filters.');
      return;
    }
    view.rows.replaceChildren(...items.map(integrationRow));
  }

  function integrationRow(integration) {
    const health = integration.health || {};
    const sync = integration.sync || {};
    const healthCell = el('td', null, badge(health.status || '?', `health-${health.status}`),
      el('span', 'failures', `${health.consecutive_failures ?? 0} failure${health.consecutive_failures === 1 ? '' : 's'}`));
    const syncCell = el('td', null, badge(sync.status || '?', `sync-${sync.status}`));
    if (sync.error_message) syncCell.title = sync.error_message;
    const open = el('button', 'link', 'Open');
    open.type = 'button';
    const row = el('tr', 'selectable',
      el('td', null, el('code', null, integration.partner_id)),
      el('td', 'wrap', integration.base_url),
      el('td', null, integration.isApproved ? badge('Approved', 'yes') : badge('Not approved', 'no')),
      el('td', null, integration.isActive ? badge('Active', 'yes') : badge('Paused', 'no')),
      healthCell,
      syncCell,
      el('td', null, when(sync.last_sync_at)),
      el('td', null, open));
    row.dataset.integrationId = integration._id;
    if (state.selected && state.selected._id === integration._id) row.classList.add('selected');
    row.addEventListener('click', () => openIntegration(integration._id));
    return row;
  }

  for (const filter of [view.filterApproval, view.filterHealth, view.filterLimit]) {
    filter.addEventListener('change', () => {
      state.page = 1;
      loadIntegrations();
    });
  }
  view.pagePrev.addEventListener('click', () => {
    state.page = Math.max(1, state.page - 1);
    loadIntegrations();
  });
  view.pageNext.addEventListener('click', () => {
    state.page = Math.min(state.totalPages, state.page + 1);
    loadIntegrations();
  });
  byId('refresh').addEventListener('click', async () => {
    clearMessages();
    await loadIntegrations();
    if (state.selected) await refreshDetail(true);
  });

  byId('sync-all').addEventListener('click', async () => {
    if (!(await confirmAction('Queue a sync of every approved, active integration?', 'Sync all'))) return;
    try {
      const envelope = await api('POST', '/admin/sync-all');
      const queued = envelope.data.queued;
      showNotice(`Sync requested for ${queued} integration${queued === 1 ? '' : 's'}.`);
      watch();
    } catch (error) {
      showProblem(error);
    }
  });

  // ---- One integration --------------------------------------------------------------------

  async function openIntegration(id) {
    clearMessages();
    state.selected = { _id: id };
    state.runsSeen = null;
    resetCatalog('activities');
    for (const row of view.rows.children) row.classList.toggle('selected', row.dataset.integrationId === id);
    await refreshDetail(true);
    if (state.selected) {
      view.detail.hidden = false;
      view.detail.scrollIntoView({ block: 'start' });
    }
  }

  function closeDetail() {
    state.selected = null;
    stopWatching();
    view.detail.hidden = true;
    for (const row of view.rows.children) row.classList.remove('selected');
  }
  byId('detail-close').addEventListener('click', closeDetail);

  // Re-reads the open integration: its document and runs always, its catalog when asked or
  // when a run finished since it was last drawn.
  async function refreshDetail(withCatalog) {
    const id = state.selected && state.selected._id;
    if (!id) return;
    try {
      const [integration, log] = await Promise.all([
        api('GET', `/admin/${idPath(id)}`),
        api('GET', `/${idPath(id)}/sync-log`),
      ]);
      if (!state.selected || state.selected._id !== id) return;
      state.selected = integration.data;
      renderDocument(integration.data);
      const runIds = log.data.runs.map((run) => run.run_id).join(',');
      const runsChanged = state.runsSeen !== null && state.runsSeen !== runIds;
      state.runsSeen = runIds;
      renderRuns(log.data.runs);
      if (withCatalog || runsChanged) await loadCatalog();
    } catch (error) {
      showProblem(error);
      if (error instanceof ApiError && error.status === 404) closeDetail();
    }
  }

  function renderDocument(integration) {
    view.detailId.textContent = integration._id;
    view.document.textContent = JSON.stringify(integration, null, 2);
    view.approval.textContent = integration.isApproved ? 'Revoke approval' : 'Approve';
    view.activity.textContent = integration.isActive ? 'Pause' : 'Activate';
    view.sync.disabled = !(integration.isApproved && integration.isActive);
    view.sync.title = view.sync.disabled ? 'Only an approved, active integration syncs' : '';
  }

  async function act(description, actionLabel, method, path, body, done) {
    if (!(await confirmAction(description, actionLabel))) return;
    try {
      const envelope = await api(method, path, body);
      showNotice(done(envelope.data));
      await loadIntegrations();
      if (method === 'DELETE') {
        closeDetail();
      } else {
        await refreshDetail(false);
        watch();
      }
    } catch (error) {
      showProblem(error);
    }
  }

  view.approval.addEventListener('click', () => {
    const integration = state.selected;
    const approve = !integration.isApproved;
    act(
      approve
        ? `Approve the integration of partner ${integration.partner_id}? Seyaha starts syncing its catalog.`
        : `Revoke the approval of partner ${integration.partner_id}? Its webhooks are refused until it is approved again.`,
      approve ? 'Approve' : 'Revoke approval',
      'PATCH', `/admin/${idPath(integration._id)}`, { isApproved: approve },
      () => (approve ? 'Integration approved.' : 'Approval revoked.'),
    );
  });

  view.activity.addEventListener('click', () => {
    const integration = state.selected;
    const activate = !integration.isActive;
    act(
      activate ? `Activate the integration of partner ${integration.partner_id}?` : `Pause the integration of partner ${integration.partner_id}? Syncs and webhooks stop until it is activated.`,
      activate ? 'Activate' : 'Pause',
      'PATCH', `/admin/${idPath(integration._id)}`, { isActive: activate },
      () => (activate ? 'Integration activated.' : 'Integration paused.'),
    );
  });

  view.sync.addEventListener('click', () => {
    const integration = state.selected;
    act(
      `Queue a full sync of partner ${integration.partner_id}'s catalog?`, 'Sync now',
      'POST', `/admin/${idPath(integration._id)}/sync`, undefined,
      (data) => (data.requested ? 'Sync requested; it runs in the background.' : 'A sync was already requested; it runs in the background.'),
    );
  });

  view.remove.addEventListener('click', () => {
    const integration = state.selected;
    act(
      `Delete the integration of partner ${integration.partner_id}, with its catalog and credential? This cannot be undone.`, 'Delete',
      'DELETE', `/admin/${idPath(integration._id)}`, undefined,
      () => 'Integration deleted.',
    );
  });

  // While something runs in the background, re-read the open integration now and then.
  function watch() {
    state.watchUntil = Date.now() + WATCH_FOR_MS;
    if (state.watchTimer === null) state.watchTimer = setTimeout(watchTick, WATCH_EVERY_MS);
  }

  function stopWatching() {
    if (state.watchTimer !== null) clearTimeout(state.watchTimer);
    state.watchTimer = null;
  }

  async function watchTick() {
    state.watchTimer = null;
    if (!state.selected || !signedIn()) return;
    await refreshDetail(false);
    const syncing = state.selected && state.selected.sync && state.selected.sync.status === 'syncing';
    if (Date.now() < state.watchUntil || syncing) state.watchTimer = setTimeout(watchTick, WATCH_EVERY_MS);
  }

  // ---- Run timeline ------------------------------------------------------------------------

  const COUNT_NAMES = ['synced', 'created', 'updated', 'unchanged', 'deactivated', 'rejected'];

  function renderRuns(runs) {
    const chronological = runs.slice().reverse();
    view.runsCaption.textContent = runs.length ? `(last ${runs.length}, oldest left)` : '';
    view.tip.hidden = true;
    const width = 600;
    const height = 160;
    const top = 14;
    const bottom = 18;
    const left = 8;
    const slot = (width - left * 2) / Math.max(chronological.length, 20);
    const longest = Math.max(1, ...chronological.map((run) => run.duration_ms || 0));
    const scale = (height - top - bottom) / longest;
    const parts = [
      svg('line', { class: 'axis', x1: left, y1: height - bottom, x2: width - left, y2: height - bottom }),
    ];
    const label = svg('text', { class: 'axis-label', x: left, y: 10 });
    label.textContent = chronological.length ? `height: duration (longest ${longest} ms)` : 'No sync runs yet.';
    parts.push(label);
    chronological.forEach((run, index) => {
      const barHeight = Math.max(2, (run.duration_ms || 0) * scale);
      const bar = svg('rect', {
        class: `run-bar outcome-${run.outcome}`,
        x: left + index * slot + slot * 0.15,
        y: height - bottom - barHeight,
        width: slot * 0.7,
        height: barHeight,
        rx: 2,
        tabindex: 0,
        'data-run-id': run.run_id,
        'data-outcome': run.outcome,
      });
      bar.addEventListener('mouseenter', () => showTip(run, bar));
      bar.addEventListener('focus', () => showTip(run, bar));
      bar.addEventListener('mouseleave', hideTip);
      bar.addEventListener('blur', hideTip);
      parts.push(bar);
    });
    view.chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
    view.chart.setAttribute('preserveAspectRatio', 'none');
    view.chart.replaceChildren(...parts);
    renderRejections(runs[0]);
  }

  function showTip(run, bar) {
    const lines = [
      el('div', null, el('strong', null, run.outcome), ` · ${run.trigger} · ${run.duration_ms} ms`),
      el('div', null, when(run.started_at)),
      el('div', null, COUNT_NAMES.map((name) => `${name} ${run[name] ?? 0}`).join(' · ')),
    ];
    if (run.error) lines.push(el('div', 'tip-error', run.error));
    view.tip.replaceChildren(...lines);
    view.tip.hidden = false;
    const box = bar.getBoundingClientRect();
    const frame = view.tip.parentElement.getBoundingClientRect();
    const x = Math.min(box.left - frame.left, frame.width - view.tip.offsetWidth - 4);
    view.tip.style.left = `${Math.max(4, x)}px`;
    view.tip.style.top = `${Math.max(4, box.top - frame.top - view.tip.offsetHeight - 6)}px`;
  }

  function hideTip() {
    view.tip.hidden = true;
  }

  function renderRejections(run) {
    if (!run) {
      view.rejectionsCaption.textContent = '';
      emptyRow(view.rejections, 4, 'No runs yet.');
      return;
    }
    view.rejectionsCaption.textContent = `(${run.trigger}, ${when(run.started_at)}: ${run.rejected ?? 0} rejected)`;
    if (!run.rejections || run.rejections.length === 0) {
      emptyRow(view.rejections, 4, 'The last run rejected nothing.');
      return;
    }
    view.rejections.replaceChildren(...run.rejections.map((rejection) => el('tr', null,
      el('td', null, rejection.index),
      el('td', 'wrap', rejection.productId ?? '—'),
      el('td', 'wrap', rejection.internalName ?? '—'),
      el('td', 'wrap', rejection.reason))));
  }

  // ---- Catalog ------------------------------------------------------------------------------

  function resetCatalog(kind) {
    state.catalog = { kind, cursors: [null], index: 0, next: null };
    view.tabActivities.setAttribute('aria-selected', String(kind === 'activities'));
    view.tabSlots.setAttribute('aria-selected', String(kind === 'slots'));
    view.activityTable.hidden = kind !== 'activities';
    view.slotTable.hidden = kind !== 'slots';
  }

  async function loadCatalog() {
    const id = state.selected && state.selected._id;
    if (!id) return;
    const { kind, cursors, index } = state.catalog;
    const query = new URLSearchParams({ kind, limit: String(CATALOG_PAGE) });
    if (cursors[index]) query.set(`${kind}_cursor`, cursors[index]);
    try {
      const envelope = await api('GET', `/${idPath(id)}/catalog?${query}`);
      if (!state.selected || state.selected._id !== id || state.catalog.kind !== kind) return;
      const items = envelope.data[kind] || [];
      state.catalog.next = envelope.data.next_cursor ? envelope.data.next_cursor[kind] : null;
      if (kind === 'activities') renderActivities(items);
      else renderSlots(items);
      view.catalogInfo.textContent = `Page ${index + 1}${items.length ? '' : ' (empty)'}`;
      view.catalogPrev.disabled = index === 0;
      view.catalogNext.disabled = !state.catalog.next;
    } catch (error) {
      showProblem(error);
    }
  }

  function price(value) {
    if (!value) return '—';
    const precision = value.currency_precision ?? 2;
    const amount = (value.retail / 10 ** precision).toFixed(precision);
    return value.currency ? `${amount} ${value.currency}` : amount;
  }

  function variationItem(variation) {
    const pricing = variation.pricing || {};
    const prices = (pricing.units || []).map((unit) => `${unit.label || unit.type} ${price(unit.price)}`);
    if (pricing.per_booking) prices.push(`per booking ${price(pricing.per_booking)}`);
    return el('li', null, variation.title, el('span', 'muted', prices.length ? ` — ${prices.join(', ')}` : ' — no price'));
  }

  function renderActivities(activities) {
    if (activities.length === 0) {
      emptyRow(view.activityRows, 5, 'No activities synced yet.');
      return;
    }
    view.activityRows.replaceChildren(...activities.map((activity) => el('tr', null,
      el('td', 'wrap activity-title', activity.activity_title),
      el('td', 'wrap', el('code', null, activity.external_sync ? activity.external_sync.external_id : '')),
      el('td', null, activity.isActive ? badge('Active', 'yes') : badge('Inactive', 'no')),
      el('td', 'wrap', el('ul', 'variations', ...(activity.variations || []).map(variationItem))),
      el('td', null, when(activity.updatedAt)))));
  }

  function renderSlots(slots) {
    if (slots.length === 0) {
      emptyRow(view.slotRows, 7, 'No slots stored.');
      return;
    }
    view.slotRows.replaceChildren(...slots.map((slot) => el('tr', null,
      el('td', 'wrap', el('code', null, slot.productId)),
      el('td', 'wrap', el('code', null, slot.optionId)),
      el('td', null, slot.localDateTimeStart),
      el('td', null, slot.status ?? '—'),
      el('td', null, slot.vacancies ?? '—'),
      el('td', null, slot.capacity ?? '—'),
      el('td', null, when(slot.updatedAt)))));
  }

  view.tabActivities.addEventListener('click', () => {
    resetCatalog('activities');
    loadCatalog();
  });
  view.tabSlots.addEventListener('click', () => {
    resetCatalog('slots');
    loadCatalog();
  });
  view.catalogNext.addEventListener('click', () => {
    const { cursors, index, next } = state.catalog;
    if (!next) return;
    cursors.length = index + 1;
    cursors.push(next);
    state.catalog.index = index + 1;
    loadCatalog();
  });
  view.catalogPrev.addEventListener('click', () => {
    if (state.catalog.index === 0) return;
    state.catalog.index -= 1;
    loadCatalog();
  });

  // ---- Start --------------------------------------------------------------------------------

  if (signedIn()) {
    showSignedIn(true);
    loadIntegrations();
  } else {
    showSignedIn(false);
  }
})();
