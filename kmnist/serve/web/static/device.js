// The drawing page's "on this device" mode: the model runs in the browser, next to the server's
// answer (app.js). When the box is ticked the page
//   1. registers the service worker (/sw.js), which keeps the page, LiteRT.js and the model, so
//      that the mode works after one visit with the server stopped or out of reach;
//   2. loads LiteRT.js (Google's LiteRT for the web, shipped in static/vendor/litertjs/, never
//      fetched from elsewhere) and the int8 image-classifier bundle of the version the server
//      serves, from /v1/models/<name>/tflite/kmnist_int8_classifier.tflite;
//   3. on each drawing, prepares it here as kmnist-predict prepares a picture (prepare.js) and
//      runs the bundle: an RGB picture [1, 28, 28, 3] in, probabilities out (uint8: q / 256).
// The choice is remembered (localStorage), so a page opened offline comes back in this mode.
import {grayscale, PictureError, toMnist} from "/static/prepare.js";

const STORED = "kmnist-on-device";
const STORED_URL = "kmnist-on-device-model";
const BUNDLE = "kmnist_int8_classifier.tflite";
const LITERT = "/static/vendor/litertjs/";
const OUTPUT_SCALE = 1 / 256; // the int8 bundle's probabilities: real = q / 256 (README)

const toggle = document.getElementById("on-device");
const panel = document.getElementById("device-panel");
const status = document.getElementById("device-status");
const answer = document.getElementById("device-answer");
const inputCanvas = document.getElementById("device-input");
const pad = document.getElementById("pad");
const padContext = pad.getContext("2d", {willReadFrequently: true});
let loading = null; // the promise of {litert, model, version}, once the mode is on
let drawing = 0; // answers to older drawings are dropped

async function serviceWorker() {
  if (!("serviceWorker" in navigator)) {
    return " No copy is kept for offline use: this browser allows service workers only on " +
      "pages served over https (kmnist-serve --ssl_certfile) and on localhost.";
  }
  await navigator.serviceWorker.register("/sw.js");
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) { // the first visit: the worker takes over the page
    await new Promise(function (resolve) {
      navigator.serviceWorker.addEventListener("controllerchange", resolve, {once: true});
    });
  }
  return " It keeps working offline.";
}

async function bundleUrl() {
  try { // the served model's name; offline, the one used last time
    const models = await (await fetch("/v1/models")).json();
    const url = "/v1/models/" + encodeURIComponent(models.models[0]) + "/tflite/" + BUNDLE;
    localStorage.setItem(STORED_URL, url);
    return url;
  } catch (error) {
    return localStorage.getItem(STORED_URL) || "/v1/models/kmnist/tflite/" + BUNDLE;
  }
}

async function load() {
  const began = performance.now();
  status.textContent = "Loading LiteRT.js and the model…";
  const offline = await serviceWorker();
  const litert = await import(LITERT + "litert.js");
  await litert.loadLiteRt(LITERT + "litert_wasm_compat_internal.js");
  const response = await fetch(await bundleUrl());
  if (!response.ok) {
    const reply = await response.json().catch(function () { return {}; });
    throw new Error(reply.error || "the server answered " + response.status);
  }
  const version = response.headers.get("X-Model-Version");
  const bytes = new Uint8Array(await response.arrayBuffer());
  const model = await litert.loadAndCompile(bytes, {accelerator: "wasm"});
  const [image] = model.getInputDetails();
  if (image.dtype !== "uint8" || Array.from(image.shape).join() !== "1,28,28,3") {
    throw new Error(BUNDLE + " takes " + image.dtype + " [" + Array.from(image.shape) + "], " +
                    "not an RGB picture uint8 [1,28,28,3]");
  }
  status.textContent = "LiteRT.js runs " + BUNDLE + " (version " + version + ", " +
    bytes.length.toLocaleString("en") + " bytes) in this page; loaded in " +
    (performance.now() - began).toFixed(0) + " ms." + offline;
  document.body.setAttribute("data-device-ready", version);
  return {litert: litert, model: model, version: version};
}

function prepare() {
  const image = padContext.getImageData(0, 0, pad.width, pad.height);
  return toMnist(grayscale(image), image.width, image.height);
}

async function classifyHere(pixels, loaded) {
  const rgb = new Uint8Array(3 * pixels.length); // gray as RGB, as a canvas or camera gives it
  pixels.forEach(function (v, i) { rgb.fill(v, 3 * i, 3 * i + 3); });
  const input = new loaded.litert.Tensor(rgb, [1, 28, 28, 3]);
  try {
    const outputs = await loaded.model.run({image: input});
    const q = outputs.probabilities.toTypedArray();
    outputs.probabilities.delete();
    return Array.from(q, function (v) { return v * OUTPUT_SCALE; });
  } finally {
    input.delete();
  }
}

async function answerDrawing() {
  if (!loading || !toggle.checked) return;
  const mine = ++drawing;
  const began = performance.now();
  let pixels;
  try {
    pixels = prepare();
  } catch (error) {
    if (!(error instanceof PictureError)) throw error;
    showError(error.message);
    return;
  }
  const prepared = performance.now();
  paintPixels(pixels);
  try {
    const loaded = await loading;
    const started = performance.now();
    const probabilities = await classifyHere(pixels, loaded);
    const done = performance.now();
    if (mine !== drawing) return;
    const digit = probabilities.indexOf(Math.max.apply(null, probabilities));
    answer.className = "answer";
    answer.innerHTML = "";
    const strong = document.createElement("strong");
    strong.id = "device-prediction";
    strong.textContent = String(digit);
    answer.append("Here: ", strong, " (" + (100 * probabilities[digit]).toFixed(1) +
      " % sure), " + (prepared - began + done - started).toFixed(1) + " ms on this device (the " +
      "model " + (done - started).toFixed(2) + " ms)");
    document.body.setAttribute("data-device-prediction", String(digit));
    document.body.setAttribute("data-device-ms", (prepared - began + done - started).toFixed(3));
    document.body.setAttribute("data-device-model-ms", (done - started).toFixed(3));
  } catch (error) {
    if (mine === drawing) showError("could not run the model here: " + error.message);
  }
}

function showError(message) {
  answer.className = "answer error";
  answer.textContent = message;
  document.body.removeAttribute("data-device-prediction");
}

function paintPixels(pixels) {
  const context = inputCanvas.getContext("2d");
  const image = context.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = pixels ? pixels[i] : 0;
    image.data.set([v, v, v, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
}

function reset() {
  drawing += 1;
  answer.className = "answer";
  answer.textContent = "Draw a digit to see.";
  document.body.removeAttribute("data-device-prediction");
  paintPixels(null);
}

function setMode(on) {
  toggle.checked = on;
  panel.hidden = !on;
  localStorage.setItem(STORED, on ? "on" : "off");
  if (on && !loading) {
    loading = load();
    loading.catch(function (error) {
      status.textContent = "The model cannot run on this device: " + error.message;
      loading = null;
    });
  }
}

// A new version served: its own bundle, loaded in place of the old one.
document.addEventListener("kmnist:version", async function (event) {
  if (!loading) return;
  const loaded = await loading.catch(function () { return null; });
  if (loaded && loaded.version !== String(event.detail) && toggle.checked) {
    loading = null;
    setMode(true);
  }
});

toggle.addEventListener("change", function () { setMode(toggle.checked); });
pad.addEventListener("pointerup", answerDrawing);
pad.addEventListener("pointercancel", answerDrawing);
document.getElementById("clear").addEventListener("click", reset);
reset();
setMode(localStorage.getItem(STORED) === "on");
window.kmnistDevice = {prepare: prepare, toMnist: toMnist, grayscale: grayscale};
