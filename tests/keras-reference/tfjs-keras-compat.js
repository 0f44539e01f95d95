// Keras behaviour that tfjs-layers 4.22 lacks, shared by generate.js and verify.js.
import * as tf from '@tensorflow/tfjs';

// tfjs-layers' GlobalAveragePooling2D has no `keepdims`. Keras's current
// MobileNet top uses GlobalAveragePooling2D(keepdims=True), so this subclass,
// registered under the same class name, honours `keepdims` and serializes it
// under the Keras key "keepdims". A stock tfjs loader ignores the key (and
// then fails on MobileNet's top): load such a model.json after importing this
// module.
const BaseGAP = tf.layers.globalAveragePooling2d({}).constructor;

export class KerasGlobalAveragePooling2D extends BaseGAP {
  constructor(args) {
    super(args || {});
    this.keepdims = !!(args && args.keepdims);
  }

  computeOutputShape(inputShape) {
    const s = super.computeOutputShape(inputShape);
    if (!this.keepdims) return s;
    return this.dataFormat === 'channelsLast' ? [s[0], 1, 1, s[1]] : [s[0], s[1], 1, 1];
  }

  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const axes = this.dataFormat === 'channelsLast' ? [1, 2] : [2, 3];
      return tf.mean(x, axes, this.keepdims);
    });
  }

  getConfig() {
    const c = super.getConfig();
    c.keepdims = this.keepdims;
    return c;
  }
}
KerasGlobalAveragePooling2D.className = 'GlobalAveragePooling2D';
tf.serialization.registerClass(KerasGlobalAveragePooling2D);

// Keras's InceptionResNetV2 adds each block's branch scaled to its input with
// an unnamed CustomScaleLayer (inputs[0] + inputs[1] * scale; a Lambda named
// after its block before Keras 2.13); tfjs has no such layer. Registered under
// Keras's class name with its "scale" config, so model.json round-trips once
// this module is imported.
export class CustomScaleLayer extends tf.layers.Layer {
  constructor(args) {
    super(args);
    this.scale = args.scale;
  }

  computeOutputShape(inputShape) {
    return inputShape[0];
  }

  call(inputs) {
    return tf.tidy(() => tf.add(inputs[0], tf.mul(inputs[1], this.scale)));
  }

  getConfig() {
    return { ...super.getConfig(), scale: this.scale };
  }
}
CustomScaleLayer.className = 'CustomScaleLayer';
tf.serialization.registerClass(CustomScaleLayer);

// Pure-JS CPU backend, without the "install tfjs-node" banner (PROD only
// silences tfjs warnings; it changes no arithmetic).
export async function quietTf() {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  await tf.ready();
}

// ---------------------------------------------------------------------------
// Keras layers tfjs-layers 4.22 lacks, for the EfficientNets, MobileNetV3 and
// ConvNeXt. Each names its Keras class in `kerasClassName` (what Keras's
// summary prints); the tfjs class names are registered under their own names.
// ---------------------------------------------------------------------------

function initializer() {
  return tf.initializers.glorotUniform({});
}

// Keras Normalization on the last axis: (x - mean) / max(sqrt(variance), 1e-7).
// stored: mean, variance and count are weights (EfficientNet; count is int64 in
// Keras's files, float32 here); else mean and variance are constants.
export class KerasNormalization extends tf.layers.Layer {
  constructor(args) {
    super(args);
    this.stored = !!args.stored;
    this.meanValues = args.mean ?? null;
    this.varianceValues = args.variance ?? null;
  }
  build(inputShape) {
    const c = inputShape[inputShape.length - 1];
    if (this.stored) {
      this.mean = this.addWeight('mean', [c], 'float32', tf.initializers.zeros(), null, false);
      this.variance = this.addWeight('variance', [c], 'float32', tf.initializers.ones(), null, false);
      this.count = this.addWeight('count', [], 'float32', tf.initializers.zeros(), null, false);
    }
    this.built = true;
  }
  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const mean = this.stored ? this.mean.read() : tf.tensor1d(this.meanValues);
      const variance = this.stored ? this.variance.read() : tf.tensor1d(this.varianceValues);
      return tf.div(tf.sub(x, mean), tf.maximum(tf.sqrt(variance), 1e-7));
    });
  }
  get kerasClassName() {
    return 'Normalization';
  }
  getConfig() {
    return { ...super.getConfig(), stored: this.stored, mean: this.meanValues, variance: this.varianceValues };
  }
}
KerasNormalization.className = 'KerasNormalization';
tf.serialization.registerClass(KerasNormalization);

// Keras 3's operator node between a tensor and a constant (x + 3, x * (1/6) in
// MobileNetV3's hard sigmoid), which its summary lists as Add / Multiply.
export class KerasScalarOp extends tf.layers.Layer {
  constructor(args) {
    super(args);
    this.op = args.op;
    this.value = args.value;
  }
  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return this.op === 'add' ? tf.add(x, tf.scalar(this.value)) : tf.mul(x, tf.scalar(this.value));
    });
  }
  get kerasClassName() {
    return this.op === 'add' ? 'Add' : 'Multiply';
  }
  getConfig() {
    return { ...super.getConfig(), op: this.op, value: this.value };
  }
}
KerasScalarOp.className = 'KerasScalarOp';
tf.serialization.registerClass(KerasScalarOp);

// ConvNeXt's LayerScale: x * gamma on the last axis.
export class KerasLayerScale extends tf.layers.Layer {
  build(inputShape) {
    this.gamma = this.addWeight('gamma', [inputShape[inputShape.length - 1]], 'float32', tf.initializers.ones());
    this.built = true;
  }
  call(inputs) {
    return tf.tidy(() => tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, this.gamma.read()));
  }
  get kerasClassName() {
    return 'LayerScale';
  }
}
KerasLayerScale.className = 'KerasLayerScale';
tf.serialization.registerClass(KerasLayerScale);

// Keras Conv2D with groups = filters = input channels (ConvNeXt's 7x7
// depthwise Conv2D): kernel [k, k, 1, C] and bias [C], stride 1, SAME. tfjs's
// conv2d has no groups; this is tfjs's depthwise convolution with that kernel
// viewed as [k, k, C, 1] (the same values in the same order).
export class KerasGroupedConv2D extends tf.layers.Layer {
  constructor(args) {
    super(args);
    this.kernelSize = args.kernelSize;
    this.filters = args.filters;
  }
  build(inputShape) {
    const c = inputShape[inputShape.length - 1];
    if (c !== this.filters) throw new Error(`${this.name}: groups = filters = channels only (got ${c} channels, ${this.filters} filters)`);
    this.kernel = this.addWeight('kernel', [this.kernelSize, this.kernelSize, 1, c], 'float32', initializer());
    this.bias = this.addWeight('bias', [c], 'float32', tf.initializers.zeros());
    this.built = true;
  }
  call(inputs) {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const k = tf.reshape(this.kernel.read(), [this.kernelSize, this.kernelSize, this.filters, 1]);
      return tf.add(tf.depthwiseConv2d(x, k, 1, 'same'), this.bias.read());
    });
  }
  get kerasClassName() {
    return 'Conv2D';
  }
  getConfig() {
    return { ...super.getConfig(), kernelSize: this.kernelSize, filters: this.filters, groups: this.filters, padding: 'same', strides: 1 };
  }
}
KerasGroupedConv2D.className = 'KerasGroupedConv2D';
tf.serialization.registerClass(KerasGroupedConv2D);

// Keras's "hard_swish" activation, x * relu6(x + 3) / 6, which tfjs lacks.
const BaseActivation = Object.getPrototypeOf(tf.layers.activation({ activation: 'relu' }).activation.constructor);
export class HardSwish extends BaseActivation {
  apply(x) {
    return tf.tidy(() => tf.mul(x, tf.div(tf.relu6(tf.add(x, 3)), 6)));
  }
}
HardSwish.className = 'hard_swish';
tf.serialization.registerClass(HardSwish);
// tfjs turns a model.json's snake_case values into camelCase when it loads one ("hard_swish" → "hardSwish").
class HardSwishOnLoad extends HardSwish {}
HardSwishOnLoad.className = 'hardSwish';
tf.serialization.registerClass(HardSwishOnLoad);
