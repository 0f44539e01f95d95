using Graft.Backbones;
using Graft.Models;
using Graft.Inference;
using static TorchSharp.torch;

namespace Graft.Tests;

/// <summary>
/// Keras's own MobileNet 0.25 files and the same network from TF.js and TFLite, against the outputs an independent
/// implementation (tfjs-layers) computed for the shared reference photos.
/// </summary>
public class RealWeightsTests
{
    static readonly string[] Photos = ["bird.bmp", "cat.bmp", "chelsea.png", "coffee.png", "grace_hopper.bmp", "parrot.jpg", "sunflower.bmp"];

    static float[] ReadFloats(string relative)
    {
        var bytes = File.ReadAllBytes(Assets.Shared(relative));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    [Theory]
    [InlineData("chelsea", new[] { "lynx, catamount", "Egyptian cat", "tabby, tabby cat" })]
    [InlineData("coffee", new[] { "espresso" })]
    public void Keras_h5_with_top_gives_the_reference_probabilities(string photo, string[] top)
    {
        using var model = TrainableClassifier.PretrainedImageNet("mobilenet_0.25", Assets.Resolver,
            Assets.Shared("models/keras/mobilenet_2_5_128_tf.h5"), inputSize: 128);
        Assert.Equal(1000, model.Classes.Count);
        using var scope = NewDisposeScope();
        // The reference's own preprocessed input (bilinear resize, x / 127.5 - 1), NHWC → NCHW.
        var input = tensor(ReadFloats($"reference/keras_mobilenet_0.25_128/{photo}_128_input_tfmode.f32"), [1L, 128, 128, 3]).permute(0, 3, 1, 2).contiguous();
        var probabilities = model.Probabilities(input);
        var expected = tensor(ReadFloats($"reference/keras_mobilenet_0.25_128/{photo}_128_probs.f32"), [1L, 1000]);
        float difference = (probabilities - expected).abs().max().item<float>();
        Assert.True(difference < 1e-4, $"max |Graft - reference| = {difference}");
        var ranked = probabilities[0].argsort(descending: true).data<long>().Take(top.Length).Select(i => model.Classes[(int)i]);
        Assert.Equal(top, ranked);
    }

    [Fact]
    public void Tfjs_and_keras_files_of_the_same_weights_give_the_same_features()
    {
        var config = BackboneRegistry.Get("mobilenet_0.25");
        using var keras = Backbone.LoadPretrained(config, Assets.Resolver, weightsFile: Assets.Shared("models/keras/mobilenet_2_5_224_tf_no_top.h5"));
        using var tfjs = Backbone.LoadPretrained(config, Assets.Resolver, weightsFile: Assets.Shared("models/tfjs/mobilenet_v1_0.25_224/mobilenet_model.json"));
        Assert.Contains("by name", keras.LoadReport);
        Assert.Contains("not used: conv_preds", tfjs.LoadReport); // the TF.js file has the top; the trunk leaves it
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        manual_seed(1);
        var images = rand(2, 3, 224, 224) * 2 - 1;
        Assert.Equal(0f, (keras.Trunk.forward(images) - tfjs.Trunk.forward(images)).abs().max().item<float>()); // bit-identical arrays
    }

    [Fact]
    public async Task Keras_tfjs_and_tflite_files_agree_on_the_confident_photos()
    {
        async Task<IReadOnlyList<Prediction>> Predict(string file, int? size)
        {
            using var model = TrainableClassifier.PretrainedImageNet("mobilenet_0.25", Assets.Resolver, Assets.Shared(file), size);
            return await model.PredictAsync(Photos.Select(p => Assets.Shared($"images/imagenet/{p}")).ToList(), 3, []);
        }
        var keras = await Predict("models/keras/mobilenet_2_5_128_tf.h5", 128);
        var tflite = await Predict("models/coral/mobilenet_v1_0.25_128_quant.tflite", null); // the file fixes 128 and 1001 classes
        var tfjs = await Predict("models/tfjs/mobilenet_v1_0.25_224/mobilenet_model.json", null);
        for (int i = 0; i < Photos.Length; i++)
        {
            // The uint8 TFLite model was trained with quantization; where Keras's float model is sure, all three agree.
            if (keras[i].Confidence < 0.5) continue;
            Assert.Equal(keras[i].Label, tflite[i].Label);
            Assert.Equal(keras[i].Label, tfjs[i].Label);
        }
        Assert.Equal(["chickadee", "Egyptian cat", "espresso", "macaw"], Photos.Select((_, i) => keras[i]).Where(p => p.Confidence >= 0.5).Select(p => p.Label));
    }
}
