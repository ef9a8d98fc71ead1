// Regenerates world-land-110m.svgpath: the land of Natural Earth 1:110m (public domain), from
// the npm package world-atlas (ISC) through topojson-client, as one SVG path in the
// equirectangular frame of api/pages/worldmap.py (x = longitude + 180, y = 90 - latitude,
// viewBox 0 0 360 180), rounded to 0.1 degree (about 11 km: plenty for a map of ports).
// The output is checked in, so neither the build nor the page needs these packages:
//   npm install --no-save world-atlas@2.0.2 topojson-client@3.1.0
//   node api/pages/data/build_world_outline.mjs > api/pages/data/world-land-110m.svgpath
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { feature } from "topojson-client";

const require = createRequire(import.meta.url);
const topology = JSON.parse(readFileSync(require.resolve("world-atlas/land-110m.json"), "utf8"));
const land = feature(topology, topology.objects.land);
const r = (v) => Math.round(v * 10) / 10;
// Rings crossing the antimeridian (Russia, Fiji, Antarctica) are unwrapped into one
// continuous ring and drawn again shifted by 360 degrees where they leave the frame (the SVG
// clips the rest); a ring around the pole (Antarctica) is closed along the frame's edge.
const parts = [];
function ringPath(points) {
  let d = "";
  let last = null;
  for (const [x, y] of points) {
    const p = `${r(x)} ${r(y)}`;
    if (p === last) continue;
    d += (d ? "L" : "M") + p;
    last = p;
  }
  return d ? d + "Z" : "";
}
for (const f of land.features) {
  const polygons = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
  for (const polygon of polygons) {
    for (const ring of polygon) {
      const points = [];
      let offset = 0;
      let previous = null;
      for (const [lon, lat] of ring) {
        if (previous !== null && lon - previous > 180) offset -= 360;
        if (previous !== null && lon - previous < -180) offset += 360;
        previous = lon;
        points.push([lon + offset + 180, 90 - lat]);
      }
      const drift = points[points.length - 1][0] - points[0][0];
      if (Math.abs(drift) > 180) {
        // around a pole: down the edge to the pole and back along the bottom
        const [endX] = points[points.length - 1];
        points.push([endX, 180], [points[0][0], 180]);
      }
      const xs = points.map(([x]) => x);
      const low = Math.min(...xs);
      const high = Math.max(...xs);
      for (const shift of [-360, 0, 360]) {
        if (high + shift > 0 && low + shift < 360) {
          parts.push(ringPath(points.map(([x, y]) => [x + shift, y])));
        }
      }
    }
  }
}
process.stdout.write(parts.join("") + "\n");
