#!/usr/bin/env node
// Reads the fixtures written by generate.js back and checks them end to end:
//  - tfjs/model.json + shards load with tf.loadLayersModel and reproduce the outputs;
//  - every .h5 file is read with h5wasm the way Keras's legacy loader reads it
//    (layer_names / weight_names attributes, split NAME0.. chunks, datasets at
//    <layer>/<weight_name>), its weights are loaded by order into a fresh model
//    and that model must reproduce features.f32 (and probs.f32).
//
//   node verify.js --out DIR [--case NAME ...]

import * as tf from '@tensorflow/tfjs';
import * as h5wasm from 'h5wasm/node';
import fs from 'node:fs';
import path from 'node:path';
import { quietTf } from './tfjs-keras-compat.js';

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function relDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2 + b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

function loadTfjsArtifacts(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [];
  const buffers = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return { modelTopology: json.modelTopology, weightSpecs: specs, weightData, format: json.format };
}

// Keras's load_attributes_from_hdf5_group: NAME, or NAME0, NAME1, ... concatenated.
function readStringList(obj, name) {
  const attrs = obj.attrs;
  const norm = (v) => {
    if (v == null) return [];
    if (ArrayBuffer.isView(v)) {
      if (v.length !== 0) throw new Error(`${name}: numeric attribute with ${v.length} values`);
      return [];
    }
    return Array.isArray(v) ? v : [v];
  };
  if (name in attrs) return { list: norm(attrs[name].value), chunks: 0, meta: attrs[name].metadata };
  const list = [];
  let k = 0;
  let meta = null;
  while (`${name}${k}` in attrs) {
    list.push(...norm(attrs[`${name}${k}`].value));
    meta = attrs[`${name}${k}`].metadata;
    k++;
  }
  if (k === 0) throw new Error(`attribute ${name} missing on ${obj.path}`);
  return { list, chunks: k, meta };
}

// A dataset's values as numbers (an int64 count comes as a BigInt scalar).
function numbers(value) {
  return ArrayBuffer.isView(value) || Array.isArray(value) ? Array.from(value, Number) : [Number(value)];
}

function arraysEqual(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

async function freshModel(artifacts) {
  // Same topology, weights left at their (random) initial values.
  return tf.models.modelFromJSON({ modelTopology: artifacts.modelTopology });
}

function predict(model, input, manifest) {
  const featLayer = model.getLayer(manifest.feature_layer);
  const outputs = manifest.include_top ? [featLayer.output, model.outputs[0]] : [featLayer.output];
  const m = tf.model({ inputs: model.inputs, outputs });
  let r = m.predict(input);
  if (!Array.isArray(r)) r = [r];
  return r;
}

function compareOutputs(what, outs, expected, problems) {
  const names = ['features', ...(expected.probs ? ['probs'] : [])];
  names.forEach((n, i) => {
    const got = outs[i].dataSync();
    const d = relDiff(got, expected[n]);
    if (!(d < 1e-5)) problems.push(`${what}: ${n} rel diff ${d}`);
  });
  outs.forEach((t) => t.dispose());
}

async function verifyCase(outRoot, name) {
  const dir = path.join(outRoot, name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const problems = [];
  const notes = [];
  const S = manifest.input_size;
  const input = tf.tensor(readF32(path.join(dir, 'input.f32')), [manifest.batch, S, S, 3]);
  const expected = { features: readF32(path.join(dir, 'features.f32')) };
  if (manifest.files.probs) expected.probs = readF32(path.join(dir, 'probs.f32'));
  const pooled = readF32(path.join(dir, 'pooled.f32'));
  const fsz = manifest.feature_shape.reduce((a, b) => a * b, 1);
  if (expected.features.length !== fsz) problems.push(`features.f32 has ${expected.features.length} values, expected ${fsz}`);
  {
    const [N, H, W, C] = manifest.feature_shape;
    const p = new Float32Array(N * C);
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) s += expected.features[((n * H + y) * W + x) * C + c];
        p[n * C + c] = s / (H * W);
      }
    const d = relDiff(p, pooled);
    if (!(d < 1e-6)) problems.push(`pooled.f32 is not the mean of features.f32 (rel diff ${d})`);
  }

  // 1. tfjs model
  const artifacts = loadTfjsArtifacts(path.join(dir, 'tfjs'));
  const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  compareOutputs('tfjs/model.json', predict(model, input, manifest), expected, problems);
  const layerNames = model.layers.map((l) => l.name);
  if (!arraysEqual(layerNames, manifest.layer_names)) problems.push('tfjs layer order differs from manifest.layer_names');
  if (model.countParams() !== manifest.params.total) problems.push('tfjs params differ from manifest');
  const reference = new Map(model.layers.map((l) => [l.name, l.getWeights().map((w) => w.dataSync())]));

  // 2. HDF5 files
  for (const [key, info] of Object.entries(manifest.files)) {
    if (!info.path || !info.path.endsWith('.h5')) continue;
    const f = new h5wasm.File(path.join(dir, info.path), 'r');
    try {
      const root = key === 'keras_model' ? f.get('model_weights') : f;
      if (key === 'keras_model') {
        const cfg = JSON.parse(f.attrs.model_config.value);
        const names = cfg.config.layers.map((l) => l.name);
        if (!arraysEqual(names, manifest.layer_names)) problems.push(`${info.path}: model_config layers differ`);
        for (const a of ['keras_version', 'backend']) if (!(a in f.attrs)) problems.push(`${info.path}: root attr ${a} missing`);
      }
      if (key === 'keras1') {
        if ('keras_version' in root.attrs) problems.push(`${info.path}: has keras_version (a Keras 1 file has none)`);
      } else {
        if (root.attrs.keras_version?.value !== '2.2.4') problems.push(`${info.path}: keras_version ${root.attrs.keras_version?.value}`);
        if (root.attrs.backend?.value !== 'tensorflow') problems.push(`${info.path}: backend ${root.attrs.backend?.value}`);
      }
      const { list: fileLayers, chunks, meta } = readStringList(root, 'layer_names');
      const wantLayers = info.layer_names ?? manifest.layer_names;
      if (!arraysEqual(fileLayers, wantLayers)) problems.push(`${info.path}: layer_names differ`);
      if (key === 'keras_split' && chunks !== info.chunks.layer_names) problems.push(`${info.path}: ${chunks} layer_names chunks`);
      if (key !== 'keras_split' && chunks !== 0) problems.push(`${info.path}: layer_names unexpectedly split`);
      notes.push(`${info.path}: layer_names ${meta.vlen ? 'variable-length' : `fixed-length ${meta.size}`} ${meta.cset === 0 ? 'ASCII' : 'UTF-8'} strpad ${meta.strpad}${chunks ? `, ${chunks} chunks` : ''}`);

      // Keras legacy load (by order): layers whose weight_names is non-empty, in file order. A nested model
      // (info.nested: layer -> model) is one group holding its layers' weights as "<layer>/<param>:0".
      const nested = info.nested ?? {};
      const entries = [];
      manifest.layers.forEach((layer) => {
        const container = nested[layer.name];
        const last = entries[entries.length - 1];
        if (container && last && last.name === container) last.layers.push(layer);
        else entries.push({ name: container ?? layer.name, layers: [layer], nested: !!container });
      });
      const fileWeights = [];
      fileLayers.forEach((ln, i) => {
        const g = root.get(ln);
        const entry = entries[i];
        if (!g || !entry) {
          problems.push(`${info.path}: no group ${ln}`);
          return;
        }
        const { list: wn } = readStringList(g, 'weight_names');
        const ref = entry.layers.flatMap((l) => reference.get(l.name));
        const expectedWeights = entry.layers.flatMap((l) => l.weights.map((w) => ({ layer: entry.nested ? l.name : ln, ...w })));
        if (wn.length !== ref.length) {
          problems.push(`${info.path}: ${ln} has ${wn.length} weights, expected ${ref.length}`);
          return;
        }
        wn.forEach((n, j) => {
          const w = expectedWeights[j];
          const want = key === 'keras1' ? `${ln}_${{ kernel: 'W', bias: 'b' }[w.name]}_1:0` : `${w.layer}/${w.name}:0`;
          if (n !== want) problems.push(`${info.path}: weight name ${n}, expected ${want}`);
          const ds = g.get(n);
          if (!ds) {
            problems.push(`${info.path}: dataset ${ln}/${n} missing`);
            return;
          }
          const count = w.name === 'count';
          if (ds.dtype !== (count ? '<q' : '<f')) problems.push(`${info.path}: ${ln}/${n} dtype ${ds.dtype}`);
          const v = numbers(ds.value);
          if (!arraysEqual(ds.shape, w.shape)) problems.push(`${info.path}: ${ln}/${n} shape ${ds.shape}`);
          if (!arraysEqual(v, Array.from(ref[j]))) problems.push(`${info.path}: ${ln}/${n} values differ from tfjs`);
        });
        // One set per layer, as the fresh model's weighted layers come.
        let k = 0;
        for (const l of entry.layers) {
          if (l.weights.length) fileWeights.push(wn.slice(k, k + l.weights.length).map((n) => g.get(n)));
          k += l.weights.length;
        }
      });
      // Load by order into a fresh model and run it.
      const fresh = await freshModel(artifacts);
      const weighted = fresh.layers.filter((l) => l.weights.length > 0);
      if (weighted.length !== fileWeights.length) {
        problems.push(`${info.path}: ${fileWeights.length} weighted layers in file, model has ${weighted.length}`);
      } else {
        weighted.forEach((l, i) => {
          const ts = fileWeights[i].map((ds) => tf.tensor(Float32Array.from(numbers(ds.value)), ds.shape, 'float32'));
          l.setWeights(ts);
          ts.forEach((t) => t.dispose());
        });
        compareOutputs(`${info.path} loaded by order`, predict(fresh, input, manifest), expected, problems);
      }
      fresh.layers.forEach((l) => l.weights.forEach((w) => w.dispose()));
    } finally {
      f.close();
    }
  }
  input.dispose();
  model.layers.forEach((l) => l.weights.forEach((w) => w.dispose()));
  return { problems, notes };
}

async function main() {
  const argv = process.argv.slice(2);
  let out = null;
  const cases = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i];
    else if (argv[i] === '--case') cases.push(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!out) {
    console.log('usage: node verify.js --out DIR [--case NAME ...]');
    process.exit(2);
  }
  await quietTf();
  await h5wasm.ready;
  const all = fs.readdirSync(out).filter((d) => fs.existsSync(path.join(out, d, 'manifest.json'))).sort();
  const selected = cases.length ? all.filter((d) => cases.includes(d)) : all;
  if (!selected.length) throw new Error(`no cases found in ${out}`);
  let failed = 0;
  for (const name of selected) {
    const t0 = Date.now();
    const { problems, notes } = await verifyCase(out, name);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (problems.length) {
      failed++;
      console.log(`FAIL ${name} (${secs}s)\n  ${problems.slice(0, 20).join('\n  ')}`);
    } else {
      console.log(`ok   ${name} (${secs}s): ${notes.join('; ')}`);
    }
  }
  console.log(`${selected.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(`verify.js: FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
