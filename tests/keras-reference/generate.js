#!/usr/bin/env node
// Independent reference implementation of keras.applications networks in
// tfjs-layers (pure-JS CPU backend). Builds each architecture with seeded
// random weights at a small input, runs it, and writes test fixtures:
// TF.js layers model, Keras legacy HDF5 weight files, inputs and outputs.
//
//   node generate.js --out DIR [--case NAME ...]   (no --case: all cases)
//   node generate.js --list                        (list the cases)
//   node generate.js --verify-params               (build at 224, check Keras's published totals)
//
// See README.md beside this file.

import * as tf from '@tensorflow/tfjs';
import * as h5wasm from 'h5wasm/node';
import {
  CustomScaleLayer, KerasGlobalAveragePooling2D, KerasGroupedConv2D, KerasLayerScale, KerasNormalization, KerasScalarOp, quietTf,
} from './tfjs-keras-compat.js';
import fs from 'node:fs';
import path from 'node:path';

// ---------------------------------------------------------------------------
// Seeded random numbers
// ---------------------------------------------------------------------------

function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  constructor(seed) {
    this.u = mulberry32(seed);
    this.spare = null;
  }
  uniform(lo, hi) {
    return lo + (hi - lo) * this.u();
  }
  normal() {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u1 = this.u();
    while (u1 <= 1e-12) u1 = this.u();
    const u2 = this.u();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
  fillUniform(n, lo, hi) {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
  fillNormal(n, std) {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = std * this.normal();
    return a;
  }
}

// ---------------------------------------------------------------------------
// Graph builder: Keras-style auto names, records every op so the network can
// also be executed eagerly layer by layer (used to calibrate the weights).
// ---------------------------------------------------------------------------

const AUTO_PREFIX = {
  conv2d: 'conv2d',
  batchNormalization: 'batch_normalization',
  activation: 'activation',
  maxPooling2d: 'max_pooling2d',
  averagePooling2d: 'average_pooling2d',
  concatenate: 'concatenate',
  add: 'add',
  zeroPadding2d: 'zero_padding2d',
  depthwiseConv2d: 'depthwise_conv2d',
  separableConv2d: 'separable_conv2d',
  reLU: 're_lu',
  dropout: 'dropout',
  reshape: 'reshape',
  dense: 'dense',
  globalAveragePooling2d: 'global_average_pooling2d',
  cropping2D: 'cropping2d',
  customScale: 'custom_scale_layer',
  multiply: 'multiply',
  flatten: 'flatten',
  rescaling: 'rescaling',
  layerNormalization: 'layer_normalization',
};

// Layers tfjs lacks or builds differently, by kind (see tfjs-keras-compat.js).
const COMPAT_LAYERS = { globalAveragePooling2d: KerasGlobalAveragePooling2D, customScale: CustomScaleLayer };

// The Keras class a layer stands for: tfjs's own, or what a compat layer emulates.
function kerasClass(l) {
  return l.kerasClassName ?? l.getClassName();
}

class Builder {
  // autoBase 0: tf.keras 2.x / Keras 3 (conv2d, conv2d_1, ...)
  // autoBase 1: Keras 2.0 - 2.2 (conv2d_1, conv2d_2, ...)
  constructor(size, autoBase) {
    this.autoBase = autoBase;
    this.counters = {};
    this.ops = [];
    this.input = tf.input({ shape: [size, size, 3], name: 'input_1', dtype: 'float32' });
    // Layers Keras keeps inside a nested model (ConvNeXt's Sequential stem and
    // downsampling blocks): layer name -> the nested model's name.
    this.nested = {};
  }
  autoName(kind) {
    const prefix = AUTO_PREFIX[kind];
    if (!prefix) throw new Error(`no auto-name prefix for ${kind}`);
    const n = this.counters[prefix] ?? 0;
    this.counters[prefix] = n + 1;
    const idx = n + this.autoBase;
    return idx === 0 ? prefix : `${prefix}_${idx}`;
  }
  L(kind, args, inputs) {
    const a = { ...args };
    if (a.name == null) a.name = this.autoName(kind);
    const layer = COMPAT_LAYERS[kind] ? new COMPAT_LAYERS[kind](a) : tf.layers[kind](a);
    const out = layer.apply(inputs);
    this.ops.push({ layer, inputs: Array.isArray(inputs) ? inputs : [inputs], output: out });
    return out;
  }
  // A compat layer (tfjs-keras-compat.js) standing for a Keras class tfjs lacks; named explicitly.
  custom(Cls, args, inputs) {
    if (args.name == null) throw new Error(`${Cls.className} needs a name`);
    const layer = new Cls(args);
    const out = layer.apply(inputs);
    this.ops.push({ layer, inputs: Array.isArray(inputs) ? inputs : [inputs], output: out });
    return out;
  }
  // Shorthands following keras.layers signatures.
  conv(x, filters, kernel, o = {}) {
    return this.L('conv2d', {
      filters,
      kernelSize: kernel,
      strides: o.strides ?? 1,
      padding: o.padding ?? 'valid',
      useBias: o.useBias ?? true,
      activation: o.activation ?? 'linear',
      kernelInitializer: o.kernelInitializer ?? 'glorotUniform',
      name: o.name,
    }, x);
  }
  bn(x, o = {}) {
    return this.L('batchNormalization', {
      axis: o.axis ?? -1,
      epsilon: o.epsilon ?? 1e-3,
      momentum: o.momentum ?? 0.99,
      scale: o.scale ?? true,
      center: true,
      name: o.name,
    }, x);
  }
  act(x, activation, name) {
    return this.L('activation', { activation, name }, x);
  }
  relu6(x, name) {
    return this.L('reLU', { maxValue: 6, name }, x);
  }
  zpad(x, padding, name) {
    return this.L('zeroPadding2d', { padding, name }, x);
  }
  maxPool(x, pool, strides, padding = 'valid', name) {
    return this.L('maxPooling2d', { poolSize: pool, strides, padding, name }, x);
  }
  avgPool(x, pool, strides, padding = 'valid', name) {
    return this.L('averagePooling2d', { poolSize: pool, strides, padding, name }, x);
  }
  add(xs, name) {
    return this.L('add', { name }, xs);
  }
  concat(xs, axis, name) {
    return this.L('concatenate', { axis, name }, xs);
  }
  dw(x, kernel, o = {}) {
    return this.L('depthwiseConv2d', {
      kernelSize: kernel,
      strides: o.strides ?? 1,
      padding: o.padding ?? 'valid',
      depthMultiplier: o.depthMultiplier ?? 1,
      useBias: o.useBias ?? true,
      name: o.name,
    }, x);
  }
  sep(x, filters, kernel, o = {}) {
    return this.L('separableConv2d', {
      filters,
      kernelSize: kernel,
      strides: o.strides ?? 1,
      padding: o.padding ?? 'valid',
      useBias: o.useBias ?? true,
      name: o.name,
    }, x);
  }
}

// ---------------------------------------------------------------------------
// Architectures (transcribed from keras/src/applications/*.py and, for the
// legacy ResNet50, keras-applications resnet50.py). Channels last.
// Each returns { features } (the last feature map) and optionally { top }.
// ---------------------------------------------------------------------------

function vgg(b, convsPerBlock) {
  let x = b.input;
  const filters = [64, 128, 256, 512, 512];
  for (let blk = 1; blk <= 5; blk++) {
    for (let c = 1; c <= convsPerBlock[blk - 1]; c++) {
      x = b.conv(x, filters[blk - 1], [3, 3], { activation: 'relu', padding: 'same', name: `block${blk}_conv${c}` });
    }
    x = b.maxPool(x, [2, 2], [2, 2], 'valid', `block${blk}_pool`);
  }
  return { features: x };
}
const VGG16 = (b) => vgg(b, [2, 2, 3, 3, 3]);
const VGG19 = (b) => vgg(b, [2, 2, 4, 4, 4]);

// keras/src/applications/resnet.py: ResNet(..., preact=False, use_bias=True), residual_block_v1.
function ResNet50(b) {
  const eps = 1.001e-5;
  const block1 = (x, filters, { kernel = 3, stride = 1, convShortcut = true, name }) => {
    let shortcut;
    if (convShortcut) {
      shortcut = b.conv(x, 4 * filters, 1, { strides: stride, name: `${name}_0_conv` });
      shortcut = b.bn(shortcut, { axis: 3, epsilon: eps, name: `${name}_0_bn` });
    } else {
      shortcut = x;
    }
    x = b.conv(x, filters, 1, { strides: stride, name: `${name}_1_conv` });
    x = b.bn(x, { axis: 3, epsilon: eps, name: `${name}_1_bn` });
    x = b.act(x, 'relu', `${name}_1_relu`);
    x = b.conv(x, filters, kernel, { padding: 'same', name: `${name}_2_conv` });
    x = b.bn(x, { axis: 3, epsilon: eps, name: `${name}_2_bn` });
    x = b.act(x, 'relu', `${name}_2_relu`);
    x = b.conv(x, 4 * filters, 1, { name: `${name}_3_conv` });
    x = b.bn(x, { axis: 3, epsilon: eps, name: `${name}_3_bn` });
    x = b.add([shortcut, x], `${name}_add`);
    x = b.act(x, 'relu', `${name}_out`);
    return x;
  };
  const stack1 = (x, filters, blocks, stride1, name) => {
    x = block1(x, filters, { stride: stride1, name: `${name}_block1` });
    for (let i = 2; i <= blocks; i++) x = block1(x, filters, { convShortcut: false, name: `${name}_block${i}` });
    return x;
  };
  let x = b.zpad(b.input, [[3, 3], [3, 3]], 'conv1_pad');
  x = b.conv(x, 64, 7, { strides: 2, useBias: true, name: 'conv1_conv' });
  x = b.bn(x, { axis: 3, epsilon: eps, name: 'conv1_bn' });
  x = b.act(x, 'relu', 'conv1_relu');
  x = b.zpad(x, [[1, 1], [1, 1]], 'pool1_pad');
  x = b.maxPool(x, 3, 2, 'valid', 'pool1_pool');
  x = stack1(x, 64, 3, 1, 'conv2');
  x = stack1(x, 128, 4, 2, 'conv3');
  x = stack1(x, 256, 6, 2, 'conv4');
  x = stack1(x, 512, 3, 2, 'conv5');
  return { features: x };
}

// keras-applications resnet50.py (Keras 2.x legacy names). BN epsilon is the
// Keras default 1e-3; activations, adds and the max pooling are unnamed.
// poolPad=true: keras-applications >= 1.0.7 (ZeroPadding2D((1,1), 'pool1_pad')
// before the max pooling, as in the current resnet.py); poolPad=false:
// keras-applications <= 1.0.6 as shipped with Keras 2.2.4 (no pool padding).
function ResNet50Legacy(b, { poolPad }) {
  const identityBlock = (input, kernel, [f1, f2, f3], stage, block) => {
    const conv = `res${stage}${block}_branch`;
    const bn = `bn${stage}${block}_branch`;
    let x = b.conv(input, f1, [1, 1], { kernelInitializer: 'heNormal', name: `${conv}2a` });
    x = b.bn(x, { axis: 3, name: `${bn}2a` });
    x = b.act(x, 'relu');
    x = b.conv(x, f2, kernel, { padding: 'same', kernelInitializer: 'heNormal', name: `${conv}2b` });
    x = b.bn(x, { axis: 3, name: `${bn}2b` });
    x = b.act(x, 'relu');
    x = b.conv(x, f3, [1, 1], { kernelInitializer: 'heNormal', name: `${conv}2c` });
    x = b.bn(x, { axis: 3, name: `${bn}2c` });
    x = b.add([x, input]);
    return b.act(x, 'relu');
  };
  const convBlock = (input, kernel, [f1, f2, f3], stage, block, strides = [2, 2]) => {
    const conv = `res${stage}${block}_branch`;
    const bn = `bn${stage}${block}_branch`;
    let x = b.conv(input, f1, [1, 1], { strides, kernelInitializer: 'heNormal', name: `${conv}2a` });
    x = b.bn(x, { axis: 3, name: `${bn}2a` });
    x = b.act(x, 'relu');
    x = b.conv(x, f2, kernel, { padding: 'same', kernelInitializer: 'heNormal', name: `${conv}2b` });
    x = b.bn(x, { axis: 3, name: `${bn}2b` });
    x = b.act(x, 'relu');
    x = b.conv(x, f3, [1, 1], { kernelInitializer: 'heNormal', name: `${conv}2c` });
    x = b.bn(x, { axis: 3, name: `${bn}2c` });
    let shortcut = b.conv(input, f3, [1, 1], { strides, kernelInitializer: 'heNormal', name: `${conv}1` });
    shortcut = b.bn(shortcut, { axis: 3, name: `${bn}1` });
    x = b.add([x, shortcut]);
    return b.act(x, 'relu');
  };
  let x = b.zpad(b.input, [[3, 3], [3, 3]], 'conv1_pad');
  x = b.conv(x, 64, [7, 7], { strides: [2, 2], padding: 'valid', kernelInitializer: 'heNormal', name: 'conv1' });
  x = b.bn(x, { axis: 3, name: 'bn_conv1' });
  x = b.act(x, 'relu');
  if (poolPad) x = b.zpad(x, [[1, 1], [1, 1]], 'pool1_pad');
  x = b.maxPool(x, [3, 3], [2, 2]);

  x = convBlock(x, 3, [64, 64, 256], 2, 'a', [1, 1]);
  x = identityBlock(x, 3, [64, 64, 256], 2, 'b');
  x = identityBlock(x, 3, [64, 64, 256], 2, 'c');

  x = convBlock(x, 3, [128, 128, 512], 3, 'a');
  for (const blk of ['b', 'c', 'd']) x = identityBlock(x, 3, [128, 128, 512], 3, blk);

  x = convBlock(x, 3, [256, 256, 1024], 4, 'a');
  for (const blk of ['b', 'c', 'd', 'e', 'f']) x = identityBlock(x, 3, [256, 256, 1024], 4, blk);

  x = convBlock(x, 3, [512, 512, 2048], 5, 'a');
  for (const blk of ['b', 'c']) x = identityBlock(x, 3, [512, 512, 2048], 5, blk);
  return { features: x };
}

// keras/src/applications/inception_v3.py. conv2d_bn: Conv2D(use_bias=False),
// BatchNormalization(axis=3, scale=False) (epsilon default 1e-3), Activation relu; all unnamed.
function InceptionV3(b) {
  const ch = 3;
  const cbn = (x, filters, rows, cols, padding = 'same', strides = [1, 1]) => {
    x = b.conv(x, filters, [rows, cols], { strides, padding, useBias: false });
    x = b.bn(x, { axis: 3, scale: false });
    return b.act(x, 'relu');
  };
  let x = cbn(b.input, 32, 3, 3, 'valid', [2, 2]);
  x = cbn(x, 32, 3, 3, 'valid');
  x = cbn(x, 64, 3, 3);
  x = b.maxPool(x, [3, 3], [2, 2]);
  x = cbn(x, 80, 1, 1, 'valid');
  x = cbn(x, 192, 3, 3, 'valid');
  x = b.maxPool(x, [3, 3], [2, 2]);

  // mixed 0, 1, 2
  for (const [i, poolFilters] of [[0, 32], [1, 64], [2, 64]]) {
    const branch1x1 = cbn(x, 64, 1, 1);
    let branch5x5 = cbn(x, 48, 1, 1);
    branch5x5 = cbn(branch5x5, 64, 5, 5);
    let branch3x3dbl = cbn(x, 64, 1, 1);
    branch3x3dbl = cbn(branch3x3dbl, 96, 3, 3);
    branch3x3dbl = cbn(branch3x3dbl, 96, 3, 3);
    let branchPool = b.avgPool(x, [3, 3], [1, 1], 'same');
    branchPool = cbn(branchPool, poolFilters, 1, 1);
    x = b.concat([branch1x1, branch5x5, branch3x3dbl, branchPool], ch, `mixed${i}`);
  }

  // mixed 3
  {
    const branch3x3 = cbn(x, 384, 3, 3, 'valid', [2, 2]);
    let branch3x3dbl = cbn(x, 64, 1, 1);
    branch3x3dbl = cbn(branch3x3dbl, 96, 3, 3);
    branch3x3dbl = cbn(branch3x3dbl, 96, 3, 3, 'valid', [2, 2]);
    const branchPool = b.maxPool(x, [3, 3], [2, 2]);
    x = b.concat([branch3x3, branch3x3dbl, branchPool], ch, 'mixed3');
  }

  // mixed 4 (128), 5, 6 (160), 7 (192)
  for (const [i, f] of [[4, 128], [5, 160], [6, 160], [7, 192]]) {
    const branch1x1 = cbn(x, 192, 1, 1);
    let branch7x7 = cbn(x, f, 1, 1);
    branch7x7 = cbn(branch7x7, f, 1, 7);
    branch7x7 = cbn(branch7x7, 192, 7, 1);
    let branch7x7dbl = cbn(x, f, 1, 1);
    branch7x7dbl = cbn(branch7x7dbl, f, 7, 1);
    branch7x7dbl = cbn(branch7x7dbl, f, 1, 7);
    branch7x7dbl = cbn(branch7x7dbl, f, 7, 1);
    branch7x7dbl = cbn(branch7x7dbl, 192, 1, 7);
    let branchPool = b.avgPool(x, [3, 3], [1, 1], 'same');
    branchPool = cbn(branchPool, 192, 1, 1);
    x = b.concat([branch1x1, branch7x7, branch7x7dbl, branchPool], ch, `mixed${i}`);
  }

  // mixed 8
  {
    let branch3x3 = cbn(x, 192, 1, 1);
    branch3x3 = cbn(branch3x3, 320, 3, 3, 'valid', [2, 2]);
    let branch7x7x3 = cbn(x, 192, 1, 1);
    branch7x7x3 = cbn(branch7x7x3, 192, 1, 7);
    branch7x7x3 = cbn(branch7x7x3, 192, 7, 1);
    branch7x7x3 = cbn(branch7x7x3, 192, 3, 3, 'valid', [2, 2]);
    const branchPool = b.maxPool(x, [3, 3], [2, 2]);
    x = b.concat([branch3x3, branch7x7x3, branchPool], ch, 'mixed8');
  }

  // mixed 9, 10
  for (let i = 0; i < 2; i++) {
    const branch1x1 = cbn(x, 320, 1, 1);
    let branch3x3 = cbn(x, 384, 1, 1);
    const branch3x3_1 = cbn(branch3x3, 384, 1, 3);
    const branch3x3_2 = cbn(branch3x3, 384, 3, 1);
    branch3x3 = b.concat([branch3x3_1, branch3x3_2], ch, `mixed9_${i}`);
    let branch3x3dbl = cbn(x, 448, 1, 1);
    branch3x3dbl = cbn(branch3x3dbl, 384, 3, 3);
    const branch3x3dbl_1 = cbn(branch3x3dbl, 384, 1, 3);
    const branch3x3dbl_2 = cbn(branch3x3dbl, 384, 3, 1);
    branch3x3dbl = b.concat([branch3x3dbl_1, branch3x3dbl_2], ch);
    let branchPool = b.avgPool(x, [3, 3], [1, 1], 'same');
    branchPool = cbn(branchPool, 192, 1, 1);
    x = b.concat([branch1x1, branch3x3, branch3x3dbl, branchPool], ch, `mixed${9 + i}`);
  }
  return { features: x };
}

// keras/src/applications/xception.py
function Xception(b) {
  const ax = -1;
  let x = b.conv(b.input, 32, [3, 3], { strides: [2, 2], useBias: false, name: 'block1_conv1' });
  x = b.bn(x, { axis: ax, name: 'block1_conv1_bn' });
  x = b.act(x, 'relu', 'block1_conv1_act');
  x = b.conv(x, 64, [3, 3], { useBias: false, name: 'block1_conv2' });
  x = b.bn(x, { axis: ax, name: 'block1_conv2_bn' });
  x = b.act(x, 'relu', 'block1_conv2_act');

  let residual = b.conv(x, 128, [1, 1], { strides: [2, 2], padding: 'same', useBias: false });
  residual = b.bn(residual, { axis: ax });
  x = b.sep(x, 128, [3, 3], { padding: 'same', useBias: false, name: 'block2_sepconv1' });
  x = b.bn(x, { axis: ax, name: 'block2_sepconv1_bn' });
  x = b.act(x, 'relu', 'block2_sepconv2_act');
  x = b.sep(x, 128, [3, 3], { padding: 'same', useBias: false, name: 'block2_sepconv2' });
  x = b.bn(x, { axis: ax, name: 'block2_sepconv2_bn' });
  x = b.maxPool(x, [3, 3], [2, 2], 'same', 'block2_pool');
  x = b.add([x, residual]);

  for (const [blk, f] of [[3, 256], [4, 728]]) {
    residual = b.conv(x, f, [1, 1], { strides: [2, 2], padding: 'same', useBias: false });
    residual = b.bn(residual, { axis: ax });
    x = b.act(x, 'relu', `block${blk}_sepconv1_act`);
    x = b.sep(x, f, [3, 3], { padding: 'same', useBias: false, name: `block${blk}_sepconv1` });
    x = b.bn(x, { axis: ax, name: `block${blk}_sepconv1_bn` });
    x = b.act(x, 'relu', `block${blk}_sepconv2_act`);
    x = b.sep(x, f, [3, 3], { padding: 'same', useBias: false, name: `block${blk}_sepconv2` });
    x = b.bn(x, { axis: ax, name: `block${blk}_sepconv2_bn` });
    x = b.maxPool(x, [3, 3], [2, 2], 'same', `block${blk}_pool`);
    x = b.add([x, residual]);
  }

  for (let i = 0; i < 8; i++) {
    residual = x;
    const p = `block${i + 5}`;
    for (let s = 1; s <= 3; s++) {
      x = b.act(x, 'relu', `${p}_sepconv${s}_act`);
      x = b.sep(x, 728, [3, 3], { padding: 'same', useBias: false, name: `${p}_sepconv${s}` });
      x = b.bn(x, { axis: ax, name: `${p}_sepconv${s}_bn` });
    }
    x = b.add([x, residual]);
  }

  residual = b.conv(x, 1024, [1, 1], { strides: [2, 2], padding: 'same', useBias: false });
  residual = b.bn(residual, { axis: ax });
  x = b.act(x, 'relu', 'block13_sepconv1_act');
  x = b.sep(x, 728, [3, 3], { padding: 'same', useBias: false, name: 'block13_sepconv1' });
  x = b.bn(x, { axis: ax, name: 'block13_sepconv1_bn' });
  x = b.act(x, 'relu', 'block13_sepconv2_act');
  x = b.sep(x, 1024, [3, 3], { padding: 'same', useBias: false, name: 'block13_sepconv2' });
  x = b.bn(x, { axis: ax, name: 'block13_sepconv2_bn' });
  x = b.maxPool(x, [3, 3], [2, 2], 'same', 'block13_pool');
  x = b.add([x, residual]);

  x = b.sep(x, 1536, [3, 3], { padding: 'same', useBias: false, name: 'block14_sepconv1' });
  x = b.bn(x, { axis: ax, name: 'block14_sepconv1_bn' });
  x = b.act(x, 'relu', 'block14_sepconv1_act');
  x = b.sep(x, 2048, [3, 3], { padding: 'same', useBias: false, name: 'block14_sepconv2' });
  x = b.bn(x, { axis: ax, name: 'block14_sepconv2_bn' });
  x = b.act(x, 'relu', 'block14_sepconv2_act');
  return { features: x };
}

// keras/src/applications/mobilenet.py (depth_multiplier 1, dropout 1e-3).
function MobileNet(b, { alpha, includeTop, classes = 1000, dropout = 1e-3 }) {
  const ax = -1;
  const convBlock = (x, filters, strides) => {
    filters = Math.trunc(filters * alpha);
    x = b.conv(x, filters, [3, 3], { padding: 'same', useBias: false, strides, name: 'conv1' });
    x = b.bn(x, { axis: ax, name: 'conv1_bn' });
    return b.relu6(x, 'conv1_relu');
  };
  const dwBlock = (x, pwFilters, strides, id) => {
    pwFilters = Math.trunc(pwFilters * alpha);
    const s1 = strides[0] === 1 && strides[1] === 1;
    if (!s1) x = b.zpad(x, [[0, 1], [0, 1]], `conv_pad_${id}`);
    x = b.dw(x, [3, 3], { padding: s1 ? 'same' : 'valid', depthMultiplier: 1, strides, useBias: false, name: `conv_dw_${id}` });
    x = b.bn(x, { axis: ax, name: `conv_dw_${id}_bn` });
    x = b.relu6(x, `conv_dw_${id}_relu`);
    x = b.conv(x, pwFilters, [1, 1], { padding: 'same', useBias: false, strides: [1, 1], name: `conv_pw_${id}` });
    x = b.bn(x, { axis: ax, name: `conv_pw_${id}_bn` });
    return b.relu6(x, `conv_pw_${id}_relu`);
  };
  const s2 = [2, 2];
  const s1 = [1, 1];
  let x = convBlock(b.input, 32, s2);
  x = dwBlock(x, 64, s1, 1);
  x = dwBlock(x, 128, s2, 2);
  x = dwBlock(x, 128, s1, 3);
  x = dwBlock(x, 256, s2, 4);
  x = dwBlock(x, 256, s1, 5);
  x = dwBlock(x, 512, s2, 6);
  for (let id = 7; id <= 11; id++) x = dwBlock(x, 512, s1, id);
  x = dwBlock(x, 1024, s2, 12);
  x = dwBlock(x, 1024, s1, 13);
  const features = x;
  if (!includeTop) return { features };
  x = b.L('globalAveragePooling2d', { keepdims: true }, x);
  x = b.L('dropout', { rate: dropout, name: 'dropout' }, x);
  x = b.conv(x, classes, [1, 1], { padding: 'same', name: 'conv_preds' });
  x = b.L('reshape', { targetShape: [classes], name: 'reshape_2' }, x);
  x = b.act(x, 'softmax', 'predictions');
  return { features, top: x };
}

function makeDivisible(v, divisor, minValue) {
  if (minValue == null) minValue = divisor;
  let newV = Math.max(minValue, Math.floor(Math.trunc(v + divisor / 2) / divisor) * divisor);
  if (newV < 0.9 * v) newV += divisor;
  return newV;
}

// keras/src/applications/imagenet_utils.py correct_pad: TF SAME padding for a
// k x k window at stride 2, made explicit.
function correctPad(x, k) {
  const [, h, w] = x.shape;
  const adjust = [1 - (h % 2), 1 - (w % 2)];
  const c = Math.floor(k / 2);
  return [[c - adjust[0], c], [c - adjust[1], c]];
}

// keras/src/applications/mobilenet_v2.py
function MobileNetV2(b, { alpha }) {
  const ax = -1;
  const bn = (x, name) => b.bn(x, { axis: ax, epsilon: 1e-3, momentum: 0.999, name });
  const invRes = (inputs, expansion, stride, filters, blockId) => {
    const inChannels = inputs.shape[inputs.shape.length - 1];
    const pwFilters = makeDivisible(Math.trunc(filters * alpha), 8);
    let x = inputs;
    let prefix = `block_${blockId}_`;
    if (blockId) {
      x = b.conv(x, expansion * inChannels, 1, { padding: 'same', useBias: false, name: `${prefix}expand` });
      x = bn(x, `${prefix}expand_BN`);
      x = b.relu6(x, `${prefix}expand_relu`);
    } else {
      prefix = 'expanded_conv_';
    }
    if (stride === 2) x = b.zpad(x, correctPad(x, 3), `${prefix}pad`);
    x = b.dw(x, 3, { strides: stride, useBias: false, padding: stride === 1 ? 'same' : 'valid', name: `${prefix}depthwise` });
    x = bn(x, `${prefix}depthwise_BN`);
    x = b.relu6(x, `${prefix}depthwise_relu`);
    x = b.conv(x, pwFilters, 1, { padding: 'same', useBias: false, name: `${prefix}project` });
    x = bn(x, `${prefix}project_BN`);
    if (inChannels === pwFilters && stride === 1) return b.add([inputs, x], `${prefix}add`);
    return x;
  };
  let x = b.conv(b.input, makeDivisible(32 * alpha, 8), 3, { strides: [2, 2], padding: 'same', useBias: false, name: 'Conv1' });
  x = bn(x, 'bn_Conv1');
  x = b.relu6(x, 'Conv1_relu');
  const spec = [
    [16, 1, 1], [24, 2, 6], [24, 1, 6], [32, 2, 6], [32, 1, 6], [32, 1, 6],
    [64, 2, 6], [64, 1, 6], [64, 1, 6], [64, 1, 6], [96, 1, 6], [96, 1, 6], [96, 1, 6],
    [160, 2, 6], [160, 1, 6], [160, 1, 6], [320, 1, 6],
  ];
  spec.forEach(([filters, stride, expansion], id) => { x = invRes(x, expansion, stride, filters, id); });
  const last = alpha > 1.0 ? makeDivisible(1280 * alpha, 8) : 1280;
  x = b.conv(x, last, 1, { useBias: false, name: 'Conv_1' });
  x = bn(x, 'Conv_1_bn');
  x = b.relu6(x, 'out_relu');
  return { features: x };
}

// keras/src/applications/densenet.py
function DenseNet(b, blocks) {
  const eps = 1.001e-5;
  const convBlock = (x, name) => {
    let x1 = b.bn(x, { axis: 3, epsilon: eps, name: `${name}_0_bn` });
    x1 = b.act(x1, 'relu', `${name}_0_relu`);
    x1 = b.conv(x1, 4 * 32, 1, { useBias: false, name: `${name}_1_conv` });
    x1 = b.bn(x1, { axis: 3, epsilon: eps, name: `${name}_1_bn` });
    x1 = b.act(x1, 'relu', `${name}_1_relu`);
    x1 = b.conv(x1, 32, 3, { padding: 'same', useBias: false, name: `${name}_2_conv` });
    return b.concat([x, x1], 3, `${name}_concat`);
  };
  const transition = (x, reduction, name) => {
    x = b.bn(x, { axis: 3, epsilon: eps, name: `${name}_bn` });
    x = b.act(x, 'relu', `${name}_relu`);
    x = b.conv(x, Math.trunc(x.shape[3] * reduction), 1, { useBias: false, name: `${name}_conv` });
    return b.avgPool(x, 2, 2, 'valid', `${name}_pool`);
  };
  let x = b.zpad(b.input, [[3, 3], [3, 3]]);
  x = b.conv(x, 64, 7, { strides: 2, useBias: false, name: 'conv1_conv' });
  x = b.bn(x, { axis: 3, epsilon: eps, name: 'conv1_bn' });
  x = b.act(x, 'relu', 'conv1_relu');
  x = b.zpad(x, [[1, 1], [1, 1]]);
  x = b.maxPool(x, 3, 2, 'valid', 'pool1');
  blocks.forEach((n, stage) => {
    for (let i = 1; i <= n; i++) x = convBlock(x, `conv${stage + 2}_block${i}`);
    if (stage < blocks.length - 1) x = transition(x, 0.5, `pool${stage + 2}`);
  });
  x = b.bn(x, { axis: 3, epsilon: eps, name: 'bn' });
  x = b.act(x, 'relu', 'relu');
  return { features: x };
}

// keras/src/applications/resnet.py: ResNet(..., preact=True, use_bias=True),
// residual_block_v2 / stack_residual_blocks_v2, as resnet_v2.py calls them.
function ResNetV2(b, blocks) {
  const eps = 1.001e-5;
  const block2 = (x, filters, { kernel = 3, stride = 1, convShortcut = false, name }) => {
    let preact = b.bn(x, { axis: 3, epsilon: eps, name: `${name}_preact_bn` });
    preact = b.act(preact, 'relu', `${name}_preact_relu`);
    let shortcut;
    if (convShortcut) shortcut = b.conv(preact, 4 * filters, 1, { strides: stride, name: `${name}_0_conv` });
    else shortcut = stride > 1 ? b.maxPool(x, 1, stride) : x;
    let y = b.conv(preact, filters, 1, { strides: 1, useBias: false, name: `${name}_1_conv` });
    y = b.bn(y, { axis: 3, epsilon: eps, name: `${name}_1_bn` });
    y = b.act(y, 'relu', `${name}_1_relu`);
    y = b.zpad(y, [[1, 1], [1, 1]], `${name}_2_pad`);
    y = b.conv(y, filters, kernel, { strides: stride, useBias: false, name: `${name}_2_conv` });
    y = b.bn(y, { axis: 3, epsilon: eps, name: `${name}_2_bn` });
    y = b.act(y, 'relu', `${name}_2_relu`);
    y = b.conv(y, 4 * filters, 1, { name: `${name}_3_conv` });
    return b.add([shortcut, y], `${name}_out`);
  };
  const stack2 = (x, filters, n, stride1, name) => {
    x = block2(x, filters, { convShortcut: true, name: `${name}_block1` });
    for (let i = 2; i < n; i++) x = block2(x, filters, { name: `${name}_block${i}` });
    return block2(x, filters, { stride: stride1, name: `${name}_block${n}` });
  };
  let x = b.zpad(b.input, [[3, 3], [3, 3]], 'conv1_pad');
  x = b.conv(x, 64, 7, { strides: 2, useBias: true, name: 'conv1_conv' });
  x = b.zpad(x, [[1, 1], [1, 1]], 'pool1_pad');
  x = b.maxPool(x, 3, 2, 'valid', 'pool1_pool');
  x = stack2(x, 64, blocks[0], 2, 'conv2');
  x = stack2(x, 128, blocks[1], 2, 'conv3');
  x = stack2(x, 256, blocks[2], 2, 'conv4');
  x = stack2(x, 512, blocks[3], 1, 'conv5');
  x = b.bn(x, { axis: 3, epsilon: eps, name: 'post_bn' });
  x = b.act(x, 'relu', 'post_relu');
  return { features: x };
}

// keras/src/applications/inception_resnet_v2.py. conv2d_bn: Conv2D(use_bias),
// then (without bias) BatchNormalization(scale=False) and the activation, named
// name, name_bn, name_ac or automatically; CustomScaleLayer unnamed.
function InceptionResNetV2(b) {
  const cbn = (x, filters, kernel, { strides = 1, padding = 'same', activation = 'relu', useBias = false, name } = {}) => {
    x = b.conv(x, filters, kernel, { strides, padding, useBias, name });
    if (!useBias) x = b.bn(x, { axis: 3, scale: false, name: name ? `${name}_bn` : undefined });
    if (activation) x = b.act(x, activation, name ? `${name}_ac` : undefined);
    return x;
  };
  const block = (x, scale, type, idx, activation = 'relu') => {
    let branches;
    if (type === 'block35') {
      const b0 = cbn(x, 32, 1);
      const b1 = cbn(cbn(x, 32, 1), 32, 3);
      const b2 = cbn(cbn(cbn(x, 32, 1), 48, 3), 64, 3);
      branches = [b0, b1, b2];
    } else if (type === 'block17') {
      const b0 = cbn(x, 192, 1);
      const b1 = cbn(cbn(cbn(x, 128, 1), 160, [1, 7]), 192, [7, 1]);
      branches = [b0, b1];
    } else {
      const b0 = cbn(x, 192, 1);
      const b1 = cbn(cbn(cbn(x, 192, 1), 224, [1, 3]), 256, [3, 1]);
      branches = [b0, b1];
    }
    const name = `${type}_${idx}`;
    const mixed = b.concat(branches, 3, `${name}_mixed`);
    const up = cbn(mixed, x.shape[3], 1, { activation: null, useBias: true, name: `${name}_conv` });
    x = b.L('customScale', { scale }, [x, up]);
    if (activation) x = b.act(x, activation, `${name}_ac`);
    return x;
  };
  let x = cbn(b.input, 32, 3, { strides: 2, padding: 'valid' });
  x = cbn(x, 32, 3, { padding: 'valid' });
  x = cbn(x, 64, 3);
  x = b.maxPool(x, 3, 2);
  x = cbn(x, 80, 1, { padding: 'valid' });
  x = cbn(x, 192, 3, { padding: 'valid' });
  x = b.maxPool(x, 3, 2);
  {
    const b0 = cbn(x, 96, 1);
    const b1 = cbn(cbn(x, 48, 1), 64, 5);
    const b2 = cbn(cbn(cbn(x, 64, 1), 96, 3), 96, 3);
    const bp = cbn(b.avgPool(x, 3, 1, 'same'), 64, 1);
    x = b.concat([b0, b1, b2, bp], 3, 'mixed_5b');
  }
  for (let i = 1; i <= 10; i++) x = block(x, 0.17, 'block35', i);
  {
    const b0 = cbn(x, 384, 3, { strides: 2, padding: 'valid' });
    const b1 = cbn(cbn(cbn(x, 256, 1), 256, 3), 384, 3, { strides: 2, padding: 'valid' });
    const bp = b.maxPool(x, 3, 2, 'valid');
    x = b.concat([b0, b1, bp], 3, 'mixed_6a');
  }
  for (let i = 1; i <= 20; i++) x = block(x, 0.1, 'block17', i);
  {
    const b0 = cbn(cbn(x, 256, 1), 384, 3, { strides: 2, padding: 'valid' });
    const b1 = cbn(cbn(x, 256, 1), 288, 3, { strides: 2, padding: 'valid' });
    const b2 = cbn(cbn(cbn(x, 256, 1), 288, 3), 320, 3, { strides: 2, padding: 'valid' });
    const bp = b.maxPool(x, 3, 2, 'valid');
    x = b.concat([b0, b1, b2, bp], 3, 'mixed_7a');
  }
  for (let i = 1; i <= 9; i++) x = block(x, 0.2, 'block8', i);
  x = block(x, 1.0, 'block8', 10, null);
  x = cbn(x, 1536, 1, { name: 'conv_7b' });
  return { features: x };
}

// keras/src/applications/nasnet.py (NASNet-A): cells read the two cells before
// them; _adjust_block fits the older one to the newer one's shape.
function NASNet(b, { penultimateFilters, numBlocks, stemFilters, skipReduction, multiplier = 2 }) {
  const bn = (x, name) => b.bn(x, { axis: -1, momentum: 0.9997, epsilon: 1e-3, name });
  const sepBlock = (ip, filters, kernel = [3, 3], strides = [1, 1], id) => {
    let x = b.act(ip, 'relu');
    let pad = 'same';
    if (strides[0] === 2) {
      x = b.zpad(x, correctPad(x, kernel[0]), `separable_conv_1_pad_${id}`);
      pad = 'valid';
    }
    x = b.sep(x, filters, kernel, { strides, padding: pad, useBias: false, name: `separable_conv_1_${id}` });
    x = bn(x, `separable_conv_1_bn_${id}`);
    x = b.act(x, 'relu');
    x = b.sep(x, filters, kernel, { padding: 'same', useBias: false, name: `separable_conv_2_${id}` });
    return bn(x, `separable_conv_2_bn_${id}`);
  };
  const adjust = (p, ip, filters, id) => {
    if (p == null) return ip;
    if (p.shape[2] !== ip.shape[2]) {
      p = b.act(p, 'relu', `adjust_relu_1_${id}`);
      let p1 = b.avgPool(p, [1, 1], [2, 2], 'valid', `adjust_avg_pool_1_${id}`);
      p1 = b.conv(p1, Math.floor(filters / 2), [1, 1], { padding: 'same', useBias: false, name: `adjust_conv_1_${id}` });
      let p2 = b.zpad(p, [[0, 1], [0, 1]]);
      p2 = b.L('cropping2D', { cropping: [[1, 0], [1, 0]] }, p2);
      p2 = b.avgPool(p2, [1, 1], [2, 2], 'valid', `adjust_avg_pool_2_${id}`);
      p2 = b.conv(p2, Math.floor(filters / 2), [1, 1], { padding: 'same', useBias: false, name: `adjust_conv_2_${id}` });
      return bn(b.concat([p1, p2], -1), `adjust_bn_${id}`);
    }
    if (p.shape[3] !== filters) {
      p = b.act(p, 'relu');
      p = b.conv(p, filters, [1, 1], { padding: 'same', useBias: false, name: `adjust_conv_projection_${id}` });
      return bn(p, `adjust_bn_${id}`);
    }
    return p;
  };
  const normal = (ip, p, filters, id) => {
    p = adjust(p, ip, filters, id);
    let h = b.act(ip, 'relu');
    h = b.conv(h, filters, [1, 1], { padding: 'same', useBias: false, name: `normal_conv_1_${id}` });
    h = bn(h, `normal_bn_1_${id}`);
    const x1 = b.add([sepBlock(h, filters, [5, 5], [1, 1], `normal_left1_${id}`), sepBlock(p, filters, [3, 3], [1, 1], `normal_right1_${id}`)], `normal_add_1_${id}`);
    const x2 = b.add([sepBlock(p, filters, [5, 5], [1, 1], `normal_left2_${id}`), sepBlock(p, filters, [3, 3], [1, 1], `normal_right2_${id}`)], `normal_add_2_${id}`);
    const x3 = b.add([b.avgPool(h, [3, 3], [1, 1], 'same', `normal_left3_${id}`), p], `normal_add_3_${id}`);
    const x4 = b.add([b.avgPool(p, [3, 3], [1, 1], 'same', `normal_left4_${id}`), b.avgPool(p, [3, 3], [1, 1], 'same', `normal_right4_${id}`)], `normal_add_4_${id}`);
    const x5 = b.add([sepBlock(h, filters, [3, 3], [1, 1], `normal_left5_${id}`), h], `normal_add_5_${id}`);
    return [b.concat([p, x1, x2, x3, x4, x5], -1, `normal_concat_${id}`), ip];
  };
  const reduction = (ip, p, filters, id) => {
    p = adjust(p, ip, filters, id);
    let h = b.act(ip, 'relu');
    h = b.conv(h, filters, [1, 1], { padding: 'same', useBias: false, name: `reduction_conv_1_${id}` });
    h = bn(h, `reduction_bn_1_${id}`);
    const h3 = b.zpad(h, correctPad(h, 3), `reduction_pad_1_${id}`);
    const x1 = b.add([sepBlock(h, filters, [5, 5], [2, 2], `reduction_left1_${id}`), sepBlock(p, filters, [7, 7], [2, 2], `reduction_right1_${id}`)], `reduction_add_1_${id}`);
    const x2 = b.add([b.maxPool(h3, [3, 3], [2, 2], 'valid', `reduction_left2_${id}`), sepBlock(p, filters, [7, 7], [2, 2], `reduction_right2_${id}`)], `reduction_add_2_${id}`);
    const x3 = b.add([b.avgPool(h3, [3, 3], [2, 2], 'valid', `reduction_left3_${id}`), sepBlock(p, filters, [5, 5], [2, 2], `reduction_right3_${id}`)], `reduction_add3_${id}`);
    const x4 = b.add([x2, b.avgPool(x1, [3, 3], [1, 1], 'same', `reduction_left4_${id}`)]);
    const x5 = b.add([sepBlock(x1, filters, [3, 3], [1, 1], `reduction_left4_${id}`), b.maxPool(h3, [3, 3], [2, 2], 'valid', `reduction_right5_${id}`)], `reduction_add4_${id}`);
    return [b.concat([x2, x3, x4, x5], -1, `reduction_concat_${id}`), ip];
  };
  const filters = Math.floor(penultimateFilters / 24);
  let x = b.conv(b.input, stemFilters, [3, 3], { strides: [2, 2], padding: 'valid', useBias: false, name: 'stem_conv1' });
  x = bn(x, 'stem_bn1');
  let p = null;
  let p0;
  [x, p] = reduction(x, p, Math.floor(filters / multiplier ** 2), 'stem_1');
  [x, p] = reduction(x, p, Math.floor(filters / multiplier), 'stem_2');
  for (let i = 0; i < numBlocks; i++) [x, p] = normal(x, p, filters, `${i}`);
  [x, p0] = reduction(x, p, filters * multiplier, `reduce_${numBlocks}`);
  if (!skipReduction) p = p0;
  for (let i = 0; i < numBlocks; i++) [x, p] = normal(x, p, filters * multiplier, `${numBlocks + i + 1}`);
  [x, p0] = reduction(x, p, filters * multiplier ** 2, `reduce_${2 * numBlocks}`);
  if (!skipReduction) p = p0;
  for (let i = 0; i < numBlocks; i++) [x, p] = normal(x, p, filters * multiplier ** 2, `${2 * numBlocks + i + 1}`);
  x = b.act(x, 'relu');
  return { features: x };
}
const NASNET_MOBILE = { penultimateFilters: 1056, numBlocks: 4, stemFilters: 32, skipReduction: false };
const NASNET_LARGE = { penultimateFilters: 4032, numBlocks: 6, stemFilters: 96, skipReduction: true };

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

// The EfficientNets' squeeze-excitation (efficientnet.py block / efficientnet_v2.py MBConvBlock).
function efficientSe(b, x, name, filters, filtersSe) {
  let se = b.L('globalAveragePooling2d', { name: `${name}se_squeeze` }, x);
  se = b.L('reshape', { targetShape: [1, 1, filters], name: `${name}se_reshape` }, se);
  se = b.conv(se, filtersSe, 1, { padding: 'same', activation: 'swish', name: `${name}se_reduce` });
  se = b.conv(se, filters, 1, { padding: 'same', activation: 'sigmoid', name: `${name}se_expand` });
  return b.L('multiply', { name: `${name}se_excite` }, [x, se]);
}

// Top of both EfficientNets: avg_pool, top_dropout, predictions.
function efficientTop(b, x, dropout, classes = 1000) {
  x = b.L('globalAveragePooling2d', { name: 'avg_pool' }, x);
  if (dropout > 0) x = b.L('dropout', { rate: dropout, name: 'top_dropout' }, x);
  return b.L('dense', { units: classes, activation: 'softmax', name: 'predictions' }, x);
}

// keras/src/applications/efficientnet.py, weights="imagenet" (with the
// Rescaling that makes up for the file's variance being the std).
// Stages: kernel, repeats, filters in, filters out, expansion, stride (se 0.25, id_skip).
const EFFICIENTNET_STAGES = [
  [3, 1, 32, 16, 1, 1], [3, 2, 16, 24, 6, 2], [5, 2, 24, 40, 6, 2], [3, 3, 40, 80, 6, 2],
  [5, 3, 80, 112, 6, 1], [5, 4, 112, 192, 6, 2], [3, 1, 192, 320, 6, 1],
];
function EfficientNet(b, { width, depth, dropout, includeTop }) {
  const roundFilters = (f) => {
    f *= width;
    let n = Math.max(8, Math.floor(Math.trunc(f + 4) / 8) * 8);
    if (n < 0.9 * f) n += 8;
    return n;
  };
  const roundRepeats = (r) => Math.ceil(depth * r);
  const block = (inputs, { name, filtersIn, filtersOut, kernel, strides, expand, dropRate }) => {
    const filters = filtersIn * expand;
    let x = inputs;
    if (expand !== 1) {
      x = b.conv(x, filters, 1, { padding: 'same', useBias: false, name: `${name}expand_conv` });
      x = b.bn(x, { name: `${name}expand_bn` });
      x = b.act(x, 'swish', `${name}expand_activation`);
    }
    if (strides === 2) x = b.zpad(x, correctPad(x, kernel), `${name}dwconv_pad`);
    x = b.dw(x, kernel, { strides, padding: strides === 2 ? 'valid' : 'same', useBias: false, name: `${name}dwconv` });
    x = b.bn(x, { name: `${name}bn` });
    x = b.act(x, 'swish', `${name}activation`);
    x = efficientSe(b, x, name, filters, Math.max(1, Math.trunc(filtersIn * 0.25)));
    x = b.conv(x, filtersOut, 1, { padding: 'same', useBias: false, name: `${name}project_conv` });
    x = b.bn(x, { name: `${name}project_bn` });
    if (strides === 1 && filtersIn === filtersOut) {
      if (dropRate > 0) x = b.L('dropout', { rate: dropRate, noiseShape: [null, 1, 1, 1], name: `${name}drop` }, x);
      x = b.add([x, inputs], `${name}add`);
    }
    return x;
  };
  let x = b.L('rescaling', { scale: 1 / 255, name: 'rescaling' }, b.input);
  x = b.custom(KerasNormalization, { stored: true, name: 'normalization' }, x);
  x = b.L('rescaling', { scale: IMAGENET_STD.map((s) => 1 / Math.sqrt(s)), name: 'rescaling_1' }, x);
  x = b.zpad(x, correctPad(x, 3), 'stem_conv_pad');
  x = b.conv(x, roundFilters(32), 3, { strides: 2, padding: 'valid', useBias: false, name: 'stem_conv' });
  x = b.bn(x, { name: 'stem_bn' });
  x = b.act(x, 'swish', 'stem_activation');
  const total = EFFICIENTNET_STAGES.reduce((a, s) => a + roundRepeats(s[1]), 0);
  let index = 0;
  EFFICIENTNET_STAGES.forEach(([kernel, repeats, fin, fout, expand, stride], i) => {
    const filtersIn = roundFilters(fin);
    const filtersOut = roundFilters(fout);
    for (let j = 0; j < roundRepeats(repeats); j++, index++) {
      x = block(x, {
        name: `block${i + 1}${String.fromCharCode(97 + j)}_`, filtersIn: j ? filtersOut : filtersIn, filtersOut, kernel,
        strides: j ? 1 : stride, expand, dropRate: (0.2 * index) / total,
      });
    }
  });
  x = b.conv(x, roundFilters(1280), 1, { padding: 'same', useBias: false, name: 'top_conv' });
  x = b.bn(x, { name: 'top_bn' });
  x = b.act(x, 'swish', 'top_activation');
  const features = x;
  if (!includeTop) return { features };
  return { features, top: efficientTop(b, x, dropout) };
}

// keras/src/applications/efficientnet_v2.py. Stages: kernel, repeats, filters
// in, filters out, expansion, se ratio, stride, fused (conv_type 1).
const V2_B = [
  [3, 1, 32, 16, 1, 0, 1, 1], [3, 2, 16, 32, 4, 0, 2, 1], [3, 2, 32, 48, 4, 0, 2, 1],
  [3, 3, 48, 96, 4, 0.25, 2, 0], [3, 5, 96, 112, 6, 0.25, 1, 0], [3, 8, 112, 192, 6, 0.25, 2, 0],
];
const V2_S = [
  [3, 2, 24, 24, 1, 0, 1, 1], [3, 4, 24, 48, 4, 0, 2, 1], [3, 4, 48, 64, 4, 0, 2, 1],
  [3, 6, 64, 128, 4, 0.25, 2, 0], [3, 9, 128, 160, 6, 0.25, 1, 0], [3, 15, 160, 256, 6, 0.25, 2, 0],
];
const V2_M = [
  [3, 3, 24, 24, 1, 0, 1, 1], [3, 5, 24, 48, 4, 0, 2, 1], [3, 5, 48, 80, 4, 0, 2, 1], [3, 7, 80, 160, 4, 0.25, 2, 0],
  [3, 14, 160, 176, 6, 0.25, 1, 0], [3, 18, 176, 304, 6, 0.25, 2, 0], [3, 5, 304, 512, 6, 0.25, 1, 0],
];
const V2_L = [
  [3, 4, 32, 32, 1, 0, 1, 1], [3, 7, 32, 64, 4, 0, 2, 1], [3, 7, 64, 96, 4, 0, 2, 1], [3, 10, 96, 192, 4, 0.25, 2, 0],
  [3, 19, 192, 224, 6, 0.25, 1, 0], [3, 25, 224, 384, 6, 0.25, 2, 0], [3, 7, 384, 640, 6, 0.25, 1, 0],
];
function EfficientNetV2(b, { stages, width = 1, depth = 1, imagenetNorm, includeTop }) {
  const roundFilters = (f) => Math.max(8, Math.floor(Math.trunc(f * width + 4) / 8) * 8);
  const block = (inputs, { name, filtersIn, filtersOut, kernel, strides, expand, se, fused, dropRate }) => {
    const filters = filtersIn * expand;
    let x = inputs;
    if (expand !== 1) {
      x = b.conv(x, filters, fused ? kernel : 1, { strides: fused ? strides : 1, padding: 'same', useBias: false, name: `${name}expand_conv` });
      x = b.bn(x, { name: `${name}expand_bn` });
      x = b.act(x, 'swish', `${name}expand_activation`);
    }
    if (!fused) {
      x = b.dw(x, kernel, { strides, padding: 'same', useBias: false, name: `${name}dwconv2` });
      x = b.bn(x, { name: `${name}bn` });
      x = b.act(x, 'swish', `${name}activation`);
    }
    if (se > 0 && se <= 1) x = efficientSe(b, x, name, filters, Math.max(1, Math.trunc(filtersIn * se)));
    const single = fused && expand === 1;
    x = b.conv(x, filtersOut, single ? kernel : 1, { strides: single ? strides : 1, padding: 'same', useBias: false, name: `${name}project_conv` });
    x = b.bn(x, { name: `${name}project_bn` });
    if (single) x = b.act(x, 'swish', `${name}project_activation`);
    if (strides === 1 && filtersIn === filtersOut) {
      if (dropRate) x = b.L('dropout', { rate: dropRate, noiseShape: [null, 1, 1, 1], name: `${name}drop` }, x);
      x = b.add([x, inputs], `${name}add`);
    }
    return x;
  };
  let x;
  if (imagenetNorm) {
    x = b.L('rescaling', { scale: 1 / 255, name: 'rescaling' }, b.input);
    x = b.custom(KerasNormalization, { stored: false, mean: IMAGENET_MEAN, variance: IMAGENET_STD.map((s) => s ** 2), name: 'normalization' }, x);
  } else {
    x = b.L('rescaling', { scale: 1 / 128, offset: -1, name: 'rescaling' }, b.input);
  }
  x = b.conv(x, roundFilters(stages[0][2]), 3, { strides: 2, padding: 'same', useBias: false, name: 'stem_conv' });
  x = b.bn(x, { name: 'stem_bn' });
  x = b.act(x, 'swish', 'stem_activation');
  const total = stages.reduce((a, s) => a + s[1], 0); // before depth scaling, as Keras counts
  let index = 0;
  stages.forEach(([kernel, repeats, fin, fout, expand, se, stride, fused], i) => {
    const filtersIn = roundFilters(fin);
    const filtersOut = roundFilters(fout);
    for (let j = 0; j < Math.ceil(depth * repeats); j++, index++) {
      x = block(x, {
        name: `block${i + 1}${String.fromCharCode(97 + j)}_`, filtersIn: j ? filtersOut : filtersIn, filtersOut, kernel,
        strides: j ? 1 : stride, expand, se, fused: fused === 1, dropRate: (0.2 * index) / total,
      });
    }
  });
  x = b.conv(x, roundFilters(1280), 1, { padding: 'same', useBias: false, name: 'top_conv' });
  x = b.bn(x, { name: 'top_bn' });
  x = b.act(x, 'swish', 'top_activation');
  const features = x;
  if (!includeTop) return { features };
  return { features, top: efficientTop(b, x, 0.2) };
}

// keras/src/applications/mobilenet_v3.py: alpha 1.0, not minimalistic,
// include_preprocessing. Blocks: expansion, filters, kernel, stride, se, hard swish.
const V3_LARGE = [
  [1, 16, 3, 1, 0, 0], [4, 24, 3, 2, 0, 0], [3, 24, 3, 1, 0, 0], [3, 40, 5, 2, 1, 0], [3, 40, 5, 1, 1, 0], [3, 40, 5, 1, 1, 0],
  [6, 80, 3, 2, 0, 1], [2.5, 80, 3, 1, 0, 1], [2.3, 80, 3, 1, 0, 1], [2.3, 80, 3, 1, 0, 1], [6, 112, 3, 1, 1, 1], [6, 112, 3, 1, 1, 1],
  [6, 160, 5, 2, 1, 1], [6, 160, 5, 1, 1, 1], [6, 160, 5, 1, 1, 1],
];
const V3_SMALL = [
  [1, 16, 3, 2, 1, 0], [72 / 16, 24, 3, 2, 0, 0], [88 / 24, 24, 3, 1, 0, 0], [4, 40, 5, 2, 1, 1], [6, 40, 5, 1, 1, 1], [6, 40, 5, 1, 1, 1],
  [3, 48, 5, 1, 1, 1], [3, 48, 5, 1, 1, 1], [6, 96, 5, 2, 1, 1], [6, 96, 5, 1, 1, 1], [6, 96, 5, 1, 1, 1],
];
function MobileNetV3(b, { large, includeTop, classes = 1000 }) {
  const depth = (v) => makeDivisible(v, 8);
  const bn = (x, name) => b.bn(x, { epsilon: 1e-3, momentum: 0.999, name });
  const relu = (x) => b.L('reLU', {}, x);
  const hardSwish = (x) => b.act(x, 'hard_swish');
  const hardSigmoid = (x) => {
    const reluName = b.autoName('reLU'); // layers.ReLU(6.0) is built before its argument x + 3.0
    x = b.custom(KerasScalarOp, { op: 'add', value: 3, name: b.autoName('add') }, x);
    x = b.L('reLU', { maxValue: 6, name: reluName }, x);
    return b.custom(KerasScalarOp, { op: 'mul', value: 1 / 6, name: b.autoName('multiply') }, x);
  };
  const seBlock = (inputs, filters, prefix) => {
    let x = b.L('globalAveragePooling2d', { keepdims: true, name: `${prefix}squeeze_excite_avg_pool` }, inputs);
    x = b.conv(x, depth(filters * 0.25), 1, { padding: 'same', name: `${prefix}squeeze_excite_conv` });
    x = b.L('reLU', { name: `${prefix}squeeze_excite_relu` }, x);
    x = b.conv(x, filters, 1, { padding: 'same', name: `${prefix}squeeze_excite_conv_1` });
    x = hardSigmoid(x);
    return b.L('multiply', { name: `${prefix}squeeze_excite_mul` }, [inputs, x]);
  };
  const invRes = (x, [expansion, filters, kernel, stride, se, hs], blockId) => {
    const activation = hs ? hardSwish : relu;
    const shortcut = x;
    const infilters = x.shape[3];
    let prefix = 'expanded_conv_';
    if (blockId) {
      prefix = `expanded_conv_${blockId}_`;
      x = b.conv(x, depth(infilters * expansion), 1, { padding: 'same', useBias: false, name: `${prefix}expand` });
      x = bn(x, `${prefix}expand_bn`);
      x = activation(x);
    }
    if (stride === 2) x = b.zpad(x, correctPad(x, kernel), `${prefix}depthwise_pad`);
    x = b.dw(x, kernel, { strides: stride, padding: stride === 1 ? 'same' : 'valid', useBias: false, name: `${prefix}depthwise` });
    x = bn(x, `${prefix}depthwise_bn`);
    x = activation(x);
    if (se) x = seBlock(x, depth(infilters * expansion), prefix);
    x = b.conv(x, filters, 1, { padding: 'same', useBias: false, name: `${prefix}project` });
    x = bn(x, `${prefix}project_bn`);
    if (stride === 1 && infilters === filters) x = b.add([shortcut, x], `${prefix}add`);
    return x;
  };
  let x = b.L('rescaling', { scale: 1 / 127.5, offset: -1, name: 'rescaling' }, b.input);
  x = b.conv(x, 16, 3, { strides: 2, padding: 'same', useBias: false, name: 'conv' });
  x = bn(x, 'conv_bn');
  x = hardSwish(x);
  (large ? V3_LARGE : V3_SMALL).forEach((spec, id) => { x = invRes(x, spec, id); });
  x = b.conv(x, depth(x.shape[3] * 6), 1, { padding: 'same', useBias: false, name: 'conv_1' });
  x = bn(x, 'conv_1_bn');
  x = hardSwish(x);
  const features = x;
  if (!includeTop) return { features };
  x = b.L('globalAveragePooling2d', { keepdims: true }, x);
  x = b.conv(x, large ? 1280 : 1024, 1, { padding: 'same', useBias: true, name: 'conv_2' });
  x = hardSwish(x);
  x = b.L('dropout', { rate: 0.2 }, x);
  x = b.conv(x, classes, 1, { padding: 'same', name: 'logits' });
  x = b.L('flatten', {}, x);
  x = b.act(x, 'softmax', 'predictions');
  return { features, top: x };
}

// keras/src/applications/convnext.py (drop_path_rate 0, layer_scale_init_value
// 1e-6, include_preprocessing). The stem and the downsampling blocks are
// nested Sequential models in Keras: built inline here, their layers recorded
// in b.nested so the HDF5 writer nests them as Keras does.
function ConvNeXt(b, { name, depths, dims, includeTop, classes = 1000 }) {
  const ln = (x, layerName) => b.L('layerNormalization', { epsilon: 1e-6, name: layerName }, x);
  const nest = (container, ...names) => names.forEach((n) => { b.nested[n] = container; });
  let x = b.custom(KerasNormalization, {
    stored: false, mean: IMAGENET_MEAN.map((m) => m * 255), variance: IMAGENET_STD.map((s) => (s * 255) ** 2),
    name: `${name}_prestem_normalization`,
  }, b.input);
  x = b.conv(x, dims[0], 4, { strides: 4, name: `${name}_stem_conv` });
  x = ln(x, `${name}_stem_layernorm`);
  nest(`${name}_stem`, `${name}_stem_conv`, `${name}_stem_layernorm`);
  for (let i = 0; i < 4; i++) {
    if (i > 0) {
      x = ln(x, `${name}_downsampling_layernorm_${i - 1}`);
      x = b.conv(x, dims[i], 2, { strides: 2, name: `${name}_downsampling_conv_${i - 1}` });
      nest(`${name}_downsampling_block_${i - 1}`, `${name}_downsampling_layernorm_${i - 1}`, `${name}_downsampling_conv_${i - 1}`);
    }
    for (let j = 0; j < depths[i]; j++) {
      const p = `${name}_stage_${i}_block_${j}`;
      const inputs = x;
      x = b.custom(KerasGroupedConv2D, { kernelSize: 7, filters: dims[i], name: `${p}_depthwise_conv` }, x);
      x = ln(x, `${p}_layernorm`);
      x = b.L('dense', { units: 4 * dims[i], name: `${p}_pointwise_conv_1` }, x);
      x = b.act(x, 'gelu', `${p}_gelu`);
      x = b.L('dense', { units: dims[i], name: `${p}_pointwise_conv_2` }, x);
      x = b.custom(KerasLayerScale, { name: `${p}_layer_scale` }, x);
      x = b.act(x, 'linear', `${p}_identity`);
      x = b.add([inputs, x]);
    }
  }
  const features = x;
  if (!includeTop) return { features: ln(x) };
  x = b.L('globalAveragePooling2d', { name: `${name}_head_gap` }, x);
  x = ln(x, `${name}_head_layernorm`);
  x = b.L('dense', { units: classes, activation: 'softmax', name: `${name}_head_dense` }, x);
  return { features, top: x };
}

const CONVNEXT = {
  tiny: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] },
  small: { depths: [3, 3, 27, 3], dims: [96, 192, 384, 768] },
  base: { depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024] },
  large: { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536] },
  xlarge: { depths: [3, 3, 27, 3], dims: [256, 512, 1024, 2048] },
};

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

const KERAS_SOURCES = {
  vgg16: 'keras/src/applications/vgg16.py',
  vgg19: 'keras/src/applications/vgg19.py',
  resnet50: 'keras/src/applications/resnet.py (ResNet50: stack_residual_blocks_v1 / residual_block_v1, a.k.a. stack1/block1)',
  resnet50_legacy: 'keras-applications keras_applications/resnet50.py (>= 1.0.7: with pool1_pad)',
  resnet50_legacy_nopad: 'keras-applications keras_applications/resnet50.py (<= 1.0.6, Keras 2.2.4: no pool1_pad)',
  inception_v3: 'keras/src/applications/inception_v3.py',
  xception: 'keras/src/applications/xception.py',
  mobilenet: 'keras/src/applications/mobilenet.py',
  mobilenet_v2: 'keras/src/applications/mobilenet_v2.py',
  densenet121: 'keras/src/applications/densenet.py',
  resnet50_v2: 'keras/src/applications/resnet_v2.py (resnet.py: stack_residual_blocks_v2 / residual_block_v2)',
  inception_resnet_v2: 'keras/src/applications/inception_resnet_v2.py',
  nasnet_mobile: 'keras/src/applications/nasnet.py (NASNetMobile)',
  efficientnet: 'keras/src/applications/efficientnet.py (weights="imagenet": with the Rescaling after Normalization)',
  efficientnet_v2: 'keras/src/applications/efficientnet_v2.py',
  mobilenet_v3: 'keras/src/applications/mobilenet_v3.py (alpha 1.0, not minimalistic, include_preprocessing)',
  convnext: 'keras/src/applications/convnext.py (stem and downsampling blocks inline; nested in the HDF5 files)',
};

const CASES = [
  { name: 'vgg16', arch: 'vgg16', size: 67, seed: 1601, build: VGG16, modelName: 'vgg16', keras1: true },
  { name: 'vgg19', arch: 'vgg19', size: 64, seed: 1901, build: VGG19, modelName: 'vgg19' },
  { name: 'resnet50', arch: 'resnet50', size: 65, seed: 5001, build: ResNet50, modelName: 'resnet50', fullModel: true },
  {
    name: 'resnet50_legacy', arch: 'resnet50_legacy', size: 65, seed: 5002, autoBase: 1,
    build: (b) => ResNet50Legacy(b, { poolPad: true }), modelName: 'resnet50',
  },
  {
    name: 'resnet50_legacy_nopad', arch: 'resnet50_legacy_nopad', size: 65, seed: 5003, autoBase: 1,
    build: (b) => ResNet50Legacy(b, { poolPad: false }), modelName: 'resnet50',
  },
  { name: 'inception_v3', arch: 'inception_v3', size: 107, seed: 3001, build: InceptionV3, modelName: 'inception_v3', keras20: true },
  { name: 'xception', arch: 'xception', size: 71, seed: 7101, build: Xception, modelName: 'xception', split: true },
  {
    name: 'mobilenet_a025_67', arch: 'mobilenet', alpha: 0.25, size: 67, seed: 2501,
    build: (b) => MobileNet(b, { alpha: 0.25, includeTop: false }), modelName: 'mobilenet_0.25_67', fullModel: true,
  },
  {
    name: 'mobilenet_a050_64_top', arch: 'mobilenet', alpha: 0.5, size: 64, seed: 5064, includeTop: true,
    build: (b) => MobileNet(b, { alpha: 0.5, includeTop: true }), modelName: 'mobilenet_0.50_64',
  },
  {
    name: 'mobilenet_v2_a035_67', arch: 'mobilenet_v2', alpha: 0.35, size: 67, seed: 3567,
    build: (b) => MobileNetV2(b, { alpha: 0.35 }), modelName: 'mobilenetv2_0.35_67',
  },
  {
    name: 'mobilenet_v2_a100_64', arch: 'mobilenet_v2', alpha: 1.0, size: 64, seed: 10064,
    build: (b) => MobileNetV2(b, { alpha: 1.0 }), modelName: 'mobilenetv2_1.00_64',
  },
  { name: 'densenet121', arch: 'densenet121', size: 65, seed: 12165, build: (b) => DenseNet(b, [6, 12, 24, 16]), modelName: 'densenet121' },
  { name: 'resnet50_v2', arch: 'resnet50_v2', size: 65, seed: 5265, build: (b) => ResNetV2(b, [3, 4, 6, 3]), modelName: 'resnet50v2' },
  { name: 'inception_resnet_v2', arch: 'inception_resnet_v2', size: 75, seed: 7575, build: InceptionResNetV2, modelName: 'inception_resnet_v2' },
  // 63 → 31 after the stem: odd there (correct_pad adds nothing before), even from stem_2 on (one less before).
  { name: 'nasnet_mobile', arch: 'nasnet_mobile', size: 63, seed: 6363, build: (b) => NASNet(b, NASNET_MOBILE), modelName: 'NASNet' },
  // Networks with their preprocessing in the model take 0..255 pixels.
  {
    name: 'efficientnet_b0_top', arch: 'efficientnet', size: 67, seed: 6701, includeTop: true, inputRange: [0, 255],
    build: (b) => EfficientNet(b, { width: 1.0, depth: 1.0, dropout: 0.2, includeTop: true }), modelName: 'efficientnetb0',
  },
  {
    name: 'efficientnet_b3_64', arch: 'efficientnet', size: 64, seed: 6403, inputRange: [0, 255],
    build: (b) => EfficientNet(b, { width: 1.2, depth: 1.4, dropout: 0.3, includeTop: false }), modelName: 'efficientnetb3',
  },
  {
    name: 'efficientnet_v2_b0_top', arch: 'efficientnet_v2', size: 65, seed: 6502, includeTop: true, inputRange: [0, 255],
    build: (b) => EfficientNetV2(b, { stages: V2_B, imagenetNorm: true, includeTop: true }), modelName: 'efficientnetv2-b0',
  },
  {
    name: 'efficientnet_v2_s_64', arch: 'efficientnet_v2', size: 64, seed: 6404, inputRange: [0, 255],
    build: (b) => EfficientNetV2(b, { stages: V2_S, imagenetNorm: false, includeTop: false }), modelName: 'efficientnetv2-s',
  },
  {
    name: 'mobilenet_v3_small_top', arch: 'mobilenet_v3', size: 67, seed: 3367, includeTop: true, inputRange: [0, 255],
    build: (b) => MobileNetV3(b, { large: false, includeTop: true }), modelName: 'MobileNetV3Small',
  },
  {
    name: 'mobilenet_v3_large_64', arch: 'mobilenet_v3', size: 64, seed: 3364, inputRange: [0, 255],
    build: (b) => MobileNetV3(b, { large: true, includeTop: false }), modelName: 'MobileNetV3Large',
  },
  {
    name: 'convnext_tiny_67', arch: 'convnext', size: 67, seed: 2867, inputRange: [0, 255],
    build: (b) => ConvNeXt(b, { name: 'convnext_tiny', ...CONVNEXT.tiny, includeTop: false }), modelName: 'convnext_tiny',
  },
  {
    name: 'convnext_tiny_top', arch: 'convnext', size: 64, seed: 2864, includeTop: true, inputRange: [0, 255],
    build: (b) => ConvNeXt(b, { name: 'convnext_tiny', ...CONVNEXT.tiny, includeTop: true }), modelName: 'convnext_tiny',
  },
];

// Keras's parameter totals with the ImageNet top, as model.summary() prints them for the default builds
// (keras.io's table rounds them: EfficientNetB0 5.3M … ConvNeXtXLarge 350.1M), at the default input size.
const PUBLISHED_TOP = [
  ...[
    ['b0', 1.0, 1.0, 0.2, 224, 5330571], ['b1', 1.0, 1.1, 0.2, 240, 7856239], ['b2', 1.1, 1.2, 0.3, 260, 9177569],
    ['b3', 1.2, 1.4, 0.3, 300, 12320535], ['b4', 1.4, 1.8, 0.4, 380, 19466823], ['b5', 1.6, 2.2, 0.4, 456, 30562527],
    ['b6', 1.8, 2.6, 0.5, 528, 43265143], ['b7', 2.0, 3.1, 0.5, 600, 66658687],
  ].map(([v, width, depth, dropout, size, total]) => ({
    arch: `EfficientNet${v.toUpperCase()} with top`, total, size, top: true,
    build: (b) => EfficientNet(b, { width, depth, dropout, includeTop: true }),
  })),
  ...[
    ['B0', V2_B, 1.0, 1.0, 224, 7200312], ['B1', V2_B, 1.0, 1.1, 240, 8212124], ['B2', V2_B, 1.1, 1.2, 260, 10178374],
    ['B3', V2_B, 1.2, 1.4, 300, 14467622], ['S', V2_S, 1, 1, 384, 21612360], ['M', V2_M, 1, 1, 480, 54431388], ['L', V2_L, 1, 1, 480, 119027848],
  ].map(([v, stages, width, depth, size, total]) => ({
    arch: `EfficientNetV2${v} with top`, total, size, top: true,
    build: (b) => EfficientNetV2(b, { stages, width, depth, imagenetNorm: v.startsWith('B'), includeTop: true }),
  })),
  { arch: 'MobileNetV3Small with top', total: 2554968, size: 224, top: true, build: (b) => MobileNetV3(b, { large: false, includeTop: true }) },
  { arch: 'MobileNetV3Large with top', total: 5507432, size: 224, top: true, build: (b) => MobileNetV3(b, { large: true, includeTop: true }) },
  ...[['Tiny', 28589128], ['Small', 50223688], ['Base', 88591464], ['Large', 197767336], ['XLarge', 350196968]].map(([v, total]) => ({
    arch: `ConvNeXt${v} with top`, total, size: 224, top: true,
    build: (b) => ConvNeXt(b, { name: `convnext_${v.toLowerCase()}`, ...CONVNEXT[v.toLowerCase()], includeTop: true }),
  })),
];

// Keras's published parameter totals (include_top=False), checked by --verify-params at 224.
const PUBLISHED_NOTOP = [
  { arch: 'VGG16', total: 14714688, build: VGG16, size: 224 },
  { arch: 'VGG19', total: 20024384, build: VGG19, size: 224 },
  { arch: 'ResNet50', total: 23587712, build: ResNet50, size: 224 },
  { arch: 'ResNet50 (legacy names)', total: 23587712, build: (b) => ResNet50Legacy(b, { poolPad: true }), size: 224 },
  { arch: 'InceptionV3', total: 21802784, build: InceptionV3, size: 299 },
  { arch: 'Xception', total: 20861480, build: Xception, size: 299 },
  { arch: 'MobileNet 1.0', total: 3228864, build: (b) => MobileNet(b, { alpha: 1.0, includeTop: false }), size: 224 },
  { arch: 'MobileNet 0.25', total: 218544, build: (b) => MobileNet(b, { alpha: 0.25, includeTop: false }), size: 224 },
  { arch: 'MobileNet 1.0 with top', total: 4253864, build: (b) => MobileNet(b, { alpha: 1.0, includeTop: true }), size: 224, top: true },
  { arch: 'MobileNetV2 1.0', total: 2257984, build: (b) => MobileNetV2(b, { alpha: 1.0 }), size: 224 },
  { arch: 'MobileNetV2 0.35', total: 410208, build: (b) => MobileNetV2(b, { alpha: 0.35 }), size: 224 },
  { arch: 'DenseNet121', total: 7037504, build: (b) => DenseNet(b, [6, 12, 24, 16]), size: 224 },
  { arch: 'DenseNet169', total: 12642880, build: (b) => DenseNet(b, [6, 12, 32, 32]), size: 224 },
  { arch: 'DenseNet201', total: 18321984, build: (b) => DenseNet(b, [6, 12, 48, 32]), size: 224 },
  { arch: 'ResNet50V2', total: 23564800, build: (b) => ResNetV2(b, [3, 4, 6, 3]), size: 224 },
  { arch: 'ResNet101V2', total: 42626560, build: (b) => ResNetV2(b, [3, 4, 23, 3]), size: 224 },
  { arch: 'ResNet152V2', total: 58331648, build: (b) => ResNetV2(b, [3, 8, 36, 3]), size: 224 },
  { arch: 'InceptionResNetV2', total: 54336736, build: InceptionResNetV2, size: 299 },
  { arch: 'NASNetMobile', total: 4269716, build: (b) => NASNet(b, NASNET_MOBILE), size: 224 },
  { arch: 'NASNetLarge', total: 84916818, build: (b) => NASNet(b, NASNET_LARGE), size: 331 },
  ...PUBLISHED_TOP,
];

// ---------------------------------------------------------------------------
// Model construction, weights, calibration
// ---------------------------------------------------------------------------

function buildModel(c, size = c.size) {
  const b = new Builder(size, c.autoBase ?? 0);
  const { features, top } = c.build(b);
  const output = top ?? features;
  const model = tf.model({ inputs: b.input, outputs: output, name: c.modelName });
  return { b, model, features, top };
}

function shortWeightName(w) {
  // tfjs originalName is "<layer>/<param>"
  const parts = w.originalName.split('/');
  return parts[parts.length - 1];
}

const EXPECTED_WEIGHTS = {
  Conv2D: [['kernel', 'bias'], ['kernel']],
  Dense: [['kernel', 'bias'], ['kernel']],
  DepthwiseConv2D: [['depthwise_kernel', 'bias'], ['depthwise_kernel']],
  SeparableConv2D: [['depthwise_kernel', 'pointwise_kernel', 'bias'], ['depthwise_kernel', 'pointwise_kernel']],
  BatchNormalization: [['gamma', 'beta', 'moving_mean', 'moving_variance'], ['beta', 'moving_mean', 'moving_variance']],
  Normalization: [['mean', 'variance', 'count']],
  LayerNormalization: [['gamma', 'beta']],
  LayerScale: [['gamma']],
};

function checkWeightNames(model) {
  for (const l of model.layers) {
    const names = l.weights.map(shortWeightName);
    if (names.length === 0) continue;
    const exp = EXPECTED_WEIGHTS[kerasClass(l)];
    if (!exp || !exp.some((e) => e.join() === names.join())) {
      throw new Error(`unexpected weights for ${l.name} (${kerasClass(l)}): ${names.join(', ')}`);
    }
  }
}

function randomizeWeights(model, rng) {
  for (const l of model.layers) {
    if (l.weights.length === 0) continue;
    const values = l.weights.map((w) => {
      const n = w.shape.reduce((a, d) => a * d, 1);
      const s = shortWeightName(w);
      let data;
      switch (s) {
        case 'kernel': {
          const fanIn = w.shape.slice(0, -1).reduce((a, d) => a * d, 1);
          data = rng.fillNormal(n, Math.sqrt(2 / fanIn));
          break;
        }
        case 'depthwise_kernel':
          data = rng.fillNormal(n, Math.sqrt(2 / (w.shape[0] * w.shape[1])));
          break;
        case 'pointwise_kernel':
          data = rng.fillNormal(n, Math.sqrt(2 / w.shape[2]));
          break;
        case 'bias':
          data = rng.fillNormal(n, 0.1);
          break;
        case 'gamma':
          data = rng.fillUniform(n, 0.5, 1.5);
          break;
        case 'beta':
          data = rng.fillNormal(n, 0.1);
          break;
        case 'moving_mean':
          data = rng.fillNormal(n, 0.1);
          break;
        case 'moving_variance':
          data = rng.fillUniform(n, 0.5, 1.5);
          break;
        // A stored Normalization (EfficientNet) after Rescaling(1/255): means and
        // variances of 0..1 pixels (its ImageNet file holds the stds there).
        case 'mean':
          data = rng.fillUniform(n, 0.35, 0.55);
          break;
        case 'variance':
          data = rng.fillUniform(n, 0.2, 0.25);
          break;
        case 'count':
          data = new Float32Array([1281167]);
          break;
        default:
          throw new Error(`no init rule for ${w.originalName}`);
      }
      return tf.tensor(data, w.shape, 'float32');
    });
    l.setWeights(values);
    values.forEach((t) => t.dispose());
  }
}

// Runs the recorded graph eagerly, layer by layer. Every convolution (and
// dense) layer's weights are rescaled so that its output has RMS 1 on this
// input (a data-dependent, LSUV-like initialisation), so activations neither
// vanish nor explode through 50+ layers. The BN statistics stay random.
// Returns the calibrated eager output (disposed by the caller).
function calibrate(b, model, input) {
  const outputs = new Map(); // symbolic tensor id -> concrete tensor
  const refs = new Map(); // symbolic tensor id -> remaining consumers
  for (const op of b.ops) for (const s of op.inputs) refs.set(s.id, (refs.get(s.id) ?? 0) + 1);
  const finalId = model.outputs[0].id;
  refs.set(finalId, (refs.get(finalId) ?? 0) + 1);
  outputs.set(b.input.id, input.clone());
  const scales = {};
  for (const op of b.ops) {
    const ins = op.inputs.map((s) => {
      const t = outputs.get(s.id);
      if (!t) throw new Error(`eager: missing input for ${op.layer.name}`);
      return t;
    });
    let out = op.layer.apply(ins.length === 1 ? ins[0] : ins);
    const cls = kerasClass(op.layer);
    const act = op.layer.activation ? op.layer.activation.getClassName() : 'linear';
    // A layer whose activation is not positively homogeneous (the squeeze-excitation gates' swish and sigmoid)
    // keeps its He-normal weights: rescaling its output would not be rescaling its weights.
    if (['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense'].includes(cls) && ['linear', 'relu'].includes(act)) {
      const rms = tf.tidy(() => tf.sqrt(tf.mean(tf.square(out))).dataSync()[0]);
      if (!(rms > 0) || !Number.isFinite(rms)) throw new Error(`calibration: ${op.layer.name} output RMS is ${rms}`);
      const f = 1 / rms;
      scales[op.layer.name] = f;
      const ws = op.layer.getWeights();
      const names = op.layer.weights.map(shortWeightName);
      const scaled = ws.map((w, i) => (names[i] === 'depthwise_kernel' && cls === 'SeparableConv2D' ? w.clone() : tf.mul(w, f)));
      op.layer.setWeights(scaled);
      scaled.forEach((t) => t.dispose());
      const o2 = tf.mul(out, f);
      out.dispose();
      out = o2;
    }
    for (const s of op.inputs) {
      const r = refs.get(s.id) - 1;
      refs.set(s.id, r);
      if (r === 0) {
        outputs.get(s.id).dispose();
        outputs.delete(s.id);
      }
    }
    outputs.set(op.output.id, out);
  }
  const result = outputs.get(finalId);
  for (const [id, t] of outputs) if (id !== finalId) t.dispose();
  return { result, scales };
}

// ---------------------------------------------------------------------------
// Semantics self-check: tfjs layers against naive loops with TensorFlow's
// SAME padding rule (pad_total = max((out-1)*s + k - in, 0), pad_before =
// floor(pad_total/2)), average pooling excluding padded cells.
// ---------------------------------------------------------------------------

function samePad(inp, k, s) {
  const out = Math.ceil(inp / s);
  const total = Math.max((out - 1) * s + k - inp, 0);
  return { out, before: Math.floor(total / 2) };
}
function geom(inp, k, s, padding) {
  if (padding === 'same') return samePad(inp, k, s);
  return { out: Math.floor((inp - k) / s) + 1, before: 0 };
}
// x: [N,H,W,C] flat; returns flat [N,OH,OW,C*mult] for depthwise / [N,OH,OW,F] for conv
function naiveConv(x, [N, H, W, C], k, [KH, KW, , F], s, padding, depthwise = false) {
  const gh = geom(H, KH, s, padding);
  const gw = geom(W, KW, s, padding);
  const OC = depthwise ? C * F : F;
  const out = new Float32Array(N * gh.out * gw.out * OC);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < gh.out; oy++)
      for (let ox = 0; ox < gw.out; ox++)
        for (let oc = 0; oc < OC; oc++) {
          let acc = 0;
          for (let ky = 0; ky < KH; ky++) {
            const iy = oy * s - gh.before + ky;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < KW; kx++) {
              const ix = ox * s - gw.before + kx;
              if (ix < 0 || ix >= W) continue;
              if (depthwise) {
                const c = Math.floor(oc / F);
                const m = oc % F;
                acc += x[((n * H + iy) * W + ix) * C + c] * k[((ky * KW + kx) * C + c) * F + m];
              } else {
                for (let c = 0; c < C; c++) acc += x[((n * H + iy) * W + ix) * C + c] * k[((ky * KW + kx) * C + c) * F + oc];
              }
            }
          }
          out[((n * gh.out + oy) * gw.out + ox) * OC + oc] = acc;
        }
  return out;
}
function naivePool(x, [N, H, W, C], k, s, padding, mode) {
  const gh = geom(H, k, s, padding);
  const gw = geom(W, k, s, padding);
  const out = new Float32Array(N * gh.out * gw.out * C);
  for (let n = 0; n < N; n++)
    for (let oy = 0; oy < gh.out; oy++)
      for (let ox = 0; ox < gw.out; ox++)
        for (let c = 0; c < C; c++) {
          let acc = mode === 'max' ? -Infinity : 0;
          let cnt = 0;
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * s - gh.before + ky;
            if (iy < 0 || iy >= H) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * s - gw.before + kx;
              if (ix < 0 || ix >= W) continue;
              const v = x[((n * H + iy) * W + ix) * C + c];
              if (mode === 'max') acc = Math.max(acc, v);
              else acc += v;
              cnt++;
            }
          }
          out[((n * gh.out + oy) * gw.out + ox) * C + c] = mode === 'max' ? acc : acc / cnt;
        }
  return out;
}
function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function selfCheck() {
  const rng = new Rng(12345);
  const failures = [];
  const check = (what, got, want) => {
    const d = maxAbsDiff(got, want);
    if (!(d < 1e-4)) failures.push(`${what}: max abs diff ${d}`);
  };
  for (const H of [7, 8]) {
    const C = 3;
    const shape = [2, H, H, C];
    const xData = rng.fillUniform(2 * H * H * C, -1, 1);
    const x = tf.tensor(xData, shape);
    for (const [k, s, padding] of [[3, 1, 'same'], [3, 2, 'same'], [3, 2, 'valid'], [1, 2, 'same'], [5, 2, 'same'], [7, 2, 'valid']]) {
      // Conv2D
      const F = 4;
      const conv = tf.layers.conv2d({ filters: F, kernelSize: k, strides: s, padding, useBias: false, kernelInitializer: 'zeros' });
      conv.apply(tf.input({ shape: [H, H, C] }));
      const kd = rng.fillNormal(k * k * C * F, 1);
      conv.setWeights([tf.tensor(kd, [k, k, C, F])]);
      check(`conv2d k${k} s${s} ${padding} in${H}`, conv.apply(x).dataSync(), naiveConv(xData, shape, kd, [k, k, C, F], s, padding));
      // DepthwiseConv2D
      const dw = tf.layers.depthwiseConv2d({ kernelSize: k, strides: s, padding, useBias: false, depthMultiplier: 1 });
      dw.apply(tf.input({ shape: [H, H, C] }));
      const dd = rng.fillNormal(k * k * C, 1);
      dw.setWeights([tf.tensor(dd, [k, k, C, 1])]);
      check(`depthwise k${k} s${s} ${padding} in${H}`, dw.apply(x).dataSync(), naiveConv(xData, shape, dd, [k, k, C, 1], s, padding, true));
      // Pooling
      for (const mode of ['max', 'avg']) {
        const layer = mode === 'max'
          ? tf.layers.maxPooling2d({ poolSize: k, strides: s, padding })
          : tf.layers.averagePooling2d({ poolSize: k, strides: s, padding });
        check(`${mode}pool k${k} s${s} ${padding} in${H}`, layer.apply(x).dataSync(), naivePool(xData, shape, k, s, padding, mode));
      }
    }
    // SeparableConv2D = depthwise then pointwise (then bias)
    {
      const sep = tf.layers.separableConv2d({ filters: 5, kernelSize: 3, padding: 'same', useBias: true });
      sep.apply(tf.input({ shape: [H, H, C] }));
      const dd = rng.fillNormal(9 * C, 1);
      const pd = rng.fillNormal(C * 5, 1);
      const bd = rng.fillNormal(5, 1);
      sep.setWeights([tf.tensor(dd, [3, 3, C, 1]), tf.tensor(pd, [1, 1, C, 5]), tf.tensor(bd, [5])]);
      const mid = naiveConv(xData, shape, dd, [3, 3, C, 1], 1, 'same', true);
      const want = naiveConv(mid, shape, pd, [1, 1, C, 5], 1, 'valid');
      for (let i = 0; i < want.length; i++) want[i] += bd[i % 5];
      check(`separable in${H}`, sep.apply(x).dataSync(), want);
    }
    // BatchNormalization (inference): (x - mean) / sqrt(var + eps) * gamma + beta, scale=False drops gamma
    for (const scale of [true, false]) {
      const eps = 1e-3;
      const bn = tf.layers.batchNormalization({ axis: 3, epsilon: eps, scale });
      bn.apply(tf.input({ shape: [H, H, C] }));
      const g = rng.fillUniform(C, 0.5, 1.5);
      const be = rng.fillNormal(C, 0.1);
      const mu = rng.fillNormal(C, 0.1);
      const va = rng.fillUniform(C, 0.5, 1.5);
      const ws = (scale ? [g, be, mu, va] : [be, mu, va]).map((a) => tf.tensor(a, [C]));
      bn.setWeights(ws);
      const want = xData.map((v, i) => {
        const c = i % C;
        return ((v - mu[c]) / Math.sqrt(va[c] + eps)) * (scale ? g[c] : 1) + be[c];
      });
      check(`batchnorm scale=${scale} in${H}`, bn.apply(x).dataSync(), want);
    }
    // ReLU(max_value=6), ZeroPadding2D
    {
      const big = tf.mul(x, 10);
      const want = big.dataSync().map((v) => Math.min(Math.max(v, 0), 6));
      check('relu6', tf.layers.reLU({ maxValue: 6 }).apply(big).dataSync(), want);
      const zp = tf.layers.zeroPadding2d({ padding: [[0, 1], [2, 3]] }).apply(x);
      const [, ph, pw] = zp.shape;
      if (ph !== H + 1 || pw !== H + 5) failures.push(`zeroPadding2d shape ${zp.shape}`);
      const zd = zp.dataSync();
      const wantZ = new Float32Array(2 * ph * pw * C);
      for (let n = 0; n < 2; n++)
        for (let y = 0; y < H; y++)
          for (let xx = 0; xx < H; xx++)
            for (let c = 0; c < C; c++) wantZ[((n * ph + y) * pw + xx + 2) * C + c] = xData[((n * H + y) * H + xx) * C + c];
      check('zeroPadding2d ((0,1),(2,3))', zd, wantZ);
      // Cropping2D ((1,0),(2,1)) drops the first row and two first columns and the last column.
      const cropped = tf.layers.cropping2D({ cropping: [[1, 0], [2, 1]] }).apply(x).dataSync();
      const wantC = new Float32Array(2 * (H - 1) * (H - 3) * C);
      for (let n = 0; n < 2; n++)
        for (let y = 1; y < H; y++)
          for (let xx = 2; xx < H - 1; xx++)
            for (let c = 0; c < C; c++) wantC[((n * (H - 1) + y - 1) * (H - 3) + xx - 2) * C + c] = xData[((n * H + y) * H + xx) * C + c];
      check('cropping2d ((1,0),(2,1))', cropped, wantC);
      // CustomScaleLayer: inputs[0] + inputs[1] * scale
      const scaled = new CustomScaleLayer({ scale: 0.17 }).apply([x, big]).dataSync();
      const bd = big.dataSync();
      check('custom scale 0.17', scaled, xData.map((v, i) => v + bd[i] * 0.17));
    }
    x.dispose();
  }
  if (failures.length) {
    throw new Error(`tfjs semantics differ from TensorFlow/Keras:\n  ${failures.join('\n  ')}`);
  }
}

// ---------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------

const SHARD_BYTES = 4 * 1024 * 1024; // tfjs-converter's default shard size

async function writeTfjs(model, dir) {
  fs.mkdirSync(dir, { recursive: true });
  let artifacts;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  let data = artifacts.weightData;
  if (Array.isArray(data)) data = tf.io.concatenateArrayBuffers(data);
  const bytes = new Uint8Array(data);
  const nShards = Math.max(1, Math.ceil(bytes.length / SHARD_BYTES));
  const paths = [];
  for (let i = 0; i < nShards; i++) {
    const p = `group1-shard${i + 1}of${nShards}.bin`;
    fs.writeFileSync(path.join(dir, p), bytes.subarray(i * SHARD_BYTES, Math.min(bytes.length, (i + 1) * SHARD_BYTES)));
    paths.push(p);
  }
  for (const s of artifacts.weightSpecs) {
    if (s.dtype !== 'float32') throw new Error(`tfjs weight ${s.name} is ${s.dtype}, not float32`);
  }
  const json = {
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths, weights: artifacts.weightSpecs }],
  };
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  return { path: 'tfjs/model.json', shards: paths.map((p) => `tfjs/${p}`), bytes: bytes.length };
}

function maxLen(strings) {
  return Math.max(1, ...strings.map((s) => Buffer.byteLength(s, 'utf8')));
}

// numpy.array_split semantics
function arraySplit(arr, n) {
  const out = [];
  const q = Math.floor(arr.length / n);
  const r = arr.length % n;
  let i = 0;
  for (let k = 0; k < n; k++) {
    const len = q + (k < r ? 1 : 0);
    out.push(arr.slice(i, i + len));
    i += len;
  }
  return out;
}

// Keras's save_attributes_to_hdf5_group: a numpy array of byte strings is a
// fixed-length (width = longest string) string attribute; split into
// NAME0, NAME1, ... chunks when requested (Keras does so above 64 KB).
function writeStringListAttr(group, name, list, chunks = 1) {
  if (list.length === 0) {
    // np.asarray([]) is float64 with shape (0,): what Keras writes for a weightless layer.
    group.create_attribute(name, new Float64Array(0), [0]);
    return;
  }
  const width = maxLen(list);
  if (chunks <= 1) {
    group.create_attribute(name, list, [list.length], `A${width}`);
    return;
  }
  arraySplit(list, chunks).forEach((part, i) => {
    group.create_attribute(`${name}${i}`, part, [part.length], `A${width}`);
  });
}

function weightDisplayName(style, layerName, w) {
  const s = shortWeightName(w);
  if (style === 'keras1') {
    const k1 = { kernel: 'W', bias: 'b' }[s];
    if (!k1) throw new Error(`no Keras-1 name for ${w.originalName}`);
    return `${layerName}_${k1}_1:0`;
  }
  return `${layerName}/${s}:0`;
}

// Writes the Keras legacy save_weights layout into `root` (file or group).
//  rename: original layer name -> name to write (for the Keras 2.0 variant)
//  nested: layer name -> the nested model Keras keeps it in (ConvNeXt's Sequential
//    blocks): one group per nested model, listed once in layer_names, whose
//    weight_names are its layers' "<layer>/<param>:0" (datasets under
//    <model>/<layer>/), as Keras saves a model inside a model.
// A Normalization's count is int64, as Keras stores it.
function writeKerasWeights(root, model, { rename = (n) => n, style = 'keras2', splitLayerNames = 1, splitBnWeightNames = 1, attrs = true, nested = {} }) {
  const entries = [];
  for (const l of model.layers) {
    const container = nested[l.name];
    const last = entries[entries.length - 1];
    if (container && last && last.name === container) last.layers.push(l);
    else entries.push({ name: container ?? rename(l.name), layers: [l], nested: !!container });
  }
  writeStringListAttr(root, 'layer_names', entries.map((e) => e.name), splitLayerNames);
  if (attrs) {
    root.create_attribute('backend', 'tensorflow', null, 'A');
    root.create_attribute('keras_version', '2.2.4', null, 'A');
  }
  for (const e of entries) {
    const g = root.create_group(e.name);
    const weights = e.layers.flatMap((l) => l.weights.map((w) => ({ w, layer: e.nested ? l.name : e.name })));
    const wnames = weights.map(({ w, layer }) => weightDisplayName(style, layer, w));
    const bn = !e.nested && e.layers[0].getClassName() === 'BatchNormalization';
    writeStringListAttr(g, 'weight_names', wnames, bn ? splitBnWeightNames : 1);
    const values = e.layers.flatMap((l) => l.getWeights());
    wnames.forEach((wn, i) => {
      const parts = wn.split('/');
      let target = g;
      for (const p of parts.slice(0, -1)) {
        target = target.keys().includes(p) ? target.get(p) : target.create_group(p);
      }
      const count = shortWeightName(weights[i].w) === 'count';
      target.create_dataset({
        name: parts[parts.length - 1],
        data: count ? new BigInt64Array([BigInt(Math.round(values[i].dataSync()[0]))]) : values[i].dataSync(),
        shape: values[i].shape,
        dtype: count ? '<q' : '<f4',
      });
    });
    // getWeights() returns the layer's own variables: do not dispose them.
  }
}

// How a file with nested models differs from the flat layer list: its layer_names and which layers each model holds.
function nestedInfo(b, model) {
  if (Object.keys(b.nested).length === 0) return {};
  const names = [];
  for (const l of model.layers) {
    const n = b.nested[l.name] ?? l.name;
    if (names[names.length - 1] !== n || !b.nested[l.name]) names.push(n);
  }
  return { layer_names: names, nested: b.nested };
}

function writeH5(file, fn) {
  if (fs.existsSync(file)) fs.unlinkSync(file);
  const f = new h5wasm.File(file, 'w');
  try {
    fn(f);
  } finally {
    f.close();
  }
}

function writeF32(file, tensor) {
  const d = tensor.dataSync();
  const buf = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  fs.writeFileSync(file, buf); // little-endian on every platform Node runs on here
  return { shape: tensor.shape, dtype: 'float32', byte_order: 'little', layout: tensor.shape.length === 4 ? 'NHWC' : 'NC' };
}

function stats(t) {
  return tf.tidy(() => {
    const d = t.dataSync();
    let nan = 0;
    let nonzero = 0;
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let sq = 0;
    for (const v of d) {
      if (!Number.isFinite(v)) {
        nan++;
        continue;
      }
      if (v !== 0) nonzero++;
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      sq += v * v;
    }
    const n = d.length - nan;
    const mean = sum / n;
    const std = Math.sqrt(Math.max(0, sq / n - mean * mean));
    return { count: d.length, non_finite: nan, nonzero_fraction: nonzero / d.length, min, max, mean, std };
  });
}

function relDiff(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += a[i] ** 2 + b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

// ---------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------

async function runCase(c, outRoot) {
  const t0 = Date.now();
  const dir = path.join(outRoot, c.name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });

  const { b, model, features } = buildModel(c);
  checkWeightNames(model);
  const rng = new Rng(c.seed);
  randomizeWeights(model, rng);

  const S = c.size;
  const batch = 2;
  const [lo, hi] = c.inputRange ?? [-1, 1];
  const input = tf.tensor(rng.fillUniform(batch * S * S * 3, lo, hi), [batch, S, S, 3], 'float32');

  const { result: eager, scales } = calibrate(b, model, input);

  // Reference outputs from the assembled tfjs model with the final weights.
  const multi = tf.model({ inputs: model.inputs, outputs: c.includeTop ? [features, model.outputs[0]] : [features] });
  let outs = multi.predict(input);
  if (!Array.isArray(outs)) outs = [outs];
  const feat = outs[0];
  const probs = c.includeTop ? outs[1] : null;
  const pooled = tf.mean(feat, [1, 2]);

  // Consistency: eager calibrated pass vs the model's own forward pass.
  const eagerVsModel = relDiff(eager.dataSync(), (probs ?? feat).dataSync());
  eager.dispose();
  if (!(eagerVsModel < 1e-4)) throw new Error(`${c.name}: eager pass and model.predict differ (rel ${eagerVsModel})`);

  // Fail loudly on degenerate outputs.
  const fs_ = stats(feat);
  const ps_ = stats(pooled);
  const pd = pooled.arraySync();
  const imgDiff = relDiff(pd[0], pd[1]);
  const problems = [];
  if (fs_.non_finite) problems.push(`${fs_.non_finite} non-finite feature values`);
  if (!(fs_.std > 1e-2)) problems.push(`feature std ${fs_.std}`);
  if (!(fs_.nonzero_fraction > 0.05)) problems.push(`only ${(fs_.nonzero_fraction * 100).toFixed(2)}% of features non-zero`);
  if (!(ps_.std > 1e-3)) problems.push(`pooled std ${ps_.std}`);
  if (!(imgDiff > 1e-3)) problems.push(`the two images give (nearly) the same pooled features (rel diff ${imgDiff})`);
  if (!(fs_.max < 1e4)) problems.push(`features too large (max ${fs_.max})`);
  let probsStats = null;
  if (probs) {
    probsStats = stats(probs);
    const pa = probs.arraySync();
    for (const row of pa) {
      const s = row.reduce((a, v) => a + v, 0);
      const mx = Math.max(...row);
      if (Math.abs(s - 1) > 1e-4) problems.push(`probabilities sum to ${s}`);
      if (!(mx < 0.5) || !(mx > 2 / row.length)) problems.push(`degenerate softmax (max prob ${mx})`);
    }
    probsStats.max_prob = pa.map((r) => Math.max(...r));
    if (probsStats.non_finite) problems.push('non-finite probabilities');
  }
  if (problems.length) throw new Error(`${c.name}: degenerate output: ${problems.join('; ')}`);

  // Files
  const files = {};
  files.input = { path: 'input.f32', ...writeF32(path.join(dir, 'input.f32'), input) };
  files.features = { path: 'features.f32', ...writeF32(path.join(dir, 'features.f32'), feat), layer: features.sourceLayer.name };
  files.pooled = { path: 'pooled.f32', ...writeF32(path.join(dir, 'pooled.f32'), pooled), note: 'mean of features over H and W' };
  if (probs) files.probs = { path: 'probs.f32', ...writeF32(path.join(dir, 'probs.f32'), probs), layer: model.outputs[0].sourceLayer.name };

  files.tfjs = await writeTfjs(model, path.join(dir, 'tfjs'));

  const namingCurrent = (c.autoBase ?? 0) === 1
    ? 'Keras 2.0-2.2 auto-names for unnamed layers (activation_1, add_1, max_pooling2d_1, ...)'
    : 'tf.keras 2.x / Keras 3 auto-names for unnamed layers (conv2d, conv2d_1, batch_normalization, ...); input is input_1';
  const layerNames = model.layers.map((l) => l.name);

  writeH5(path.join(dir, 'keras_legacy.h5'), (f) => writeKerasWeights(f, model, { nested: b.nested }));
  files.keras_legacy = {
    path: 'keras_legacy.h5',
    layout: 'Keras save_weights (legacy HDF5): root attrs layer_names, backend, keras_version; group per layer with attr weight_names; datasets at <layer>/<weight_name>',
    naming: namingCurrent,
    weight_names: '<layer>/<param>:0',
    keras_version: '2.2.4',
    ...nestedInfo(b, model),
  };

  if (c.keras1) {
    writeH5(path.join(dir, 'keras1.h5'), (f) => writeKerasWeights(f, model, { style: 'keras1', attrs: false }));
    files.keras1 = {
      path: 'keras1.h5',
      layout: 'Keras 1 save_weights: root attr layer_names only (no keras_version/backend, so Keras treats it as version 1); datasets <layer>/<layer>_W_1:0 (kernel, HWIO) and <layer>/<layer>_b_1:0 (bias)',
      naming: 'same layer names as keras_legacy.h5',
      weight_names: '<layer>_W_1:0, <layer>_b_1:0 (no slash)',
    };
  }

  if (c.keras20) {
    const shift = (n) => {
      const m = /^(conv2d|batch_normalization|activation|max_pooling2d|average_pooling2d|concatenate|add|input)(?:_(\d+))?$/.exec(n);
      if (!m || n === 'input_1') return n;
      return `${m[1]}_${m[2] === undefined ? 1 : Number(m[2]) + 1}`;
    };
    writeH5(path.join(dir, 'keras20.h5'), (f) => writeKerasWeights(f, model, { rename: shift }));
    files.keras20 = {
      path: 'keras20.h5',
      layout: files.keras_legacy.layout,
      naming: 'Keras 2.0-era auto-names: every auto-name index shifted by one (conv2d -> conv2d_1, conv2d_93 -> conv2d_94, batch_normalization -> batch_normalization_1, concatenate -> concatenate_1, ...); named layers (mixed0..mixed10, mixed9_0, mixed9_1) and input_1 unchanged',
      weight_names: '<layer>/<param>:0',
      keras_version: '2.2.4',
      layer_names: model.layers.map((l) => shift(l.name)),
      rename_map: Object.fromEntries(model.layers.filter((l) => shift(l.name) !== l.name).map((l) => [l.name, shift(l.name)])),
    };
  }

  if (c.split) {
    const chunks = 3;
    writeH5(path.join(dir, 'keras_split.h5'), (f) => writeKerasWeights(f, model, { splitLayerNames: chunks, splitBnWeightNames: 2 }));
    files.keras_split = {
      path: 'keras_split.h5',
      layout: 'as keras_legacy.h5, but attributes split the way Keras splits attributes over 64 KB (numpy.array_split): root layer_names0..layer_names2 (no layer_names), and every BatchNormalization group has weight_names0, weight_names1 (2 names each) instead of weight_names; each chunk keeps the full array\'s string width',
      naming: namingCurrent,
      chunks: { layer_names: chunks, bn_weight_names: 2 },
      keras_version: '2.2.4',
    };
  }

  if (c.fullModel) {
    const rawTopo = JSON.parse(fs.readFileSync(path.join(dir, "tfjs", "model.json"), "utf8")).modelTopology;
    const topo = { model_config: rawTopo.model_config ?? { class_name: rawTopo.class_name, config: rawTopo.config } };
    const modelConfig = JSON.stringify({ class_name: topo.model_config.class_name, config: topo.model_config.config });
    writeH5(path.join(dir, 'keras_model.h5'), (f) => {
      f.create_attribute('keras_version', '2.2.4', null, 'A');
      f.create_attribute('backend', 'tensorflow', null, 'A');
      f.create_attribute('model_config', modelConfig, null, 'A');
      const g = f.create_group('model_weights');
      writeKerasWeights(g, model, { nested: b.nested });
    });
    files.keras_model = {
      path: 'keras_model.h5',
      layout: 'Keras 2 full-model HDF5 (model.save): root attrs keras_version, backend, model_config (JSON, scalar variable-length string); weights under group model_weights in the legacy save_weights layout (with its own layer_names/backend/keras_version attrs); no training_config',
      model_config_class_name: topo.model_config.class_name,
      naming: namingCurrent,
      keras_version: '2.2.4',
    };
  }

  // Manifest
  const trainable = model.trainableWeights.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1), 0);
  const total = model.countParams();
  const manifest = {
    case: c.name,
    architecture: c.arch,
    keras_source: KERAS_SOURCES[c.arch],
    model_name: model.name,
    input_size: S,
    alpha: c.alpha ?? null,
    include_top: !!c.includeTop,
    classes: c.includeTop ? 1000 : null,
    batch,
    seed: c.seed,
    input_range: c.inputRange ?? [-1, 1],
    feature_shape: feat.shape,
    feature_layer: features.sourceLayer.name,
    output_shape: (probs ?? feat).shape,
    layer_names: layerNames,
    weighted_layers: model.layers.filter((l) => l.weights.length > 0).map((l) => l.name),
    params: { total, trainable, non_trainable: total - trainable },
    layers: model.layers.map((l) => ({
      name: l.name,
      class_name: kerasClass(l),
      output_shape: l.outputShape,
      params: l.countParams(),
      weights: l.weights.map((w) => ({ name: shortWeightName(w), shape: w.shape, trainable: w.trainable })),
      ...layerDetails(l),
    })),
    files,
    string_kind: STRING_KIND,
    stats: { features: fs_, pooled: ps_, probs: probsStats, pooled_image_rel_diff: imgDiff, eager_vs_model_rel_diff: eagerVsModel },
    calibration_scale: scales,
    generator: { tfjs: tf.version.tfjs, h5wasm: '0.10.3', backend: tf.getBackend() },
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));

  [input, feat, pooled, probs].forEach((t) => t && t.dispose());
  tf.dispose(model.weights.map((w) => w.val));
  const secs = (Date.now() - t0) / 1000;
  return { name: c.name, total, trainable, non_trainable: total - trainable, feature_shape: feat.shape, output_shape: manifest.output_shape, secs };
}

function layerDetails(l) {
  const cfg = l.getConfig();
  const d = {};
  for (const k of ['strides', 'padding', 'kernelSize', 'poolSize', 'epsilon', 'useBias', 'scale', 'center', 'maxValue', 'axis', 'filters', 'depthMultiplier', 'keepdims', 'targetShape', 'rate']) {
    if (cfg[k] !== undefined) d[k.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)] = cfg[k];
  }
  if (cfg.activation !== undefined) d.activation = cfg.activation;
  return d;
}

const STRING_KIND = {
  string_lists: 'fixed-length ASCII (H5T_STRING, H5T_C_S1, STRPAD NULLTERM, CSET ASCII), width = longest name in bytes: the longest name has no terminating NUL (like h5py\'s NULLPAD |S<n> arrays); shorter ones are NUL-padded',
  applies_to: ['layer_names', 'layer_namesN', 'weight_names', 'weight_namesN'],
  empty_weight_names: 'float64 attribute with shape (0,) (what numpy/Keras writes for a weightless layer)',
  scalars: 'variable-length ASCII scalar strings (H5T_C_S1, NULLTERM) for backend, keras_version and model_config (what h5py writes for Python bytes)',
};

// ---------------------------------------------------------------------------
// --verify-params: build at the default size and compare with Keras's totals
// ---------------------------------------------------------------------------

function verifyParams() {
  let bad = 0;
  for (const p of PUBLISHED_NOTOP) {
    const b = new Builder(p.size, 0);
    const { features, top } = p.build(b);
    const m = tf.model({ inputs: b.input, outputs: top ?? features });
    const total = m.countParams();
    const ok = total === p.total;
    if (!ok) bad++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${p.arch.padEnd(26)} at ${p.size}: ${total.toLocaleString('en-US')} (Keras: ${p.total.toLocaleString('en-US')})`);
    tf.dispose(m.weights.map((w) => w.val));
  }
  if (bad) {
    console.error(`${bad} parameter totals differ from Keras`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

function parseArgs(argv) {
  const o = { out: null, cases: [], list: false, verifyParams: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') o.out = argv[++i];
    else if (a === '--case') o.cases.push(argv[++i]);
    else if (a === '--list') o.list = true;
    else if (a === '--verify-params') o.verifyParams = true;
    else if (a === '-h' || a === '--help') o.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.help || (!o.out && !o.list && !o.verifyParams)) {
    console.log('usage: node generate.js --out DIR [--case NAME ...] | --list | --verify-params');
    process.exit(o.help ? 0 : 2);
  }
  await quietTf();
  if (o.list) {
    for (const c of CASES) console.log(`${c.name.padEnd(24)} ${c.arch} size ${c.size}${c.alpha ? ` alpha ${c.alpha}` : ''}${c.includeTop ? ' with top' : ''}`);
    return;
  }
  selfCheck();
  if (o.verifyParams) {
    verifyParams();
    if (!o.out) return;
  }
  await h5wasm.ready;
  // --case takes a case name or an architecture name (all of its cases).
  const unknown = o.cases.filter((n) => !CASES.some((c) => c.name === n || c.arch === n));
  if (unknown.length) throw new Error(`unknown case(s): ${unknown.join(', ')} (see --list)`);
  const selected = o.cases.length ? CASES.filter((c) => o.cases.includes(c.name) || o.cases.includes(c.arch)) : CASES;
  fs.mkdirSync(o.out, { recursive: true });
  const t0 = Date.now();
  const summary = [];
  for (const c of selected) {
    const r = await runCase(c, o.out);
    summary.push(r);
    console.log(`${r.name.padEnd(24)} params ${String(r.total).padStart(9)} (trainable ${r.trainable}, non-trainable ${r.non_trainable})  features ${JSON.stringify(r.feature_shape)}  output ${JSON.stringify(r.output_shape)}  ${r.secs.toFixed(1)}s`);
  }
  fs.writeFileSync(path.join(o.out, 'index.json'), JSON.stringify({ cases: summary.map((s) => s.name), generator: 'tests/keras-reference/generate.js' }, null, 1));
  console.log(`wrote ${summary.length} case(s) to ${o.out} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

main().catch((e) => {
  console.error(`generate.js: FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
