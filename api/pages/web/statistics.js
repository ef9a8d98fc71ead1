// The statistics page's charts (Chart.js, bundled by esbuild into static/statistics.js):
// each chart is drawn from the table beside it, so the table stays the one source of the
// figures (and what screen readers read). Redrawn after htmx swaps the results.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  LinearScale,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

const charts = new Map();

function draw(table) {
  const dimension = table.dataset.dimension;
  const measure = (table.dataset.measure || "msrpCents").toLowerCase();
  const canvas = document.getElementById(`chart-${dimension}`);
  if (!canvas) return;
  const rows = [...table.querySelectorAll("tbody tr[data-label]")];
  const labels = rows.map((row) => row.querySelector("th").textContent.trim());
  const scale = measure === "msrpcents" ? 100 : 1;
  const values = rows.map((row) => Number(row.dataset[measure] || 0) / scale);
  const previous = charts.get(dimension);
  if (previous) previous.destroy();
  const timeline = dimension === "period";
  canvas.parentElement.style.height = timeline ? "16rem" : `${Math.max(8, rows.length * 1.9 + 3)}rem`;
  const chart = new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: [{ data: values, backgroundColor: "#13294b", borderRadius: 3 }],
    },
    options: {
      indexAxis: timeline ? "x" : "y",
      maintainAspectRatio: false,
      responsive: true,
      animation: false,
      plugins: { legend: { display: false } },
      scales: { x: { ticks: { color: "#1a1a1a" } }, y: { ticks: { color: "#1a1a1a" } } },
    },
  });
  charts.set(dimension, chart);
  canvas.dataset.drawn = String(values.length);
}

function drawAll() {
  for (const [dimension, chart] of charts) {
    if (!document.getElementById(`chart-${dimension}`)?.isConnected) {
      chart.destroy();
      charts.delete(dimension);
    }
  }
  document.querySelectorAll("table[data-dimension]").forEach(draw);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", drawAll);
} else {
  drawAll();
}
// after settling: on swap the new canvases are not laid out yet (a chart drawn then stays blank)
document.addEventListener("htmx:afterSettle", drawAll);
