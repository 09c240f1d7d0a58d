"use strict";
// fmnist's exported page: the model runs here, in onnxruntime-web; no server is asked anything.
// An image becomes the model's input as fmnist's Python does it (fmnist_core.data.images):
// transparent pixels on black, ITU-R 601 luma, inverted when its border is mostly light, fitted
// into 28×28 keeping its aspect ratio (the browser's smoothing here, Lanczos in fmnist).
const $ = (id) => document.getElementById(id);
const LABELS = JSON.parse((window.FMNIST_MODEL || {}).labels || "[]"); // fmnist's label map
const SIZE = 28;

ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a static host lacks
ort.env.wasm.wasmPaths = "./";
const session = ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });

async function describe() {
  const info = window.FMNIST_MODEL || {};
  try {
    await session;
    const accuracy = info.test_accuracy ? `, test accuracy ${(100 * Number(info.test_accuracy)).toFixed(2)}%` : "";
    $("model").textContent = `model ${info.fmnist_model} in this browser (onnxruntime-web)${accuracy}`;
    document.body.dataset.ready = "true";
  } catch (error) {
    $("model").textContent = `the model could not be loaded: ${error}`;
  }
}

function gray(rgba, width, height) {
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; // Pillow's convert("L")
  }
  return out;
}

function invertIfLight(pixels, width, height) {
  let sum = 0, count = 0;
  const add = (x, y) => { sum += pixels[y * width + x]; count++; };
  for (let x = 0; x < width; x++) { add(x, 0); add(x, height - 1); }
  for (let y = 0; y < height; y++) { add(0, y); add(width - 1, y); }
  if (sum / count > 127) for (let i = 0; i < pixels.length; i++) pixels[i] = 255 - pixels[i];
  return pixels;
}

function toCanvas(pixels, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < pixels.length; i++) {
    image.data.set([pixels[i], pixels[i], pixels[i], 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

// the image (any size) as the model's 28×28 uint8 input
function modelInput(bitmap) {
  const { width, height } = bitmap;
  const source = document.createElement("canvas");
  source.width = width; source.height = height;
  const context = source.getContext("2d");
  context.fillStyle = "#000"; context.fillRect(0, 0, width, height); // transparency on black
  context.drawImage(bitmap, 0, 0);
  const pixels = invertIfLight(gray(context.getImageData(0, 0, width, height).data, width, height), width, height);
  if (width === SIZE && height === SIZE) return pixels;
  const scale = SIZE / Math.max(width, height);
  const w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
  const fitted = document.createElement("canvas");
  fitted.width = SIZE; fitted.height = SIZE;
  const small = fitted.getContext("2d");
  small.fillStyle = "#000"; small.fillRect(0, 0, SIZE, SIZE);
  small.imageSmoothingQuality = "high";
  small.drawImage(toCanvas(pixels, width, height), Math.floor((SIZE - w) / 2), Math.floor((SIZE - h) / 2), w, h);
  return gray(small.getImageData(0, 0, SIZE, SIZE).data, SIZE, SIZE);
}

function softmax(logits) {
  const top = Math.max(...logits);
  const exp = logits.map((v) => Math.exp(v - top));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp.map((v) => v / total);
}

function show(pixels, probabilities) {
  $("error").hidden = true;
  $("preview").src = toCanvas(pixels, SIZE, SIZE).toDataURL("image/png");
  $("preview").hidden = false;
  const best = probabilities.indexOf(Math.max(...probabilities));
  $("label").textContent = LABELS[best];
  $("label").dataset.index = String(best);
  $("bars").dataset.probabilities = JSON.stringify(probabilities); // every class, for scripts
  const ranked = probabilities.map((p, index) => ({ p, name: LABELS[index] }))
    .sort((a, b) => b.p - a.p).slice(0, 5);
  $("bars").replaceChildren(...ranked.map(({ p, name }) => {
    const row = document.createElement("li");
    row.innerHTML = `<span class="name"></span><span class="bar"></span><span class="value"></span>`;
    row.querySelector(".name").textContent = name;
    row.querySelector(".bar").style.width = `${Math.max(1, 100 * p)}%`;
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    return row;
  }));
}

function fail(message) {
  $("preview").hidden = true;
  $("label").textContent = "";
  $("bars").replaceChildren();
  $("error").textContent = message;
  $("error").hidden = false;
}

async function classify(blob) {
  try {
    const pixels = modelInput(await createImageBitmap(blob));
    const input = new ort.Tensor("uint8", pixels, [1, SIZE, SIZE]);
    const output = await (await session).run({ images: input });
    show(pixels, softmax(Array.from(output.logits.data)));
  } catch (error) {
    fail(`this image could not be classified: ${error}`);
  }
}

$("file").addEventListener("change", (event) => { if (event.target.files[0]) classify(event.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files[0]) classify(event.dataTransfer.files[0]);
});

const canvas = $("canvas");
const pen = canvas.getContext("2d");
function clear() { pen.fillStyle = "#000"; pen.fillRect(0, 0, canvas.width, canvas.height); }
clear();
let drawing = false;
function at(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}
canvas.addEventListener("pointerdown", (event) => { drawing = true; pen.beginPath(); pen.moveTo(...at(event)); });
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  pen.lineWidth = 22; pen.lineCap = "round"; pen.strokeStyle = "#fff";
  pen.lineTo(...at(event)); pen.stroke();
});
window.addEventListener("pointerup", () => { drawing = false; });
$("clear").addEventListener("click", clear);
$("predict-drawing").addEventListener("click", () => canvas.toBlob((blob) => classify(blob), "image/png"));

describe();
