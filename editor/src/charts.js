// Charts for the activity index (web/templates/workspace/index.html): Chart.js draws every
// <canvas data-chart='{"type": …, "data": …}'> on the page. The numbers are also in a table
// beside each chart, so the page says everything without this script.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController,
  LineElement, PointElement, Legend, Tooltip);

const PALETTE = ["#2563eb", "#0f8a4b", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563",
  "#db2777", "#65a30d", "#7c3aed"];

function draw(canvas) {
  let spec;
  try {
    spec = JSON.parse(canvas.getAttribute("data-chart"));
  } catch (err) {
    return; // a broken spec leaves the table beside it as the only view
  }
  spec.data.datasets.forEach((set, i) => {
    const color = PALETTE[i % PALETTE.length];
    set.backgroundColor = set.backgroundColor || color;
    set.borderColor = set.borderColor || color;
  });
  spec.options = Object.assign({
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    plugins: { legend: { display: spec.data.datasets.length > 1 } },
  }, spec.options || {});
  canvas.chart = new Chart(canvas, spec);
  canvas.setAttribute("data-chart-ready", "1");
}

function drawAll() {
  document.querySelectorAll("canvas[data-chart]").forEach(draw);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", drawAll);
} else {
  drawAll();
}
