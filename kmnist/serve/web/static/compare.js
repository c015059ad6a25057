// kmnist-serve's drawing page, the comparison: when the server serves several models (a
// --model_config_file), every drawing is also sent to each of them, and their answers are shown
// side by side: the digit, the ten probabilities, the version that answered and, for a model
// linear in the pixels (the softmax regression), its evidence map. app.js announces each
// prepared drawing with a "kmnist:pixels" event (the 28x28 pixels) and a cleared pad with
// "kmnist:clear"; the models are asked with the same :explain request app.js sends.
"use strict";

(function () {
  const section = document.getElementById("compare");
  const cards = document.getElementById("compare-cards");
  const summary = document.getElementById("compare-summary");
  let models = [];
  let request = 0; // answers to older drawings are dropped

  const KINDS = {
    softmax: "softmax regression (the tutorial's)",
    mlp: "multilayer perceptron",
    cnn: "convolutional network",
  };

  function element(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function card(name) {
    const item = element("li", "compare-card");
    item.dataset.model = name;
    item.append(element("h3", "", name), element("p", "compare-kind", "\u00a0"),
                element("p", "compare-answer", "Draw a digit to see."));
    const bars = element("ol", "bars");
    bars.setAttribute("aria-label", "Probability of each digit, model " + name);
    item.append(bars);
    const evidence = element("canvas", "pixels compare-evidence");
    evidence.width = 28;
    evidence.height = 28;
    evidence.setAttribute("role", "img");
    evidence.setAttribute("aria-label", "Evidence map of model " + name + ": nothing yet");
    item.append(evidence, element("p", "hint compare-evidence-note", ""));
    return item;
  }

  function renderBars(list, probabilities, top) {
    list.innerHTML = "";
    for (let digit = 0; digit < 10; digit++) {
      const p = probabilities ? probabilities[digit] : 0;
      const item = element("li", digit === top ? "top" : "");
      item.setAttribute("aria-label", digit + ": " + (100 * p).toFixed(1) + " percent");
      const track = element("span", "track");
      const fill = element("span", "fill");
      fill.style.width = (100 * p).toFixed(1) + "%";
      track.append(fill);
      item.append(element("span", "digit", String(digit)), track,
                  element("span", "value", (100 * p).toFixed(1) + " %"));
      item.querySelectorAll("span").forEach(function (s) { s.setAttribute("aria-hidden", "true"); });
      list.append(item);
    }
  }

  function paintEvidence(canvas, evidence) {
    const context = canvas.getContext("2d");
    const image = context.createImageData(28, 28);
    let limit = 0;
    if (evidence) evidence.forEach(function (row) {
      row.forEach(function (v) { limit = Math.max(limit, Math.abs(v)); });
    });
    for (let i = 0; i < 784; i++) {
      const v = evidence ? evidence[Math.floor(i / 28)][i % 28] : 0;
      image.data.set(window.kmnistPage.rdbu(0.5 + 0.5 * v / (limit || 1)).concat([255]), 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  function show(item, reply) {
    const result = reply.explanations[0];
    const digit = result.class_id;
    item.dataset.version = reply.model_version;
    item.dataset.prediction = String(digit);
    item.querySelector(".compare-kind").textContent = KINDS[reply.model] || "a model";
    const answer = item.querySelector(".compare-answer");
    answer.innerHTML = "";
    const strong = element("strong", "", String(digit));
    answer.append(strong, " " + (100 * result.probabilities[digit]).toFixed(1) +
                  " % sure, version " + reply.model_version);
    renderBars(item.querySelector(".bars"), result.probabilities, digit);
    const canvas = item.querySelector(".compare-evidence");
    canvas.toggleAttribute("hidden", !result.evidence);
    paintEvidence(canvas, result.evidence);
    canvas.setAttribute("aria-label", result.evidence ?
      "Evidence map of model " + item.dataset.model + " for " + digit : "No evidence map");
    item.querySelector(".compare-evidence-note").textContent = result.evidence ?
      "Evidence for " + digit + ": blue for, red against." :
      "No evidence map: this model is not linear in the pixels.";
  }

  function fail(item, message) {
    delete item.dataset.prediction;
    item.querySelector(".compare-answer").textContent = "No answer: " + message;
  }

  async function explain(name, pixels) {
    const response = await fetch("/v1/models/" + encodeURIComponent(name) + ":explain", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({instances: [pixels]})});
    const reply = await response.json().catch(function () { return {}; });
    if (!response.ok) throw new Error(reply.error || ("HTTP " + response.status));
    return reply;
  }

  async function compare(pixels) {
    const mine = ++request;
    delete document.body.dataset.compared;
    summary.textContent = "Asking " + models.length + " models…";
    const replies = await Promise.all(models.map(function (name) {
      return explain(name, pixels).catch(function (error) { return error; });
    }));
    if (mine !== request) return;
    const answers = [];
    replies.forEach(function (reply, i) {
      const item = cards.children[i];
      if (reply instanceof Error) return fail(item, reply.message);
      show(item, reply);
      answers.push(models[i] + " " + reply.explanations[0].class_id);
    });
    const digits = new Set(answers.map(function (a) { return a.split(" ")[1]; }));
    summary.textContent = answers.length < models.length ? "Not every model answered." :
      digits.size === 1 ? "All " + models.length + " models say " + [...digits][0] + "." :
      "The models disagree: " + answers.join(", ") + ".";
    document.body.dataset.compared = String(answers.length);
  }

  function clear() {
    request += 1;
    delete document.body.dataset.compared;
    summary.textContent = "Draw a digit to compare the models.";
    Array.from(cards.children).forEach(function (item) {
      delete item.dataset.prediction;
      item.querySelector(".compare-answer").textContent = "Draw a digit to see.";
      renderBars(item.querySelector(".bars"), null, -1);
      paintEvidence(item.querySelector(".compare-evidence"), null);
      item.querySelector(".compare-evidence-note").textContent = "";
    });
  }

  async function start() {
    try {
      models = (await (await fetch("/v1/models")).json()).models || [];
    } catch (error) {
      return; // app.js reports a server that does not answer
    }
    if (models.length < 2) return; // one model: the page above is all there is
    models.forEach(function (name) { cards.append(card(name)); });
    section.hidden = false;
    clear();
    document.addEventListener("kmnist:pixels", function (event) { compare(event.detail.pixels); });
    document.addEventListener("kmnist:clear", clear);
  }

  start();
})();
