"use strict";
// The page of `fmnist serve`: send an image (chosen, dropped or drawn) to /predict, show the
// classes as probability bars. Nothing is fetched from anywhere but this server.
const $ = (id) => document.getElementById(id);

// the model's description (its labels name the bars), asked for once
const metadata = fetch("metadata").then((response) => response.json());

async function describe() {
  try {
    const info = await metadata;
    const accuracy = info.test_accuracy ? `, test accuracy ${(100 * info.test_accuracy).toFixed(2)}%` : "";
    $("model").textContent = `model ${info.model} on ${info.backend}: ${info.parameters.toLocaleString()} parameters${accuracy} (fmnist ${info.fmnist_version})`;
  } catch (error) {
    $("model").textContent = "the model's description is not available";
  }
}

function show(result, labels) {
  const prediction = result.predictions[0];
  $("error").hidden = true;
  // the 28×28 image the model was given (inverted, scaled, centred), not the file chosen
  $("preview").src = `data:image/png;base64,${prediction.input}`;
  $("preview").hidden = false;
  $("label").textContent = prediction.label;
  const ranked = prediction.probabilities
    .map((p, index) => ({ p, name: labels[index] }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 5);
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
  $("preview").removeAttribute("src");
  $("label").textContent = "";
  $("bars").replaceChildren();
  $("error").textContent = message;
  $("error").hidden = false;
}

async function classify(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const response = await fetch("predict?inputs=true", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) return fail(body.detail || `the server answered ${response.status}`);
    show(body, (await metadata).labels);
  } catch (error) {
    fail(`the server could not be reached: ${error}`);
  }
}

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) classify(file, file.name);
});

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) classify(file, file.name);
});

// drawing: white strokes on black, the dataset's light object on a dark background
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
$("predict-drawing").addEventListener("click", () => canvas.toBlob((blob) => classify(blob, "drawing.png"), "image/png"));

describe();
