// The longattn dashboard: plain JS over /v1 (docs/contracts.md). The API key stays in this tab's sessionStorage.
import { showInspect } from './inspect.js';

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem('longattn-key');
let selected;
let stream;

const api = (path, init = {}) => fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${key}` } });
const fmt = (n, digits = 1) => (n === undefined ? '–' : n.toFixed(digits));
const shapeText = (s) => (s ? `B${s.B} H${s.H}/${s.Hk} ${s.Sq}×${s.Sk} D${s.D}` : '–');

/** The job's mask and pattern as given (options): "causal, window 5,0, sinks 3, 2 globals, stride 7, block mask 20". */
function maskText(o) {
  const parts = [
    o.linear ? 'linear (approximation)' : '',
    o.causal ? 'causal' : '',
    o.window ? `window ${o.window.join(',')}` : '',
    o.sinks ? `sinks ${o.sinks}` : '',
    o.global?.length ? `${o.global.length} global${o.global.length > 1 ? 's' : ''}` : '',
    o.stride ? `stride ${o.stride}` : '',
    o.maskBlock ? `block mask ${o.maskBlock}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'none (dense)';
}

async function signIn(candidate) {
  const response = await fetch('/v1/jobs?limit=1', { headers: { authorization: `Bearer ${candidate}` } });
  if (response.status === 401) throw new Error('unknown API key');
  if (!response.ok) throw new Error(`the API answered ${response.status}`);
  key = candidate;
  sessionStorage.setItem('longattn-key', key);
  $('sign-in').hidden = true;
  $('jobs').hidden = false;
  $('sign-out').hidden = false;
  await refresh();
}

async function refresh() {
  if (!key) return;
  const response = await api('/v1/jobs?limit=50');
  if (!response.ok) return;
  const { jobs } = await response.json();
  const rows = $('job-rows');
  rows.replaceChildren(
    ...jobs.map((job) => {
      const tr = document.createElement('tr');
      tr.dataset.id = job.id;
      if (job.id === selected) tr.className = 'selected';
      const cells = [
        job.id,
        job.state,
        `${job.progress.done}/${job.progress.total}`,
        shapeText(job.shape),
        fmt(job.gflops),
        new Date(job.createdAt).toLocaleTimeString(),
      ];
      for (const [i, text] of cells.entries()) {
        const td = document.createElement('td');
        td.textContent = text;
        if (i === 1) td.className = `state ${job.state}`;
        tr.append(td);
      }
      tr.addEventListener('click', () => follow(job.id));
      return tr;
    }),
  );
  if (!selected) {
    const running = jobs.find((j) => j.state === 'running' || j.state === 'queued') ?? jobs[0];
    if (running) follow(running.id);
  }
}

function showNumbers(job, event) {
  const elapsed = job.startedAt ? ((job.finishedAt ?? Date.now()) - job.startedAt) / 1000 : undefined;
  const rows = [
    ['state', event?.state ?? job.state],
    ['tiles', `${event?.done ?? job.progress.done} / ${event?.total ?? job.progress.total}`],
    ['GFLOP', `${fmt((event?.doneFlops ?? job.flops.done) / 1e9, 2)} / ${fmt((event?.totalFlops ?? job.flops.total) / 1e9, 2)}`],
    ['GFLOP/s', fmt(event?.gflops ?? job.gflops)],
    ['shape', shapeText(job.shape)],
    ['mask', maskText(job.options ?? {})],
    ['tiles of', job.blockQ ? `${job.blockQ} rows × ${job.blockK} keys` : '–'],
    ['elapsed', elapsed === undefined ? '–' : `${fmt(elapsed, 2)} s`],
    ['workers', `${job.workers} (${job.backends.join(', ') || '–'})`],
  ];
  if (job.error) rows.push(['error', job.error]);
  $('job-numbers').replaceChildren(
    ...rows.flatMap(([name, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = name;
      const dd = document.createElement('dd');
      dd.textContent = value;
      dd.dataset.name = name;
      return [dt, dd];
    }),
  );
}

function setState(state) {
  $('job-state').textContent = state;
  $('job-state').className = `state ${state}`;
  $('grid').className = state;
}

/** Reads a server-sent event stream from fetch (EventSource cannot send the Authorization header). */
async function* events(response, signal) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) yield { event, data: JSON.parse(data) };
    }
  }
}

async function follow(id) {
  stream?.abort();
  const controller = new AbortController();
  stream = controller;
  selected = id;
  for (const tr of $('job-rows').children) tr.classList.toggle('selected', tr.dataset.id === id);
  const response = await api(`/v1/jobs/${encodeURIComponent(id)}`);
  if (!response.ok) return;
  let job = await response.json();
  $('job').hidden = false;
  $('job-id').textContent = id;
  setState(job.state);
  const grid = $('grid');
  // q-blocks are numbered batch, head, block: one row per (batch, head).
  const perHead = job.shape && job.blockQ ? Math.ceil(job.shape.Sq / job.blockQ) : 0;
  grid.style.gridTemplateColumns = perHead ? `repeat(${perHead}, 12px)` : '';
  grid.replaceChildren(
    ...Array.from({ length: job.qBlocks ?? 0 }, (_, i) => {
      const cell = document.createElement('span');
      cell.className = 'cell';
      cell.title = perHead ? `batch·head ${Math.floor(i / perHead)}, rows ${(i % perHead) * job.blockQ}…` : `q-block ${i}`;
      return cell;
    }),
  );
  showNumbers(job);
  void showInspect(job, api);
  try {
    const sse = await api(`/v1/jobs/${encodeURIComponent(id)}/events`, { signal: controller.signal });
    for await (const { event, data } of events(sse, controller.signal)) {
      if (event === 'progress') {
        for (const i of data.reduced) grid.children[i]?.classList.add('done');
        setState(data.state);
        showNumbers(job, data);
      } else if (event === 'done' || event === 'failed') {
        job = data;
        if (job.state === 'done') for (const cell of grid.children) cell.classList.add('done');
        setState(job.state);
        showNumbers(job);
        if (selected === id) void showInspect(job, api);
        void refresh();
      }
    }
  } catch (error) {
    if (error.name !== 'AbortError') console.error(error);
  }
}

$('sign-in').addEventListener('submit', (e) => {
  e.preventDefault();
  signIn($('key').value).catch((error) => ($('sign-in-error').textContent = error.message));
});
$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem('longattn-key');
  location.reload();
});
setInterval(() => void refresh(), 2000);
if (key) signIn(key).catch(() => sessionStorage.removeItem('longattn-key'));
