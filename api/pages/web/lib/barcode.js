// The label decoder shared by the pages that read product tags (through lib/label_reader.js:
// scan, find an item, check a product): zxing-wasm, the same zxing-cpp engine as the Python
// scanner. Its .wasm is served by the gateway (/static/zxing_reader.wasm, copied at
// `make setup`), never fetched from a CDN. Each page module importing this is its own bundle.
import { prepareZXingModule, readBarcodes } from "zxing-wasm/reader";

const WASM = "/static/zxing_reader.wasm";
const READER = { formats: ["QRCode", "DataMatrix"], tryHarder: true, maxNumberOfSymbols: 1 };

prepareZXingModule({
  overrides: {
    locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM : prefix + path),
  },
  fireImmediately: false,
});

// The text of the first valid QR code or DataMatrix in an image (ImageData or a File), or
// null when there is none. Throws when the decoder cannot load.
export async function decode(input) {
  const results = await readBarcodes(input, READER);
  const found = results.find((r) => r.isValid && r.text);
  return found ? found.text : null;
}

// A product tag is a GS1 Digital Link URI with a GTIN (/01/) and a serial (/21/).
export function isTag(text) {
  return /^https?:\/\/[^/]+\/(.*\/)?01\/\d{8,14}(\/10\/[^/]+)?\/21\/[^/?]+/.test(text);
}
