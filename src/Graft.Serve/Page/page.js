'use strict';
// The try-it page: photos dropped, picked or taken with the webcam go to predict (relative URLs: the page works
// wherever the endpoints are mapped); each answer is shown as the top classes with their confidences, and, when the
// model gives them, "unknown" and a heat map. No external scripts, fonts or images: it works offline.
const $ = id => document.getElementById(id);
let key = sessionStorage.getItem('graft-key') || '';
let models = [];

function status(text, error = false) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: key ? { Authorization: 'Bearer ' + key } : {} });
  if (response.status === 401) {
    $('key').hidden = false;
    throw new Error('This server needs an API key: enter it above.');
  }
  const body = await response.json().catch(() => ({ error: response.status + ' ' + response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function element(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

const percent = p => (100 * p).toFixed(1) + '%';

async function loadModels() {
  models = (await api('models')).models;
  const select = $('model');
  select.replaceChildren(...models.map(m => { const o = element('option', '', m.name); o.value = m.name; return o; }));
  modelChanged();
}

function modelChanged() {
  const model = models.find(m => m.name === $('model').value) || models[0];
  const top = $('top'), keep = Number(top.value) || 3, count = model.classes.length;
  top.replaceChildren(...model.classes.map((_, i) => element('option', '', String(i + 1))));
  top.value = String(Math.min(keep, count));
  $('classes').textContent = count + ' classes: ' + model.classes.slice(0, 8).join(', ') + (count > 8 ? ', …' : '');
}

async function predict(blob, name) {
  const form = new FormData();
  form.append('file', blob, name);
  const query = new URLSearchParams({ top: $('top').value });
  if ($('model').value) query.set('model', $('model').value);
  const answer = await api('predict?' + query, { method: 'POST', body: form });
  if (answer.predictions.length === 0) throw new Error(answer.skipped.map(s => s.path + ': ' + s.reason).join('; '));
  return answer.predictions[0];
}

/** A heat map as the model gives it: an image (data URL or base64 PNG), rows of numbers, or {width, height, values}. */
function heatLayer(heat) {
  if (typeof heat === 'string') {
    const img = element('img', 'heat');
    img.alt = 'heat map';
    img.src = heat.startsWith('data:') ? heat : 'data:image/png;base64,' + heat;
    return img;
  }
  const rows = Array.isArray(heat) ? heat : heat && Array.isArray(heat.values)
    ? Array.from({ length: heat.height }, (_, y) => heat.values.slice(y * heat.width, (y + 1) * heat.width)) : null;
  if (!rows || rows.length === 0) return null;
  const canvas = element('canvas', 'heat');
  canvas.width = rows[0].length;
  canvas.height = rows.length;
  const flat = rows.flat(), low = Math.min(...flat), high = Math.max(...flat), context = canvas.getContext('2d');
  const pixels = context.createImageData(canvas.width, canvas.height);
  flat.forEach((v, i) => {
    const t = high > low ? (v - low) / (high - low) : 0;
    pixels.data.set([255, Math.round(255 * (1 - t)), Math.round(255 * (1 - t) * (1 - t)), 255], 4 * i);
  });
  context.putImageData(pixels, 0, 0);
  return canvas;
}

function show(card, picture, name, prediction) {
  const unknown = prediction.unknown === true;
  card.dataset.file = name;
  card.dataset.label = prediction.label;
  if (unknown) card.dataset.unknown = 'true';
  const frame = element('div', 'picture');
  if (picture) frame.append(picture);
  const heat = prediction.heat_map ?? prediction.heatmap;
  const layer = heat ? heatLayer(heat) : null;
  if (layer) frame.append(layer);
  const title = element('h2', unknown ? 'unknown' : '', unknown ? 'unknown' : prediction.label);
  if (unknown) title.title = 'The model is not confident this is any of its classes; closest: ' + prediction.label;
  const rows = prediction.top.map(t => {
    const bar = element('div', 'bar'), fill = element('div');
    fill.style.width = percent(t.probability);
    bar.append(fill);
    const row = element('div', 'row');
    row.append(element('span', 'label', t.label), bar, element('span', 'value', percent(t.probability)));
    return row;
  });
  card.replaceChildren(frame, title, element('p', 'file', name), ...rows);
}

async function predictFile(file) {
  const card = element('article', 'result');
  const img = element('img');
  img.alt = file.name;
  img.src = URL.createObjectURL(file);
  card.append(img, element('p', 'file', file.name + ': predicting…'));
  $('results').prepend(card);
  try {
    show(card, img, file.name, await predict(file, file.name));
  } catch (e) {
    card.dataset.error = e.message;
    card.replaceChildren(img, element('p', 'file', file.name), element('p', 'error', e.message));
  }
}

async function predictFiles(files) {
  const images = [...files];
  if (images.length === 0) return;
  status('Predicting ' + images.length + (images.length === 1 ? ' photo…' : ' photos…'));
  await Promise.all(images.map(predictFile));
  status('');
}

let stream = null;

async function startCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (e) {
    status('The webcam could not be opened: ' + e.message, true);
    return;
  }
  $('video').srcObject = stream;
  $('webcam').hidden = false;
  $('camera').disabled = true;
  const canvas = element('canvas');
  while (stream) {
    const video = $('video');
    if (video.videoWidth > 0) {
      const scale = Math.min(1, 512 / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise(done => canvas.toBlob(done, 'image/jpeg', 0.85));
      try {
        const prediction = await predict(blob, 'webcam.jpg');
        if (stream) show($('live'), null, 'webcam', prediction);
      } catch (e) {
        status(e.message, true);
      }
    }
    await new Promise(done => setTimeout(done, 250));
  }
}

function stopCamera() {
  if (stream) stream.getTracks().forEach(t => t.stop());
  stream = null;
  $('webcam').hidden = true;
  $('camera').disabled = false;
}

$('files').addEventListener('change', e => { predictFiles(e.target.files); e.target.value = ''; });
$('model').addEventListener('change', modelChanged);
$('camera').addEventListener('click', startCamera);
$('stop').addEventListener('click', stopCamera);
if (!navigator.mediaDevices || !window.isSecureContext) {
  $('camera').disabled = true;
  $('camera').title = 'The webcam needs the page over https, or from this machine (localhost).';
}
const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => { e.preventDefault(); drop.classList.remove('over'); predictFiles(e.dataTransfer.files); });
$('key').addEventListener('submit', e => {
  e.preventDefault();
  key = $('key-value').value.trim();
  sessionStorage.setItem('graft-key', key);
  $('key').hidden = true;
  start();
});

async function start() {
  try {
    await loadModels();
    status('');
  } catch (e) {
    status(e.message, true);
  }
}
start();
