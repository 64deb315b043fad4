// Drives the ops console in headless Chromium, as an admin would, against a seyaha-local that
// tests/tests/console.rs started (with the demo supplier) and filled with integrations.
// Everything it needs comes from the environment; every wait is a poll with a deadline.
// Exits non-zero (with the reason) on the first failed step.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this script is run by tests/tests/console.rs)`);
  return value;
}

const consoleUrl = required('CONSOLE_URL');
const adminToken = required('ADMIN_TOKEN');
const partnerToken = required('PARTNER_TOKEN');
const integrationId = required('INTEGRATION_ID');
const partnerId = required('PARTNER_ID');
const webhookSecret = required('WEBHOOK_SECRET');
const demoRoot = required('DEMO_ROOT');
const screenshots = required('SCREENSHOT_DIR');
const executablePath = required('CHROMIUM');
const totalIntegrations = Number(required('TOTAL_INTEGRATIONS'));
const api = new URL('/api/v1/partner-integrations', consoleUrl).href;

// A partner's product title with markup in it: it must show as these characters.
const HOSTILE_TITLE = '<img src=x onerror=alert(1)> Sunset <b>dhow</b>';

function step(text) {
  console.log(`step: ${text}`);
}

async function eventually(what, probe, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function adminApi(method, suffix, body) {
  const response = await fetch(api + suffix, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

await mkdir(screenshots, { recursive: true });
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Chromium's own background traffic would be refused on a closed network, many times over.
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1100 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const origin = new URL(consoleUrl).origin;
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused API call (the wrong token below) is logged by Chromium itself; anything else is a fault.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console error: ${message.text()}`);
  });
  page.on('dialog', async (dialog) => {
    problems.push(`a native ${dialog.type()} dialog opened: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(origin) && !request.url().startsWith('data:')) problems.push(`request elsewhere: ${request.url()}`);
  });
  // Added by the browser, not the page: the page's CSP does not apply to it.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`));
  });
  const cspViolations = async () => page.evaluate(() => window.__cspViolations);

  const row = page.locator(`#integration-rows tr[data-integration-id="${integrationId}"]`);
  const detail = page.locator('#detail');
  const dialog = page.locator('#confirm');
  const notice = page.locator('#notice');

  step('load the console: it asks for a token');
  await page.goto(consoleUrl);
  await page.getByLabel('Admin JWT').waitFor();

  step('a refused token shows the error envelope, not a blank page');
  const refused = await fetch(`${api}/admin?page=1&limit=20`, { headers: { Authorization: `Bearer ${partnerToken}` } }).then((r) => r.json());
  assert.equal(refused.success, 0);
  await page.getByLabel('Admin JWT').fill(partnerToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#problem').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#problem-message').textContent(), `${refused.message} (403)`);
  assert.deepEqual(await page.locator('#problem-errors li').allTextContents(), refused.error);
  assert.ok(await page.getByLabel('Admin JWT').isVisible(), 'the token is asked for again');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');
  await page.screenshot({ path: path.join(screenshots, '01-refused-token.png') });

  step('sign in with the admin token: the integrations table lists the demo integration');
  await page.getByLabel('Admin JWT').fill(adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await row.waitFor();
  assert.ok(await page.locator('#problem').isHidden(), 'the earlier error is cleared');
  assert.match(await row.textContent(), new RegExp(partnerId));
  assert.match(await row.textContent(), /Not approved/);
  assert.match(await row.textContent(), /HEALTHY/);
  assert.ok(!page.url().includes(adminToken), 'the token is not in the URL');
  assert.deepEqual(await context.cookies(), [], 'no cookie');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('seyaha.console.adminToken')), adminToken);
  assert.equal(await page.locator('#page-info').textContent(), `Page 1 of 1 · ${totalIntegrations} integrations`);

  step('page through the admin list');
  await page.getByLabel('Per page').selectOption('10');
  await eventually('page 1 of 2', async () => (await page.locator('#page-info').textContent()) === `Page 1 of 2 · ${totalIntegrations} integrations`);
  assert.equal(await page.locator('#integration-rows tr').count(), 10);
  await page.getByRole('button', { name: 'Next' }).first().click();
  await eventually('page 2', async () => (await page.locator('#page-info').textContent()).startsWith('Page 2 of 2'));
  const lastPage = await page.locator('#integration-rows tr').evaluateAll((rows) => rows.map((r) => r.dataset.integrationId));
  assert.equal(lastPage.length, totalIntegrations - 10);
  assert.ok(!lastPage.includes(integrationId), 'the newest integration is on page 1');

  step('the last page empties elsewhere: a refresh shows the new last page');
  for (const id of lastPage) assert.equal((await adminApi('DELETE', `/admin/${id}`)).status, 200);
  const remaining = totalIntegrations - lastPage.length;
  await page.locator('#refresh').click();
  await eventually('the new last page', async () => (await page.locator('#page-info').textContent()) === `Page 1 of 1 · ${remaining} integrations`);
  await row.waitFor();

  step('open the integration and approve it, after confirming');
  await row.click();
  await detail.waitFor();
  assert.equal(await page.locator('#detail-id').textContent(), integrationId);
  assert.match(await page.locator('#document').textContent(), /"isApproved": false/);
  await page.locator('#action-approval').click();
  await dialog.waitFor();
  assert.match(await page.locator('#confirm-text').textContent(), /Approve the integration of partner/);
  await dialog.getByRole('button', { name: 'Approve' }).click();
  await eventually('the approval', async () => (await page.locator('#document').textContent()).includes('"isApproved": true'));
  assert.equal(await notice.textContent(), 'Integration approved.');
  await eventually('the approved badge', async () => (await row.textContent()).includes('Approved') && !(await row.textContent()).includes('Not approved'));
  assert.equal(await page.locator('#action-approval').textContent(), 'Revoke approval');

  step('trigger a sync: the run appears in the timeline and the catalog fills');
  assert.equal(await page.locator('.run-bar').count(), 0);
  await page.getByRole('button', { name: 'Sync now' }).click();
  await dialog.getByRole('button', { name: 'Sync now' }).click();
  await eventually('the sync to be requested', async () => (await notice.textContent()).startsWith('Sync requested'));
  await eventually('a run in the timeline', async () => (await page.locator('.run-bar').count()) >= 1);
  const bar = page.locator('.run-bar').first();
  assert.equal(await bar.getAttribute('data-outcome'), 'synced');
  await eventually('the catalog', async () => (await page.locator('#activity-rows tr').count()) === 4);
  assert.match(await page.locator('#rejections-caption').textContent(), /0 rejected/);
  await bar.hover();
  const tip = page.locator('#timeline-tip');
  await tip.waitFor({ state: 'visible' });
  assert.match(await tip.textContent(), /synced · admin · \d+ ms/);
  assert.match(await tip.textContent(), /created 4/);

  step('the partner pushes a slot: the slots tab shows it');
  const day = new Date(Date.now() + 7 * 86400000).toISOString().slice(0, 10);
  const slotStart = `${day}T19:30:00+04:00`;
  const notified = await fetch(`${api}/${integrationId}/availability/notify`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'x-webhook-secret': webhookSecret },
    body: JSON.stringify({ productId: 'product_dhow_cruise', optionId: 'DEFAULT', availabilityId: slotStart, localDateTimeStart: slotStart, status: 'LIMITED', vacancies: 4, capacity: 40 }),
  }).then((r) => r.json());
  assert.deepEqual(notified, { success: 1, data: { updated: true } });
  await page.getByRole('tab', { name: 'Slots' }).click();
  await page.locator('#slot-table').waitFor();
  await eventually('the slot', async () => (await page.locator('#slot-rows tr').count()) >= 1 && (await page.locator('#slot-rows').textContent()).includes('LIMITED'));
  assert.match(await page.locator('#slot-rows').textContent(), new RegExp(`product_dhow_cruise.*DEFAULT.*${day}`));
  await page.getByRole('tab', { name: 'Activities' }).click();
  await eventually('the activities again', async () => (await page.locator('#activity-rows tr').count()) === 4);

  step('a partner title with markup renders as text');
  await eventually('the push subscription', async () => (await adminApi('GET', `/admin/${integrationId}`)).body.data.notifications.mode === 'octo_notifications');
  const change = await fetch(`${demoRoot}/_simulate/product-change`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ title: HOSTILE_TITLE }),
  }).then((r) => r.json());
  assert.equal(change.notified, 1, JSON.stringify(change));
  const hostileCell = page.locator('#activity-rows td.activity-title', { hasText: HOSTILE_TITLE });
  await eventually('the pushed title in the catalog', async () => {
    if ((await hostileCell.count()) === 1) return true;
    await page.locator('#refresh').click();
    await page.waitForTimeout(250);
    return false;
  });
  assert.equal(await hostileCell.textContent(), HOSTILE_TITLE);
  assert.equal(await page.locator('img').count(), 0, 'no element was made from the title');
  assert.equal(await hostileCell.locator('*').count(), 0, 'the title cell holds text only');

  step('pause and activate again');
  await page.getByRole('button', { name: 'Pause' }).click();
  await dialog.getByRole('button', { name: 'Pause' }).click();
  await eventually('the paused badge', async () => (await row.textContent()).includes('Paused'));
  // The badge and the action buttons are drawn from the same answer, but not in one frame: wait
  // for the button too, rather than reading it the moment the badge changed.
  await eventually('a paused integration cannot be synced', async () =>
    page.getByRole('button', { name: 'Sync now' }).isDisabled());
  await page.getByRole('button', { name: 'Activate' }).click();
  await dialog.getByRole('button', { name: 'Activate' }).click();
  await eventually('the active badge', async () => (await row.textContent()).includes('Active'));

  step('filters by approval and health');
  await page.getByLabel('Approval').selectOption('false');
  await eventually('only pending ones', async () => (await row.count()) === 0 && (await page.locator('#integration-rows tr').count()) > 0);
  await page.getByLabel('Approval').selectOption('true');
  await row.waitFor();
  assert.equal(await page.locator('#integration-rows tr').count(), 1);
  await page.getByLabel('Health').selectOption('DOWN');
  await eventually('no DOWN integration', async () => (await page.locator('#integration-rows').textContent()) === 'No integrations match these filters.');
  await page.getByLabel('Health').selectOption('HEALTHY');
  await row.waitFor();
  await page.getByLabel('Approval').selectOption('');
  await page.getByLabel('Health').selectOption('');
  await eventually('the whole first page', async () => (await page.locator('#integration-rows tr').count()) === 10);

  step('sync all');
  await page.getByRole('button', { name: 'Sync all' }).click();
  await dialog.getByRole('button', { name: 'Sync all' }).click();
  await eventually('sync-all', async () => (await notice.textContent()) === 'Sync requested for 1 integration.');
  await eventually('the second run', async () => (await page.locator('.run-bar').count()) >= 2);

  step('screenshot of the console at work');
  await page.locator('.run-bar').last().hover();
  await tip.waitFor({ state: 'visible' });
  await page.screenshot({ path: path.join(screenshots, '02-console.png'), fullPage: true });

  assert.deepEqual(await cspViolations(), [], 'the page works under its own Content-Security-Policy');

  step('delete: cancel keeps it, confirm deletes it');
  await page.getByRole('button', { name: 'Delete' }).click();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.ok(await dialog.isHidden());
  assert.equal((await adminApi('GET', `/admin/${integrationId}`)).status, 200, 'cancel deleted nothing');
  await page.getByRole('button', { name: 'Delete' }).click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await eventually('the deletion', async () => (await notice.textContent()) === 'Integration deleted.');
  await detail.waitFor({ state: 'hidden' });
  assert.equal(await row.count(), 0);
  assert.equal((await adminApi('GET', `/admin/${integrationId}`)).status, 404);

  step('a reload keeps the session; signing out forgets the token');
  await page.reload();
  await page.locator('#integration-rows tr').first().waitFor();
  assert.ok(await page.getByLabel('Admin JWT').isHidden(), 'the token is asked for once per tab');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin JWT').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assert.deepEqual(await cspViolations(), []);
  assert.deepEqual(problems, [], 'no page errors, native dialogs or requests elsewhere');
  console.log('console browser test: passed');
} finally {
  await browser.close();
}
