// keras-vae serve: one panel per run, all decoding the point under the same pointer.
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const SIZE = 360;
const STRIP = 10;
const MAX_SLIDERS = 16;
const panels = [];

async function api(path, body) {
  const options = body ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {};
  const response = await fetch(path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error);
  return data;
}

function el(tag, properties = {}, ...children) {
  const element = Object.assign(document.createElement(tag), properties);
  element.append(...children);
  return element;
}

function showError(error) {
  document.getElementById("error").textContent = error.message;
}

class Panel {
  constructor(index, info) {
    this.index = index;
    this.info = info;
    this.label = info.conditional ? 0 : null;
    this.pending = null;
    this.busy = false;
    this.canvas = el("canvas", { width: SIZE, height: SIZE, className: "plane" });
    this.decoded = el("img", { className: "decoded", alt: "decoded image" });
    this.pair = el("div", { className: "pair" });
    this.strip = el("div", { className: "strip" });
    const title = `${info.name}: ${info.model}, ${info.latent_dim}-D latent${info.plane === "PCA" ? " (PCA plane)" : ""}`;
    const controls = el("div", { className: "sliders" }, ...this.controls());
    const root = el("section", { className: "run", id: `run-${index}` }, el("h2", {}, title), this.canvas,
      el("div", { className: "legend" }), el("div", { className: "row" }, this.decoded, this.pair, controls), this.strip);
    this.legend = root.querySelector(".legend");
    document.getElementById("runs").append(root);
    this.listen();
  }

  controls() {
    const controls = [];
    if (this.info.conditional) {
      const picker = el("select", { className: "classes" }, ...this.info.classes.map((name, i) => el("option", { value: i }, name)));
      picker.addEventListener("change", () => { this.label = Number(picker.value); this.request({ points: [this.pointer || [0, 0]] }); });
      controls.push(el("label", {}, "class ", picker));
    }
    if (this.info.epochs.length) {
      const epochs = this.info.epochs;
      const value = el("span", {}, `epoch ${epochs[epochs.length - 1]}`);
      const slider = el("input", { type: "range", min: 0, max: epochs.length - 1, value: epochs.length - 1, className: "epoch" });
      slider.addEventListener("input", () => { value.textContent = `epoch ${epochs[slider.value]}`; this.load(epochs[slider.value]).catch(showError); });
      controls.push(el("label", {}, value, slider));
    } else if (this.info.replay_error) {
      controls.push(el("span", { className: "note", title: this.info.replay_error }, "no epoch replay: a snapshot is damaged"));
    }
    const sample = el("button", { type: "button", className: "sample", title: this.info.sampler }, "sample");
    sample.addEventListener("click", () => this.sample().catch(showError));
    controls.push(sample);
    this.z = new Array(this.info.latent_dim).fill(0);
    for (let d = 0; d < Math.min(this.info.latent_dim, MAX_SLIDERS); d++) {
      const slider = el("input", { type: "range", min: -3, max: 3, step: 0.05, value: 0, className: "dimension" });
      slider.addEventListener("input", () => { this.z[d] = Number(slider.value); this.request({ z: [this.z] }); });
      controls.push(el("label", {}, `z[${d}]`, slider));
    }
    return controls;
  }

  async sample() {
    const data = await api(`/api/runs/${this.index}/samples?n=${STRIP}`);
    this.strip.replaceChildren(el("span", { className: "sampler" }, data.sampler),
      ...data.images.map((src) => el("img", { src, alt: "sample" })));
  }

  async load(epoch) {
    const data = await api(`/api/runs/${this.index}/points${epoch === undefined ? "" : `?epoch=${epoch}`}`);
    this.points = data.points;
    this.labels = data.labels;
    const xs = this.points.map((p) => p[0]), ys = this.points.map((p) => p[1]);
    const pad = (low, high) => [low - 0.05 * (high - low + 1e-6), high + 0.05 * (high - low + 1e-6)];
    [this.x0, this.x1] = pad(Math.min(...xs), Math.max(...xs));
    [this.y0, this.y1] = pad(Math.min(...ys), Math.max(...ys));
    this.draw();
    this.drawLegend();
  }

  toPlane(event) {
    const box = this.canvas.getBoundingClientRect();
    const u = (event.clientX - box.left) / box.width, v = (event.clientY - box.top) / box.height;
    return [this.x0 + u * (this.x1 - this.x0), this.y1 - v * (this.y1 - this.y0)];
  }

  toCanvas([x, y]) {
    return [((x - this.x0) / (this.x1 - this.x0)) * SIZE, ((this.y1 - y) / (this.y1 - this.y0)) * SIZE];
  }

  draw() {
    const context = this.canvas.getContext("2d");
    context.clearRect(0, 0, SIZE, SIZE);
    this.points.forEach((point, i) => {
      const [x, y] = this.toCanvas(point);
      context.fillStyle = this.labels[i] < 0 ? "#555" : COLOURS[this.labels[i] % COLOURS.length];
      context.fillRect(x - 1.5, y - 1.5, 3, 3);
    });
    if (this.path) {
      const [a, b] = this.path.map((p) => this.toCanvas(p));
      context.strokeStyle = "#000";
      context.beginPath(); context.moveTo(...a); context.lineTo(...b); context.stroke();
    }
    if (this.pointer) {
      const [x, y] = this.toCanvas(this.pointer);
      context.strokeStyle = "#000";
      context.strokeRect(x - 5, y - 5, 10, 10);
    }
  }

  drawLegend() {
    const names = this.info.class_names || [...new Set(this.labels)].filter((l) => l >= 0).sort((a, b) => a - b).map(String);
    this.legend.replaceChildren(...names.map((name, i) => el("span", {}, el("i", { style: `background:${COLOURS[i % COLOURS.length]}` }), name)));
  }

  async request(body) {
    // One decode in flight per run; a newer request replaces one still waiting.
    this.pending = { ...body, label: this.label };
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.pending) {
        const next = this.pending;
        this.pending = null;
        const { images } = await api(`/api/runs/${this.index}/decode`, next);
        this.decoded.src = images[0];
      }
    } catch (error) {
      showError(error);
    } finally {
      this.busy = false;
    }
  }

  async interpolate(from, to) {
    const points = Array.from({ length: STRIP }, (_, i) => from.map((a, d) => a + (i / (STRIP - 1)) * (to[d] - a)));
    const { images } = await api(`/api/runs/${this.index}/decode`, { points, label: this.label });
    this.strip.replaceChildren(...images.map((src) => el("img", { src, alt: "interpolation step" })));
  }

  async showImage(index) {
    const image = await api(`/api/runs/${this.index}/images/${index}`);
    this.pair.replaceChildren(el("img", { src: image.input, alt: "input" }), el("img", { src: image.reconstruction, alt: "reconstruction" }));
  }

  nearest(event) {
    const box = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * SIZE, y = ((event.clientY - box.top) / box.height) * SIZE;
    let best = -1, distance = 36;
    this.points.forEach((point, i) => {
      const [px, py] = this.toCanvas(point);
      const d = (px - x) ** 2 + (py - y) ** 2;
      if (d < distance) { best = i; distance = d; }
    });
    return best;
  }

  listen() {
    let start = null;
    this.canvas.addEventListener("mousemove", (event) => everyPanel((panel) => panel.point(this.toPlane(event))));
    this.canvas.addEventListener("mousedown", (event) => { start = this.toPlane(event); });
    this.canvas.addEventListener("mouseup", (event) => {
      const end = this.toPlane(event);
      const moved = start && Math.hypot((end[0] - start[0]) / (this.x1 - this.x0), (end[1] - start[1]) / (this.y1 - this.y0)) > 0.03;
      if (moved) {
        const from = start;
        everyPanel((panel) => { panel.path = [from, end]; panel.draw(); return panel.interpolate(from, end); });
      } else {
        const index = this.nearest(event);
        everyPanel((panel) => panel.point(end));
        if (index >= 0) this.showImage(index).catch(showError);
      }
      start = null;
    });
  }

  point(pointer) {
    this.pointer = pointer;
    this.draw();
    return this.request({ points: [pointer] });
  }

  centre() {
    return [(this.x0 + this.x1) / 2, (this.y0 + this.y1) / 2];
  }
}

function everyPanel(action) {
  for (const panel of panels) Promise.resolve(action(panel)).catch(showError);
}

async function main() {
  const { runs } = await api("/api/runs");
  runs.forEach((info, index) => panels.push(new Panel(index, info)));
  await Promise.all(panels.map((panel) => panel.load()));
  await Promise.all(panels.map((panel) => panel.point(panel.centre())));  // an image from the start, not a broken icon
  document.body.dataset.ready = "true";
}

main().catch(showError);
