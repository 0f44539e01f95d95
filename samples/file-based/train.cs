#!/usr/bin/env dotnet
// A .NET 10 file-based app: `dotnet run train.cs -- PHOTOS` trains a classifier and saves it beside the photos' name.
// File-based apps default to native AOT, which libtorch (TorchSharp) and reflection-based JSON cannot use: off.
#:package Graft@0.9.0-*
#:property RuntimeIdentifier=linux-x64
#:property PublishAot=false
using Graft;

var photos = args[0];
var result = await ImageClassifierLearner.FromFolder(photos, testSplit: 0.2).FitAsync();
var test = result.Test ?? result.Validation!;
Console.WriteLine($"{Path.GetFileName(Path.TrimEndingDirectorySeparator(photos))}: accuracy {test.Accuracy:P1} on {test.Images} test images");
result.Model.Save(Path.GetFileName(Path.TrimEndingDirectorySeparator(photos)) + ".graft");
