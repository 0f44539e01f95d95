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
