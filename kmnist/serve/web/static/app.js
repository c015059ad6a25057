// kmnist-serve's drawing page: draw with a mouse, pen or finger (Pointer Events), then
//   1. POST the drawing as a PNG to /demo/prepare: the server prepares it exactly as
//      kmnist-predict prepares a picture and returns the 28x28 pixels the model receives;
//   2. POST those pixels to /v1/models/<name>:explain (TF Serving's request format): the same
//      signature that :predict runs, plus the softmax model's evidence map;
//   3. draw the pixels, the ten probabilities as bars and the evidence map (red against, blue for).
// No libraries and no build step; nothing is fetched from outside this server.
"use strict";

// The API key (kmnist-serve --api_key_file): on the first 401 the page asks for it once, keeps it
// for this origin (localStorage) and sends it as Authorization: Bearer with every request of its
// own; compare.js and device.js fetch through the same function.
(function () {
  const plainFetch = window.fetch.bind(window);
  const KEY = "kmnist-api-key";
  let asking = null; // one question, however many requests are refused at once
  function withKey(options) {
    const key = localStorage.getItem(KEY);
    if (!key) return options;
    const headers = Object.assign({}, (options || {}).headers, {Authorization: "Bearer " + key});
    return Object.assign({}, options, {headers: headers});
  }
  window.fetch = async function (url, options) {
    const response = await plainFetch(url, withKey(options));
    if (response.status !== 401) return response;
    asking = asking || Promise.resolve(window.prompt("This kmnist-serve needs an API key:"));
    const key = ((await asking) || "").trim();
    asking = null;
    if (!key) return response;
    localStorage.setItem(KEY, key);
    return plainFetch(url, withKey(options));
  };
})();

(function () {
  const pad = document.getElementById("pad");
  const padContext = pad.getContext("2d");
  const inputCanvas = document.getElementById("input");
  const evidenceCanvas = document.getElementById("evidence");
  const answer = document.getElementById("answer");
  const bars = document.getElementById("bars");
  const modelInfo = document.getElementById("model-info");
  const evidenceDigit = document.getElementById("evidence-digit");
  const evidenceSum = document.getElementById("evidence-sum");
  const STROKE_WIDTH = 20; // on the 280-pixel pad: ~2 pixels of the 28x28 picture, as MNIST's
  let modelName = "kmnist";
  let drawing = false;
  let drawn = false;
  let last = null;
  let request = 0; // answers to older drawings are dropped

  // matplotlib's (ColorBrewer's) RdBu: red for negative values, blue for positive, white-grey at 0.
  const RDBU = ["#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#f7f7f7",
                "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061"].map(function (hex) {
    return [1, 3, 5].map(function (i) { return parseInt(hex.slice(i, i + 2), 16); });
  });

  function rdbu(t) { // t in [0, 1]
    const x = Math.min(Math.max(t, 0), 1) * (RDBU.length - 1);
    const i = Math.min(Math.floor(x), RDBU.length - 2);
    const f = x - i;
    return RDBU[i].map(function (c, k) { return Math.round(c + (RDBU[i + 1][k] - c) * f); });
  }
  window.kmnistPage = {rdbu: rdbu}; // compare.js colours its evidence maps alike

  function clearPad() {
    padContext.fillStyle = "#ffffff";
    padContext.fillRect(0, 0, pad.width, pad.height);
    drawn = false;
  }

  function point(event) {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.width / box.width,
            (event.clientY - box.top) * pad.height / box.height];
  }

  function strokeTo(p) {
    padContext.strokeStyle = "#000000";
    padContext.fillStyle = "#000000";
    padContext.lineWidth = STROKE_WIDTH;
    padContext.lineCap = "round";
    padContext.lineJoin = "round";
    padContext.beginPath();
    if (last) {
      padContext.moveTo(last[0], last[1]);
      padContext.lineTo(p[0], p[1]);
      padContext.stroke();
    } else {
      padContext.arc(p[0], p[1], STROKE_WIDTH / 2, 0, 2 * Math.PI);
      padContext.fill();
    }
    last = p;
    drawn = true;
  }

  pad.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    last = null;
    strokeTo(point(event));
  });
  pad.addEventListener("pointermove", function (event) {
    if (!drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    (events.length ? events : [event]).forEach(function (e) { strokeTo(point(e)); });
  });
  function endStroke(event) {
    if (!drawing) return;
    drawing = false;
    last = null;
    if (pad.hasPointerCapture(event.pointerId)) pad.releasePointerCapture(event.pointerId);
    classify();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  document.getElementById("clear").addEventListener("click", function () {
    request += 1;
    clearPad();
    resetResults();
    document.dispatchEvent(new CustomEvent("kmnist:clear")); // compare.js
    pad.focus();
  });
  pad.addEventListener("keydown", function (event) {
    if (event.key === "Escape" || event.key === "Delete") document.getElementById("clear").click();
  });

  function resetResults() {
    answer.className = "answer";
    answer.textContent = "Draw a digit to see.";
    document.body.removeAttribute("data-prediction");
    paintPixels(inputCanvas, null);
    paintEvidence(null);
    renderBars(null, -1);
    inputCanvas.setAttribute("aria-label", "The 28 by 28 picture sent to the model: nothing yet");
  }

  async function postJson(url, body, contentType) {
    const response = await fetch(url, {
      method: "POST", body: body, headers: {"Content-Type": contentType || "application/json"}});
    const reply = await response.json().catch(function () { return {error: response.statusText}; });
    if (!response.ok) throw new Error(reply.error || ("HTTP " + response.status));
    return reply;
  }

  async function classify() {
    if (!drawn) return;
    const mine = ++request;
    answer.className = "answer";
    answer.textContent = "Asking the model…";
    const began = performance.now(); // the drawing sent, prepared, answered: over the network
    try {
      const png = await new Promise(function (resolve) { pad.toBlob(resolve, "image/png"); });
      const prepared = await postJson("/demo/prepare", png, "image/png");
      if (mine !== request) return;
      paintPixels(inputCanvas, prepared.pixels);
      document.dispatchEvent(new CustomEvent("kmnist:pixels", {detail: prepared})); // compare.js
      inputCanvas.setAttribute("aria-label",
                               "The 28 by 28 picture sent to the model, white digit on black");
      const reply = await postJson("/v1/models/" + encodeURIComponent(modelName) + ":explain",
                                   JSON.stringify({instances: [prepared.pixels]}));
      if (mine !== request) return;
      describeModel(reply.model);
      show(reply.explanations[0], reply.model_version, performance.now() - began);
      // device.js fetches the new version's bundle when the served version changes.
      document.dispatchEvent(new CustomEvent("kmnist:version", {detail: reply.model_version}));
    } catch (error) {
      if (mine !== request) return;
      answer.className = "answer error";
      answer.textContent = "Could not classify the drawing: " + error.message;
      document.body.removeAttribute("data-prediction");
    }
  }

  // Which of kmnist's models answered (the server tells them apart by their variables).
  const MODEL_KINDS = {
    mlp: "a multilayer perceptron (the tutorial's \"small changes\": two hidden layers)",
    cnn: "a small convolutional network",
  };

  function describeModel(kind) {
    if (MODEL_KINDS[kind]) {
      document.getElementById("model-kind").textContent = MODEL_KINDS[kind];
    }
  }

  function show(result, version, ms) {
    const digit = result.class_id;
    const confidence = result.probabilities[digit];
    answer.innerHTML = "";
    answer.append("The model says ");
    const strong = document.createElement("strong");
    strong.id = "prediction";
    strong.textContent = String(digit);
    answer.append(strong, " (" + (100 * confidence).toFixed(1) + " % sure, version " + version +
                  "), " + ms.toFixed(1) + " ms over the network");
    document.body.setAttribute("data-prediction", String(digit));
    document.body.setAttribute("data-network-ms", ms.toFixed(3));
    renderBars(result.probabilities, digit);
    evidenceDigit.textContent = String(digit);
    paintEvidence(result.evidence, result.bias, result.logits ? result.logits[digit] : null, digit);
  }

  function renderBars(probabilities, top) {
    bars.innerHTML = "";
    for (let digit = 0; digit < 10; digit++) {
      const p = probabilities ? probabilities[digit] : 0;
      const item = document.createElement("li");
      if (digit === top) item.className = "top";
      item.setAttribute("aria-label", digit + ": " + (100 * p).toFixed(1) + " percent");
      item.innerHTML = '<span class="digit" aria-hidden="true"></span>' +
        '<span class="track" aria-hidden="true"><span class="fill"></span></span>' +
        '<span class="value" aria-hidden="true"></span>';
      item.querySelector(".digit").textContent = String(digit);
      item.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
      item.querySelector(".value").textContent = (100 * p).toFixed(1) + " %";
      bars.append(item);
    }
  }

  function paintPixels(canvas, pixels) {
    const context = canvas.getContext("2d");
    const image = context.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const v = pixels ? pixels[Math.floor(i / 28)][i % 28] : 0;
      image.data.set([v, v, v, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  function paintEvidence(evidence, bias, logit, digit) {
    const context = evidenceCanvas.getContext("2d");
    const image = context.createImageData(28, 28);
    const panel = document.getElementById("evidence-panel");
    if (!evidence) {
      for (let i = 0; i < 784; i++) image.data.set(RDBU[5].concat([255]), 4 * i);
      context.putImageData(image, 0, 0);
      evidenceSum.textContent = digit === undefined ? "" :
        "This model is not the softmax regression, so there is no per-pixel evidence to show.";
      panel.toggleAttribute("data-empty", true);
      evidenceCanvas.setAttribute("aria-label", "Evidence map: nothing yet");
      return;
    }
    let limit = 0;
    let total = 0;
    evidence.forEach(function (row) {
      row.forEach(function (v) { limit = Math.max(limit, Math.abs(v)); total += v; });
    });
    limit = limit || 1;
    for (let i = 0; i < 784; i++) {
      const v = evidence[Math.floor(i / 28)][i % 28];
      image.data.set(rdbu(0.5 + 0.5 * v / limit).concat([255]), 4 * i);
    }
    context.putImageData(image, 0, 0);
    panel.removeAttribute("data-empty");
    evidenceSum.textContent = "Here the evidence adds up to " + total.toFixed(2) +
      "; with the bias " + bias.toFixed(2) + " that is " + (total + bias).toFixed(2) +
      ", the model's score (logit) for " + digit + ".";
    evidenceCanvas.setAttribute(
      "aria-label", "Evidence map for " + digit + ": total evidence " + total.toFixed(2));
  }

  async function connect() {
    try {
      const models = await (await fetch("/v1/models")).json();
      if (models.models && models.models.length) modelName = models.models[0];
      document.querySelectorAll(".model-name").forEach(function (e) { e.textContent = modelName; });
      const status = await (await fetch("/v1/models/" + encodeURIComponent(modelName))).json();
      const serving = status.model_version_status.filter(function (s) {
        return s.state === "AVAILABLE";
      })[0];
      modelInfo.textContent = "model " + modelName +
        (serving ? ", version " + serving.version : "");
    } catch (error) {
      modelInfo.textContent = "the server did not answer: " + error.message;
    }
  }

  clearPad();
  resetResults();
  connect();
})();
