// Shared helper for the cross-check scripts: read all of stdin as JSON, write JSON to stdout.
export async function readJsonStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

export function writeJson(value) {
  process.stdout.write(JSON.stringify(value));
}
